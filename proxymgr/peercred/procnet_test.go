package peercred

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

const procHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// procAddr formats an address as the kernel does in /proc/net/tcp{,6}: each
// 32-bit word as the native integer its bytes make, in hex.
func procAddr(ap netip.AddrPort, six bool) string {
	var words []byte
	if six {
		a := ap.Addr().As16()
		words = a[:]
	} else {
		a := ap.Addr().As4()
		words = a[:]
	}
	var sb strings.Builder
	for i := 0; i < len(words); i += 4 {
		fmt.Fprintf(&sb, "%08X", binary.NativeEndian.Uint32(words[i:]))
	}
	fmt.Fprintf(&sb, ":%04X", ap.Port())
	return sb.String()
}

// procLine is one table line of the socket local -> remote.
func procLine(sl int, local, remote netip.AddrPort, six bool, state string, uid uint32, inode uint64) string {
	return fmt.Sprintf("%4d: %s %s %s 00000000:00000000 00:00000000 00000000 %5d        0 %d 1 0000000000000000 20 4 30 10 -1\n",
		sl, procAddr(local, six), procAddr(remote, six), state, uid, inode)
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestFindProcNet(t *testing.T) {
	client, server := ap("127.0.0.1:50000"), ap("127.0.0.1:8888")
	mapped := func(a netip.AddrPort) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
	}
	c6, s6 := ap("[::1]:50000"), ap("[::1]:8888")
	listener := procLine(0, ap("127.0.0.1:8888"), ap("0.0.0.0:0"), false, "0A", 0, 100)
	tests := []struct {
		name     string
		table    string
		src, dst netip.AddrPort
		want     procEntry
		err      error // errors.Is; nil: want no error
		anyErr   bool
	}{
		{"the client's socket", procHeader + listener +
			procLine(1, server, client, false, "01", 0, 101) + // the accepted side: not it
			procLine(2, client, server, false, "01", 65534, 202),
			client, server, procEntry{65534, 202}, nil, false},
		{"another port of the same host", procHeader + procLine(1, ap("127.0.0.1:50001"), server, false, "01", 1000, 303),
			client, server, procEntry{}, errNotFound, false},
		{"empty table", procHeader, client, server, procEntry{}, errNotFound, false},
		{"no header", procLine(0, client, server, false, "01", 7, 8), client, server, procEntry{7, 8}, nil, false},
		{"dual-stack socket in tcp6", procHeader + procLine(0, mapped(client), mapped(server), true, "01", 1000, 404),
			client, server, procEntry{1000, 404}, nil, false},
		{"ipv6", procHeader + procLine(0, s6, c6, true, "01", 0, 1) + procLine(1, c6, s6, true, "01", 1001, 505),
			c6, s6, procEntry{1001, 505}, nil, false},
		{"closed socket only (TIME_WAIT, no inode)", procHeader + procLine(0, client, server, false, "06", 0, 0),
			client, server, procEntry{0, 0}, nil, false},
		{"a live socket wins over a closed one", procHeader + procLine(0, client, server, false, "06", 0, 0) +
			procLine(1, client, server, false, "01", 1000, 606),
			client, server, procEntry{1000, 606}, nil, false},
		{"two live owners", procHeader + procLine(0, client, server, false, "01", 1000, 1) +
			procLine(1, client, server, false, "01", 0, 2),
			client, server, procEntry{}, errAmbiguous, false},
		{"short line", procHeader + "   0: 0100007F:1F90 0100007F:C350 01\n", client, server, procEntry{}, nil, true},
		{"bad hex", procHeader + strings.Replace(procLine(0, client, server, false, "01", 1, 2), "0100007F", "0100007G", 1),
			client, server, procEntry{}, nil, true},
		{"bad uid of the match", procHeader + strings.Replace(procLine(0, client, server, false, "01", 1, 2), "    1 ", "   -1 ", 1),
			client, server, procEntry{}, nil, true},
		{"odd address length", procHeader + "   0: 00100007F:C350 0100007F:1F90 01 0:0 0:0 0 1 0 2 1\n",
			client, server, procEntry{}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findProcNet(strings.NewReader(tc.table), tc.src, tc.dst)
			switch {
			case tc.anyErr:
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			case got != tc.want:
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestFindProcNetRealLines reads lines as a little-endian Linux prints them.
func TestFindProcNetRealLines(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("these lines are a little-endian kernel's")
	}
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:22B8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 81231 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:22B8 01 00000000:00000000 00:00000000 00000000 65534        0 81377 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:22B8 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 81378 1 0000000000000000 20 4 29 10 -1
`
	got, err := findProcNet(strings.NewReader(table), ap("127.0.0.1:50000"), ap("127.0.0.1:8888"))
	if err != nil || got != (procEntry{65534, 81377}) {
		t.Fatalf("got %+v, %v; want uid 65534, inode 81377", got, err)
	}
	table6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:C350 00000000000000000000000001000000:22B8 01 00000000:00000000 00:00000000 00000000  1000        0 91000 1 0000000000000000 20 4 30 10 -1
   1: 0000000000000000FFFF00000100007F:C351 0000000000000000FFFF00000100007F:22B8 01 00000000:00000000 00:00000000 00000000  1001        0 91001 1 0000000000000000 20 4 30 10 -1
`
	if got, err := findProcNet(strings.NewReader(table6), ap("[::1]:50000"), ap("[::1]:8888")); err != nil || got != (procEntry{1000, 91000}) {
		t.Fatalf("ipv6: got %+v, %v; want uid 1000", got, err)
	}
	if got, err := findProcNet(strings.NewReader(table6), ap("127.0.0.1:50001"), ap("127.0.0.1:8888")); err != nil || got != (procEntry{1001, 91001}) {
		t.Fatalf("mapped: got %+v, %v; want uid 1001", got, err)
	}
}

func TestProcVerdict(t *testing.T) {
	if v := procVerdict(procEntry{uid: 0, inode: 0}, 0); v.Kind != Unknown || !errors.Is(v.Err, ErrNoOwner) {
		t.Errorf("a socket without inode (uid 0) for root: %v, want unknown", v)
	}
	if v := procVerdict(procEntry{uid: 1000, inode: 5}, 1000); v.Kind != Same {
		t.Errorf("own socket: %v", v)
	}
	if v := procVerdict(procEntry{uid: 65534, inode: 5}, 1000); v.Kind != Other || v.UID != 65534 || v.Owner != "uid 65534" {
		t.Errorf("nobody's socket: %+v", v)
	}
}

// FuzzFindProcNet: any table text is answered without a panic, and an
// entry found is one the table holds for that 4-tuple.
func FuzzFindProcNet(f *testing.F) {
	client, server := ap("127.0.0.1:50000"), ap("127.0.0.1:8888")
	f.Add(procHeader+procLine(0, client, server, false, "01", 65534, 7), uint16(50000), uint16(8888))
	f.Add(procHeader+procLine(0, ap("[::1]:1"), ap("[::1]:2"), true, "01", 1, 2), uint16(1), uint16(2))
	f.Add("   0: 0:0 0:0 0 0 0 0 0 0 0\n", uint16(0), uint16(0))
	f.Add("x\n\n   0: 0100007F:1F9 0100007F:1F90 0 0 0 0 18446744073709551615 0 0\n", uint16(0), uint16(8080))
	f.Fuzz(func(t *testing.T, table string, sport, dport uint16) {
		for _, addr := range []string{"127.0.0.1", "::1"} {
			src := netip.AddrPortFrom(netip.MustParseAddr(addr), sport)
			dst := netip.AddrPortFrom(netip.MustParseAddr(addr), dport)
			got, err := findProcNet(strings.NewReader(table), src, dst)
			if err != nil {
				continue
			}
			// The uid and inode found are on a line naming both addresses.
			want := strconv.FormatUint(uint64(got.uid), 10)
			ok := false
			for line := range strings.Lines(table) {
				f := strings.Fields(line)
				if len(f) >= 10 {
					l, e1 := parseProcAddr([]byte(f[1]))
					r, e2 := parseProcAddr([]byte(f[2]))
					u, e3 := strconv.ParseUint(f[7], 10, 32)
					in, e4 := strconv.ParseUint(f[9], 10, 64)
					if e1 == nil && e2 == nil && e3 == nil && e4 == nil && l == src && r == dst &&
						strconv.FormatUint(u, 10) == want && in == got.inode {
						ok = true
					}
				}
			}
			if !ok {
				t.Fatalf("found %+v for %s -> %s, on no line of the table", got, src, dst)
			}
		}
	})
}

// FuzzProcNetRoundTrip: a socket written the way the kernel writes it is
// found with its owner, among others.
func FuzzProcNetRoundTrip(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1}, uint16(50000), uint16(8888), uint32(65534), uint64(42), false)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(1), uint16(65535), uint32(0), uint64(1), true)
	f.Fuzz(func(t *testing.T, raw []byte, sport, dport uint16, uid uint32, inode uint64, six bool) {
		a, ok := netip.AddrFromSlice(raw)
		if !ok || sport == dport {
			return
		}
		a = a.Unmap()
		if a.Is6() {
			six = true
		}
		src, dst := netip.AddrPortFrom(a, sport), netip.AddrPortFrom(a, dport)
		table := procHeader + procLine(0, dst, src, six, "01", uid+1, inode+1) + procLine(1, src, dst, six, "01", uid, inode)
		got, err := findProcNet(strings.NewReader(table), src, dst)
		if err != nil || got != (procEntry{uid, inode}) {
			t.Fatalf("%s -> %s in %q: got %+v, %v; want uid %d inode %d", src, dst, table, got, err, uid, inode)
		}
	})
}
