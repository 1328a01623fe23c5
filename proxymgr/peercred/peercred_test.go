package peercred

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"keyport/proxymgr/peercred/peertest"
)

// listen opens a loopback listener of network (tcp4 or tcp6), skipping when
// the system has no IPv6 loopback.
func listen(t testing.TB, network string) net.Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		if network == "tcp6" {
			t.Skipf("no IPv6 loopback here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// acceptFrom accepts connections on ln until one comes from client.
func acceptFrom(t testing.TB, ln net.Listener, client netip.AddrPort) net.Conn {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	for {
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("accept the client %s: %v", client, err)
		}
		if c.RemoteAddr().(*net.TCPAddr).AddrPort() == client {
			t.Cleanup(func() { c.Close() })
			return c
		}
		c.Close()
	}
}

func localRemote(t testing.TB, c net.Conn) (netip.AddrPort, netip.AddrPort) {
	t.Helper()
	l, r, err := addrs(c.LocalAddr(), c.RemoteAddr())
	if err != nil {
		t.Fatal(err)
	}
	return l, r
}

func TestSupportedOnThisSystem(t *testing.T) {
	s := Supported()
	if runtime.GOOS != "linux" {
		t.Logf("%s: %v", runtime.GOOS, s)
		return
	}
	if !s.Active || s.Method != "netlink sock_diag" {
		t.Fatalf("Supported() = %+v, want the netlink check active on Linux", s)
	}
	if s.String() == "" || s.Reason != "" {
		t.Errorf("an active check has a reason or no description: %+v", s)
	}
}

// TestOwnersOfRealConnections connects real clients, of this user and of
// nobody (uid 65534), over IPv4 and IPv6 loopback and asks every lookup
// method (and Check) whose they are.
func TestOwnersOfRealConnections(t *testing.T) {
	peertest.RequireRoot(t)
	if !Supported().Active {
		t.Skipf("no peer check here: %v", Supported())
	}
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			ln := listen(t, network)
			for _, tc := range []struct {
				who  string
				uid  int
				want Kind
			}{
				{"owner", peertest.Owner, Same},
				{"nobody", peertest.Nobody, Other},
			} {
				client, _ := peertest.Hold(t, tc.uid, network, ln.Addr().String())
				c := acceptFrom(t, ln, client)
				wantUID := tc.uid
				if tc.uid == peertest.Owner {
					wantUID = os.Geteuid()
				}
				check := func(how string, v Verdict) {
					t.Helper()
					if v.Kind != tc.want || v.UID != wantUID {
						t.Errorf("%s, client of %s: %v (uid %d), want %v (uid %d)", how, tc.who, v, v.UID, tc.want, wantUID)
					}
				}
				check("CheckConn", CheckConn(c))
				l, r := localRemote(t, c)
				for _, m := range methods {
					check(m.name, m.lookup(l, r))
				}
				// The listener's own side of the connection is this process's:
				// a lookup that mixed up the directions would say so.
				if tc.want == Other {
					for _, m := range methods {
						if v := m.lookup(r, l); v.Kind != Same {
							t.Errorf("%s: the accepted socket %s -> %s is ours, got %v", m.name, l, r, v)
						}
					}
				}
			}
		})
	}
}

// TestClosedClientIsUnknown: a client that sends and closes at once leaves a
// socket without an owner; the lookup must not call it anyone's (a closed
// socket reports uid 0, which would pass for root's).
func TestClosedClientIsUnknown(t *testing.T) {
	peertest.RequireRoot(t)
	if !Supported().Active {
		t.Skipf("no peer check here: %v", Supported())
	}
	ln := listen(t, "tcp4")
	client, release := peertest.Hold(t, peertest.Nobody, "tcp4", ln.Addr().String())
	c := acceptFrom(t, ln, client)
	release() // the client process closes its socket and exits
	l, r := localRemote(t, c)
	for _, m := range methods {
		v := m.lookup(l, r)
		if v.Kind != Unknown {
			t.Errorf("%s: a closed client's socket: %v, want unknown", m.name, v)
		}
		if !errors.Is(v.Err, ErrNoOwner) && !errors.Is(v.Err, errNotFound) {
			t.Errorf("%s: error %v, want ErrNoOwner or not found", m.name, v.Err)
		}
		if v.Allowed() {
			t.Errorf("%s: an unknown peer is allowed", m.name)
		}
	}
}

func TestNoSuchSocketIsUnknown(t *testing.T) {
	if !Supported().Active {
		t.Skipf("no peer check here: %v", Supported())
	}
	l := netip.MustParseAddrPort("127.0.0.1:1")
	r := netip.MustParseAddrPort("127.0.0.1:2")
	for _, m := range methods {
		if v := m.lookup(l, r); v.Kind != Unknown || !errors.Is(v.Err, errNotFound) {
			t.Errorf("%s: a 4-tuple no socket has: %v, want unknown (not found)", m.name, v)
		}
	}
	if v := Check(l, netip.MustParseAddrPort("[::1]:2")); v.Kind != Unknown || v.Allowed() {
		t.Errorf("mixed address families: %v, want unknown", v)
	}
}

func TestVerdictText(t *testing.T) {
	for _, tc := range []struct {
		v       Verdict
		want    string
		allowed bool
	}{
		{Verdict{Kind: Same, UID: 1000, Owner: "uid 1000"}, "same user", true},
		{Verdict{Kind: Other, UID: 65534, Owner: "uid 65534"}, "other user (uid 65534)", false},
		{Verdict{Kind: Unknown, UID: -1, Err: ErrNoOwner}, "unknown: " + ErrNoOwner.Error(), false},
		{Verdict{Kind: Unchecked, UID: -1, Err: errors.New("not implemented on plan9")}, "unchecked: not implemented on plan9", true},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		if tc.v.Allowed() != tc.allowed {
			t.Errorf("%v: Allowed() = %v", tc.v, !tc.allowed)
		}
	}
	off := Support{Reason: "not implemented on plan9"}
	if got := off.String(); got != "other users of this machine can use the proxies: no peer check (not implemented on plan9)" {
		t.Errorf("inactive Support: %q", got)
	}
}

// BenchmarkSameUser is the cost of one check of a new connection with 1,000
// other loopback connections (2,000 sockets) open, per lookup method.
func BenchmarkSameUser(b *testing.B) {
	if !Supported().Active {
		b.Skipf("no peer check here: %v", Supported())
	}
	ln := listen(b, "tcp4")
	accepted := make(chan net.Conn, 1024)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var open []net.Conn
	b.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	for range 1000 {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		open = append(open, c, <-accepted)
	}
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s := <-accepted
	open = append(open, c, s)
	l, r := localRemote(b, s)
	for _, m := range methods {
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				if v := m.lookup(l, r); v.Kind != Same {
					b.Fatal(v)
				}
			}
		})
	}
	b.Run("CheckConn", func(b *testing.B) {
		for b.Loop() {
			if v := CheckConn(s); v.Kind != Same {
				b.Fatal(v)
			}
		}
	})
}
