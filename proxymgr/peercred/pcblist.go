package peercred

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// The records of macOS's sysctl net.inet.tcp.pcblist_n (XNU
// bsd/netinet/in_pcblist.c, the structs of bsd/sys/socketvar.h and
// bsd/netinet/in_pcb.h, declared with #pragma pack(4)): an xinpgen header,
// then per TCP socket (IPv4 and IPv6) a group of records, each starting with
// its length and kind and padded to 8 bytes, and a closing xinpgen. The
// offsets below are those of the packed structs; a record shorter than the
// fields read is an error, not a guess.
const (
	xinpgenLen = 24

	xsoSocket = 0x001 // struct xsocket_n
	xsoRcvbuf = 0x002
	xsoSndbuf = 0x004
	xsoStats  = 0x008
	xsoInpcb  = 0x010 // struct xinpcb_n
	xsoTcpcb  = 0x020 // struct xtcpcb_n

	xinpFport  = 16 // inp_fport, network order
	xinpLport  = 18 // inp_lport, network order
	xinpVflag  = 44 // inp_vflag: INP_IPV4 0x1, INP_IPV6 0x2
	xinpFaddr  = 48 // inp_dependfaddr: in6_addr, or in_addr_4in6 (IPv4 in its last 4 bytes)
	xinpLaddr  = 64 // inp_dependladdr
	xinpMinLen = 80

	xsoUID    = 64 // so_uid
	xsoMinLen = 68

	xtcpState  = 36 // t_state
	xtcpMinLen = 40

	inpIPv4 = 0x1
	inpIPv6 = 0x2

	tcpsTimeWait = 10 // TCPS_TIME_WAIT
)

// findPCB returns the uid of the TCP socket whose local address is src and
// foreign address is dst in a pcblist_n table. A socket in TIME_WAIT has no
// owner any more (ErrNoOwner unless a live one matches); two live sockets
// with different owners are not believed.
func findPCB(buf []byte, src, dst netip.AddrPort) (uint32, error) {
	ne := binary.NativeEndian
	if len(buf) < xinpgenLen || ne.Uint32(buf) != xinpgenLen {
		return 0, errors.New("pcblist_n: no xinpgen header")
	}
	const all = xsoSocket | xsoRcvbuf | xsoSndbuf | xsoStats | xsoInpcb | xsoTcpcb
	var (
		seen          uint32
		inp, so, tcp  []byte
		found, closed bool
		uid           uint32
		ended         bool
	)
	for off := xinpgenLen; off+8 <= len(buf); {
		l := int(ne.Uint32(buf[off:]))
		kind := ne.Uint32(buf[off+4:])
		if l <= xinpgenLen { // the closing xinpgen
			ended = true
			break
		}
		if off+l > len(buf) {
			return 0, fmt.Errorf("pcblist_n: a record of %d bytes runs past the table's end", l)
		}
		rec := buf[off : off+l]
		off += (l + 7) &^ 7
		if kind&all == 0 {
			continue // a kind this parser does not read
		}
		if seen&kind != 0 {
			return 0, fmt.Errorf("pcblist_n: record kind %#x twice for one socket", kind)
		}
		seen |= kind
		switch kind {
		case xsoInpcb:
			inp = rec
		case xsoSocket:
			so = rec
		case xsoTcpcb:
			tcp = rec
		}
		if seen != all {
			continue
		}
		seen = 0
		if len(inp) < xinpMinLen || len(so) < xsoMinLen || len(tcp) < xtcpMinLen {
			return 0, errors.New("pcblist_n: records shorter than the fields read")
		}
		if !pcbMatches(inp, src, dst) {
			continue
		}
		u := ne.Uint32(so[xsoUID:])
		if int32(ne.Uint32(tcp[xtcpState:])) == tcpsTimeWait {
			closed = true
			continue
		}
		if found && u != uid {
			return 0, errAmbiguous
		}
		found, uid = true, u
	}
	if !ended {
		return 0, errors.New("pcblist_n: the table is cut short")
	}
	switch {
	case found:
		return uid, nil
	case closed:
		return 0, ErrNoOwner
	}
	return 0, errNotFound
}

// pcbMatches reports whether an xinpcb_n record is the socket src -> dst.
func pcbMatches(inp []byte, src, dst netip.AddrPort) bool {
	if binary.BigEndian.Uint16(inp[xinpLport:]) != src.Port() || binary.BigEndian.Uint16(inp[xinpFport:]) != dst.Port() {
		return false
	}
	vflag := inp[xinpVflag]
	switch {
	case vflag&inpIPv4 != 0:
		if !src.Addr().Is4() {
			return false
		}
		l, f := src.Addr().As4(), dst.Addr().As4()
		return string(inp[xinpLaddr+12:xinpLaddr+16]) == string(l[:]) && string(inp[xinpFaddr+12:xinpFaddr+16]) == string(f[:])
	case vflag&inpIPv6 != 0:
		if src.Addr().Is4() {
			return false
		}
		l, f := src.Addr().As16(), dst.Addr().As16()
		return string(inp[xinpLaddr:xinpLaddr+16]) == string(l[:]) && string(inp[xinpFaddr:xinpFaddr+16]) == string(f[:])
	}
	return false
}
