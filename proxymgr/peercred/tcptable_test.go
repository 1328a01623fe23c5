package peercred

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// tcpRow is one row of a synthetic GetExtendedTcpTable table.
type tcpRow struct {
	local, remote netip.AddrPort
	state, pid    uint32
}

// tcpTableOf lays rows out as GetExtendedTcpTable does (IPv6 rows when six).
func tcpTableOf(rows []tcpRow, six bool) []byte {
	ne := binary.NativeEndian
	buf := ne.AppendUint32(nil, uint32(len(rows)))
	port := func(b []byte, p uint16) []byte { // low 16 bits of a DWORD, network order
		return append(b, byte(p>>8), byte(p), 0xAA, 0xBB) // junk in the high half
	}
	for _, r := range rows {
		if six {
			l, rm := r.local.Addr().As16(), r.remote.Addr().As16()
			buf = append(buf, l[:]...)
			buf = ne.AppendUint32(buf, 0)
			buf = port(buf, r.local.Port())
			buf = append(buf, rm[:]...)
			buf = ne.AppendUint32(buf, 0)
			buf = port(buf, r.remote.Port())
			buf = ne.AppendUint32(buf, r.state)
			buf = ne.AppendUint32(buf, r.pid)
			continue
		}
		l, rm := r.local.Addr().As4(), r.remote.Addr().As4()
		buf = ne.AppendUint32(buf, r.state)
		buf = append(buf, l[:]...)
		buf = port(buf, r.local.Port())
		buf = append(buf, rm[:]...)
		buf = port(buf, r.remote.Port())
		buf = ne.AppendUint32(buf, r.pid)
	}
	return buf
}

func TestFindTCPRow(t *testing.T) {
	server, client := ap("127.0.0.1:8888"), ap("127.0.0.1:50000")
	s6, c6 := ap("[::1]:8888"), ap("[::1]:50000")
	rows := []tcpRow{
		{ap("127.0.0.1:8888"), ap("0.0.0.0:0"), 2, 100}, // listening
		{server, client, 5, 100},
		{client, server, 5, 200},
		{ap("127.0.0.1:50001"), server, mibTCPStateTimeWait, 0},
	}
	rows6 := []tcpRow{{s6, c6, 5, 100}, {c6, s6, 5, 300}}
	tests := []struct {
		name     string
		buf      []byte
		six      bool
		src, dst netip.AddrPort
		pid      uint32
		err      error
		anyErr   bool
	}{
		{"the client's row", tcpTableOf(rows, false), false, client, server, 200, nil, false},
		{"the accepted side", tcpTableOf(rows, false), false, server, client, 100, nil, false},
		{"ipv6", tcpTableOf(rows6, true), true, c6, s6, 300, nil, false},
		{"TIME_WAIT", tcpTableOf(rows, false), false, ap("127.0.0.1:50001"), server, 0, ErrNoOwner, false},
		{"missing", tcpTableOf(rows, false), false, ap("127.0.0.1:50009"), server, 0, errNotFound, false},
		{"two processes", tcpTableOf(append(rows[:3:3], tcpRow{client, server, 5, 201}), false), false, client, server, 0, errAmbiguous, false},
		{"count past the end", tcpTableOf(rows, false)[:30], false, client, server, 0, nil, true},
		{"empty", nil, false, client, server, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pid, err := findTCPRow(tc.buf, tc.six, tc.src, tc.dst)
			switch {
			case tc.anyErr:
				if err == nil {
					t.Fatalf("pid %d, want an error", pid)
				}
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			case pid != tc.pid:
				t.Fatalf("pid %d, want %d", pid, tc.pid)
			}
		})
	}
}

func FuzzFindTCPRow(f *testing.F) {
	f.Add(tcpTableOf([]tcpRow{{ap("127.0.0.1:1"), ap("127.0.0.1:2"), 5, 9}}, false), false, uint16(1), uint16(2))
	f.Add(tcpTableOf([]tcpRow{{ap("[::1]:1"), ap("[::1]:2"), 5, 9}}, true), true, uint16(1), uint16(2))
	f.Add([]byte{255, 255, 255, 255}, false, uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, buf []byte, six bool, sport, dport uint16) {
		a := netip.MustParseAddr("127.0.0.1")
		if six {
			a = netip.MustParseAddr("::1")
		}
		findTCPRow(buf, six, netip.AddrPortFrom(a, sport), netip.AddrPortFrom(a, dport))
	})
}
