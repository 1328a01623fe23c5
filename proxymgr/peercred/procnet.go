package peercred

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// A procEntry is the part of a /proc/net/tcp{,6} line the check needs.
type procEntry struct {
	uid   uint32
	inode uint64
}

// errAmbiguous: two live sockets claim the peer's 4-tuple with different
// owners; neither is believed.
var errAmbiguous = errors.New("two sockets claim the client's address with different owners")

// findProcNet reads a /proc/net/tcp or /proc/net/tcp6 table and returns the
// entry of the socket whose local address is src and remote address is dst
// (IPv4 addresses also match their IPv4-mapped form, as a dual-stack socket
// shows in tcp6). A socket without an inode (closed, in TIME_WAIT) is
// returned only if no live one matches. Malformed lines are an error.
//
// The kernel prints each 32-bit word of an address in hex as it is in
// memory read as a native integer, and ports in hex.
func findProcNet(r io.Reader, src, dst netip.AddrPort) (procEntry, error) {
	sc := bufio.NewScanner(bufio.NewReaderSize(r, 64<<10))
	sc.Buffer(make([]byte, 0, 512), 4096)
	var (
		found, live bool
		got         procEntry
	)
	first := true
	for sc.Scan() {
		line := sc.Bytes()
		if first {
			first = false
			if bytes.Contains(line, []byte("local_address")) {
				continue
			}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var arr [10][]byte
		f := fields(line, arr[:0])
		if len(f) < 10 {
			return procEntry{}, fmt.Errorf("line %q: want at least 10 fields", line)
		}
		l, err := parseProcAddr(f[1])
		if err != nil {
			return procEntry{}, fmt.Errorf("local address %q: %w", f[1], err)
		}
		rem, err := parseProcAddr(f[2])
		if err != nil {
			return procEntry{}, fmt.Errorf("remote address %q: %w", f[2], err)
		}
		if l != src || rem != dst {
			continue
		}
		uid, err := strconv.ParseUint(string(f[7]), 10, 32)
		if err != nil {
			return procEntry{}, fmt.Errorf("uid %q: %w", f[7], err)
		}
		inode, err := strconv.ParseUint(string(f[9]), 10, 64)
		if err != nil {
			return procEntry{}, fmt.Errorf("inode %q: %w", f[9], err)
		}
		e := procEntry{uid: uint32(uid), inode: inode}
		switch {
		case !found, !live && inode != 0:
			got, found, live = e, true, inode != 0
		case live && inode != 0 && e.uid != got.uid:
			return procEntry{}, errAmbiguous
		}
	}
	if err := sc.Err(); err != nil {
		return procEntry{}, err
	}
	if !found {
		return procEntry{}, errNotFound
	}
	return got, nil
}

// fields splits line at spaces into at most cap(dst) fields, without
// allocating (a table has a line per TCP socket of the machine).
func fields(line []byte, dst [][]byte) [][]byte {
	for len(dst) < cap(dst) {
		line = bytes.TrimLeft(line, " \t")
		if len(line) == 0 {
			break
		}
		end := bytes.IndexAny(line, " \t")
		if end < 0 {
			end = len(line)
		}
		dst = append(dst, line[:end])
		line = line[end:]
	}
	return dst
}

// parseProcAddr parses "0100007F:1F90" (IPv4) or 32 hex digits and a port
// (IPv6); an IPv4-mapped IPv6 address is returned as IPv4.
func parseProcAddr(b []byte) (netip.AddrPort, error) {
	i := bytes.IndexByte(b, ':')
	if i < 0 || len(b)-i-1 != 4 {
		return netip.AddrPort{}, errors.New("want ADDR:PORT in hex")
	}
	port, err := parseHex(b[i+1:])
	if err != nil {
		return netip.AddrPort{}, err
	}
	hex := b[:i]
	var a netip.Addr
	switch len(hex) {
	case 8:
		w, err := parseHex(hex)
		if err != nil {
			return netip.AddrPort{}, err
		}
		var raw [4]byte
		binary.NativeEndian.PutUint32(raw[:], w)
		a = netip.AddrFrom4(raw)
	case 32:
		var raw [16]byte
		for k := range 4 {
			w, err := parseHex(hex[k*8 : k*8+8])
			if err != nil {
				return netip.AddrPort{}, err
			}
			binary.NativeEndian.PutUint32(raw[k*4:], w)
		}
		a = netip.AddrFrom16(raw).Unmap()
	default:
		return netip.AddrPort{}, fmt.Errorf("address of %d hex digits, want 8 or 32", len(hex))
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// parseHex parses up to 8 hex digits.
func parseHex(b []byte) (uint32, error) {
	if len(b) == 0 || len(b) > 8 {
		return 0, errors.New("want 1 to 8 hex digits")
	}
	var v uint32
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, fmt.Errorf("%q is not a hex digit", c)
		}
		v = v<<4 | uint32(c)
	}
	return v, nil
}

// procVerdict turns a table entry into a verdict.
func procVerdict(e procEntry, self int) Verdict {
	if e.inode == 0 {
		return unknown(ErrNoOwner)
	}
	return uidVerdict(e.uid, self)
}
