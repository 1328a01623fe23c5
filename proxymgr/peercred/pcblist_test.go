package peercred

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// pcbSock is one socket of a synthetic pcblist_n table.
type pcbSock struct {
	local, foreign netip.AddrPort
	uid            uint32
	state          int32 // TCPS_*; 4 is ESTABLISHED
	mapped         bool  // an IPv6 socket talking IPv4 (INP_IPV4 set, in_addr_4in6)
}

// pcbRecord is one record: length and kind, then fill, padded to 8 bytes.
func pcbRecord(kind uint32, length int, fill func([]byte)) []byte {
	b := make([]byte, (length+7)&^7)
	binary.NativeEndian.PutUint32(b, uint32(length))
	binary.NativeEndian.PutUint32(b[4:], kind)
	if fill != nil {
		fill(b)
	}
	return b
}

// pcbTable lays sockets out as XNU's get_pcblist_n does (sizes of macOS 13+).
func pcbTable(socks []pcbSock, closed bool) []byte {
	gen := func() []byte {
		b := make([]byte, xinpgenLen)
		binary.NativeEndian.PutUint32(b, xinpgenLen)
		binary.NativeEndian.PutUint32(b[4:], uint32(len(socks)))
		return b
	}
	out := gen()
	for _, s := range socks {
		out = append(out, pcbRecord(xsoInpcb, 104, func(b []byte) {
			binary.BigEndian.PutUint16(b[xinpFport:], s.foreign.Port())
			binary.BigEndian.PutUint16(b[xinpLport:], s.local.Port())
			if s.local.Addr().Is4() {
				b[xinpVflag] = inpIPv4
				if s.mapped {
					b[xinpVflag] |= inpIPv6
				}
				l, f := s.local.Addr().As4(), s.foreign.Addr().As4()
				copy(b[xinpLaddr+12:], l[:])
				copy(b[xinpFaddr+12:], f[:])
			} else {
				b[xinpVflag] = inpIPv6
				l, f := s.local.Addr().As16(), s.foreign.Addr().As16()
				copy(b[xinpLaddr:], l[:])
				copy(b[xinpFaddr:], f[:])
			}
		})...)
		out = append(out, pcbRecord(xsoSocket, 120, func(b []byte) {
			binary.NativeEndian.PutUint32(b[xsoUID:], s.uid)
			binary.NativeEndian.PutUint32(b[xsoUID+4:], 4242) // so_last_pid: not the uid
		})...)
		out = append(out, pcbRecord(xsoRcvbuf, 32, nil)...)
		out = append(out, pcbRecord(xsoSndbuf, 32, nil)...)
		out = append(out, pcbRecord(xsoStats, 112, nil)...)
		out = append(out, pcbRecord(xsoTcpcb, 208, func(b []byte) {
			state := s.state
			if state == 0 {
				state = 4
			}
			binary.NativeEndian.PutUint32(b[xtcpState:], uint32(state))
		})...)
	}
	if closed {
		out = append(out, gen()...)
	}
	return out
}

func TestFindPCB(t *testing.T) {
	server, client, other := ap("127.0.0.1:8888"), ap("127.0.0.1:50000"), ap("127.0.0.1:50001")
	s6, c6 := ap("[::1]:8888"), ap("[::1]:50000")
	mac := []pcbSock{
		{local: ap("0.0.0.0:8888"), foreign: ap("0.0.0.0:0"), uid: 501, state: 1}, // the listener
		{local: server, foreign: client, uid: 501},                                // the accepted side
		{local: client, foreign: server, uid: 502},                                // the client
		{local: other, foreign: server, uid: 501, mapped: true},                   // a dual-stack client
		{local: ap("127.0.0.1:50002"), foreign: server, uid: 502, state: tcpsTimeWait},
		{local: c6, foreign: s6, uid: 0},
		{local: s6, foreign: c6, uid: 501},
	}
	table := pcbTable(mac, true)
	tests := []struct {
		name     string
		buf      []byte
		src, dst netip.AddrPort
		uid      uint32
		err      error
		anyErr   bool
	}{
		{"the client's socket, not the accepted one", table, client, server, 502, nil, false},
		{"the accepted side", table, server, client, 501, nil, false},
		{"dual-stack client", table, other, server, 501, nil, false},
		{"ipv6", table, c6, s6, 0, nil, false},
		{"TIME_WAIT has no owner", table, ap("127.0.0.1:50002"), server, 0, ErrNoOwner, false},
		{"no such socket", table, ap("127.0.0.1:50003"), server, 0, errNotFound, false},
		{"two owners", pcbTable(append(mac[:3:3], pcbSock{local: client, foreign: server, uid: 0}), true), client, server, 0, errAmbiguous, false},
		{"cut short", pcbTable(mac, false), client, server, 0, nil, true},
		{"cut inside a record", table[:200], client, server, 0, nil, true},
		{"empty", nil, client, server, 0, nil, true},
		{"short records", append(pcbTable(nil, false), append(pcbRecord(xsoInpcb, 16, nil),
			append(pcbRecord(xsoSocket, 16, nil), append(pcbRecord(xsoRcvbuf, 8, nil), append(pcbRecord(xsoSndbuf, 8, nil),
				append(pcbRecord(xsoStats, 8, nil), append(pcbRecord(xsoTcpcb, 16, nil), pcbTable(nil, false)...)...)...)...)...)...)...),
			client, server, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uid, err := findPCB(tc.buf, tc.src, tc.dst)
			switch {
			case tc.anyErr:
				if err == nil {
					t.Fatalf("uid %d, want an error", uid)
				}
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			case uid != tc.uid:
				t.Fatalf("uid %d, want %d", uid, tc.uid)
			}
		})
	}
}

// FuzzFindPCB: any bytes are answered without a panic; a table of real
// layout is read back.
func FuzzFindPCB(f *testing.F) {
	f.Add(pcbTable([]pcbSock{{local: ap("127.0.0.1:1"), foreign: ap("127.0.0.1:2"), uid: 7}}, true), uint16(1), uint16(2))
	f.Add(pcbTable(nil, true), uint16(0), uint16(0))
	f.Add([]byte{24, 0, 0, 0, 1, 0, 0, 0}, uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, buf []byte, sport, dport uint16) {
		for _, a := range []string{"127.0.0.1", "::1"} {
			addr := netip.MustParseAddr(a)
			findPCB(buf, netip.AddrPortFrom(addr, sport), netip.AddrPortFrom(addr, dport))
		}
	})
}
