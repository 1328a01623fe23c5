// Package peercred decides whether the peer of a TCP connection accepted on
// loopback belongs to the same OS user as this process.
//
// 127.0.0.1 is shared by every user of a machine: on a shared workstation,
// a jump host or a CI runner, any local process can connect to a loopback
// port. Keyport's proxies inject their owner's credentials, so each one
// serves only connections whose peer socket (the client's end of the
// connection, found by its exact 4-tuple) belongs to Keyport's own user.
// No token or file is involved: the kernel knows who created every socket.
//
// How the owner is looked up:
//
//   - Linux: netlink sock_diag (INET_DIAG, one exact lookup by 4-tuple,
//     about as cheap as a syscall whatever the number of sockets), with
//     /proc/net/tcp and /proc/net/tcp6 as the fallback;
//   - macOS: the kernel's TCP table (sysctl net.inet.tcp.pcblist_n), whose
//     socket records carry the creator's uid;
//   - Windows: the TCP tables of GetExtendedTcpTable give the owning process,
//     whose token's user SID is compared with ours;
//   - elsewhere: no check; Supported says so and Check answers Unchecked.
//
// The first use runs a self-test: a loopback connection of this process to
// itself must be found and found to be ours. A system where the mechanism is
// missing (a sandbox without sock_diag or /proc/net, WSL 1) then reports the
// check as unavailable, with the reason, instead of refusing everyone.
package peercred

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Kind is what a lookup concluded about a connection's peer.
type Kind uint8

// Kinds of verdict.
const (
	// Unknown: the owner of the peer's socket could not be established —
	// the lookup failed, or the socket is already closed and has no owner
	// any more (a client that sends a request and closes at once). On a
	// system where the check is active, callers must refuse the connection
	// (fail closed): a request whose sender is unknown might be another
	// user's, and serving it would spend the owner's credentials. A
	// same-user client meets this only if its socket vanished, when no one
	// reads the answer anyway.
	Unknown Kind = iota
	// Same: the peer's socket belongs to this process's user.
	Same
	// Other: the peer's socket belongs to another user (Verdict.Owner).
	Other
	// Unchecked: this system has no peer check (Supported().Active is
	// false). Callers serve the connection; they said so when they started.
	Unchecked
)

func (k Kind) String() string {
	switch k {
	case Same:
		return "same user"
	case Other:
		return "other user"
	case Unchecked:
		return "unchecked"
	}
	return "unknown"
}

// A Verdict is the answer about one connection.
type Verdict struct {
	Kind Kind
	// UID is the owner's user id on Unix systems, -1 when unknown or on
	// Windows.
	UID int
	// Owner names the owner as the OS does: "uid 65534" or a Windows SID;
	// empty when unknown.
	Owner string
	// Err says why Kind is Unknown or Unchecked.
	Err error
}

// Allowed reports whether the connection may be served: its peer is this
// user, or the system has no check.
func (v Verdict) Allowed() bool { return v.Kind == Same || v.Kind == Unchecked }

func (v Verdict) String() string {
	switch v.Kind {
	case Other:
		return "other user (" + v.Owner + ")"
	case Unknown, Unchecked:
		if v.Err != nil {
			return v.Kind.String() + ": " + v.Err.Error()
		}
	}
	return v.Kind.String()
}

// Support says whether this system checks peers, and how.
type Support struct {
	// Active: connections of other users are recognised (Check answers Same,
	// Other or Unknown).
	Active bool
	// Method is how owners are looked up when Active, e.g. "netlink
	// sock_diag".
	Method string
	// Reason says why the check is not active.
	Reason string
}

// String is a sentence for users: what the proxies do about other users.
func (s Support) String() string {
	if s.Active {
		return "only programs of this user may use the proxies (peer check: " + s.Method + ")"
	}
	return "other users of this machine can use the proxies: no peer check (" + s.Reason + ")"
}

// ErrNoOwner: the peer's socket exists but belongs to no process any more
// (it was closed), so its user cannot be told.
var ErrNoOwner = errors.New("the client's socket is already closed, so its user cannot be told")

// errNotFound: no socket has the peer's side of the 4-tuple.
var errNotFound = errors.New("no socket of this machine has the client's address")

// A method is one way to look up the owner of the peer's socket: the socket
// whose local address is remote and whose remote address is local.
type method struct {
	name   string
	lookup func(local, remote netip.AddrPort) Verdict
}

// chosen is the method the self-test found working (nil: none).
var chosen *method

var support = sync.OnceValue(func() Support {
	if len(methods) == 0 {
		return Support{Reason: "not implemented on " + runtime.GOOS}
	}
	var first error
	for i := range methods {
		err := selfTest(&methods[i])
		if err == nil {
			chosen = &methods[i]
			return Support{Active: true, Method: methods[i].name}
		}
		if first == nil {
			first = fmt.Errorf("%s: %w", methods[i].name, err)
		}
	}
	return Support{Reason: "the self-test failed: " + first.Error()}
})

// Supported says whether peers are checked on this system. The first call
// runs the self-test (a loopback connection to this process, a few
// milliseconds); later calls return its result.
func Supported() Support { return support() }

// selfTest connects to this process over loopback and requires m to find
// the connecting socket and to find it ours.
func selfTest(m *method) error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on loopback: %w", err)
	}
	defer ln.Close()
	c, err := net.DialTimeout("tcp4", ln.Addr().String(), 2*time.Second)
	if err != nil {
		return fmt.Errorf("connect on loopback: %w", err)
	}
	defer c.Close()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(2 * time.Second))
	s, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept on loopback: %w", err)
	}
	defer s.Close()
	local, remote, err := addrs(s.LocalAddr(), s.RemoteAddr())
	if err != nil {
		return err
	}
	v := m.lookup(local, remote)
	switch v.Kind {
	case Same:
		return nil
	case Other:
		return fmt.Errorf("this process's own connection was found to belong to %s", v.Owner)
	}
	return v.Err
}

// Check looks up the owner of the peer of a TCP connection accepted on
// loopback: local is the accepted connection's local address (the
// listener's side), remote its remote address (the client's socket). A
// client that is not on this machine has no socket here: Unknown. Each
// call is one lookup; callers cache the verdict per connection.
func Check(local, remote netip.AddrPort) Verdict {
	if s := Supported(); !s.Active {
		return Verdict{Kind: Unchecked, UID: -1, Err: errors.New(s.Reason)}
	}
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if !local.IsValid() || !remote.IsValid() || local.Addr().Is4() != remote.Addr().Is4() {
		return unknown(fmt.Errorf("no TCP 4-tuple in %s -> %s", remote, local))
	}
	return chosen.lookup(local, remote)
}

// CheckConn is Check for an accepted TCP connection.
func CheckConn(c net.Conn) Verdict {
	local, remote, err := addrs(c.LocalAddr(), c.RemoteAddr())
	if err != nil {
		if s := Supported(); !s.Active {
			return Verdict{Kind: Unchecked, UID: -1, Err: errors.New(s.Reason)}
		}
		return unknown(err)
	}
	return Check(local, remote)
}

// addrs converts a TCP connection's addresses.
func addrs(local, remote net.Addr) (netip.AddrPort, netip.AddrPort, error) {
	l, ok1 := local.(*net.TCPAddr)
	r, ok2 := remote.(*net.TCPAddr)
	if !ok1 || !ok2 {
		return netip.AddrPort{}, netip.AddrPort{}, fmt.Errorf("not a TCP connection (%s)", local.Network())
	}
	return l.AddrPort(), r.AddrPort(), nil
}

func unknown(err error) Verdict { return Verdict{Kind: Unknown, UID: -1, Err: err} }

// uidVerdict compares a Unix socket owner with this process's effective
// user (whose id the kernel gives the sockets it creates).
func uidVerdict(uid uint32, self int) Verdict {
	if int64(uid) == int64(self) {
		return Verdict{Kind: Same, UID: int(uid), Owner: "uid " + strconv.FormatUint(uint64(uid), 10)}
	}
	return Verdict{Kind: Other, UID: int(uid), Owner: "uid " + strconv.FormatUint(uint64(uid), 10)}
}
