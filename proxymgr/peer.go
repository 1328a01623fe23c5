package proxymgr

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"keyport/proxymgr/peercred"
)

// The same-user stage. 127.0.0.1 is shared by every user of a machine, and
// a proxy injects its owner's credentials, so a proxy serves only
// connections whose peer socket belongs to the OS user running it (package
// peercred). The owner is looked up once per connection, at its first
// request, and the verdict is kept with the connection: requests on a
// kept-alive connection pay nothing. Every request of another user — the
// health endpoint included — gets 403 and a JSON-RPC error before any other
// stage sees it, nothing reaches the upstream, and the attempt is counted
// (Counters.ForeignPeers) and logged at most every peerLogInterval; it is
// not a tool call, so it is not audited.
//
// A connection whose owner cannot be established on a system where the
// check is active (its socket already closed, a failed lookup) is refused
// the same way: fail closed. Where the system has no check
// (peercred.Supported), every connection is served and Start says so.

// peerLogInterval bounds the warnings about other users' connections: a
// flood of them writes one line per interval, with the count of the rest.
const peerLogInterval = 10 * time.Second

// msgForeignPeer is what another user's client is told. It names no server.
const msgForeignPeer = "forbidden: this Keyport proxy belongs to another user of this machine; each user runs their own Keyport"

// connPeerKey is the context key of a connection's *connPeer.
type connPeerKey struct{}

// connPeer is one connection's peer verdict, looked up at its first request.
type connPeer struct {
	conn net.Conn
	once sync.Once
	v    peercred.Verdict
}

func (c *connPeer) verdict() peercred.Verdict {
	c.once.Do(func() { c.v = lookupPeer(c.conn) })
	return c.v
}

// lookupPeer looks a connection's peer up (a variable only so that a
// benchmark can measure the proxy without it).
var lookupPeer = peercred.CheckConn

// withConnPeer is the socket's http.Server.ConnContext: it gives each
// connection a place for its verdict. The lookup itself waits for the
// first request, in the connection's own goroutine, so the accept loop
// never does it.
func withConnPeer(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connPeerKey{}, &connPeer{conn: c})
}

// peerVerdict is the verdict of r's connection.
func peerVerdict(r *http.Request) peercred.Verdict {
	if r.Context().Value(inProcessKey{}) != nil {
		return inProcessVerdict // local.go: sent by this process
	}
	if c, ok := r.Context().Value(connPeerKey{}).(*connPeer); ok {
		return c.verdict()
	}
	// Proxy.ServeHTTP on another server: look up this request's connection.
	var local netip.AddrPort
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		local = a.AddrPort()
	}
	remote, _ := netip.ParseAddrPort(r.RemoteAddr)
	return peercred.Check(local, remote)
}

// peerGate counts and logs the requests refused by the same-user stage.
type peerGate struct {
	refused atomic.Int64

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int64
}

// checkPeer refuses, with 403, a request whose connection is not from this
// OS user (or cannot be told to be).
func (p *Proxy) checkPeer(w http.ResponseWriter, r *http.Request) bool {
	v := peerVerdict(r)
	if v.Allowed() {
		return true
	}
	p.peers.refused.Add(1)
	p.changed(false)
	msg := msgForeignPeer
	if v.Kind != peercred.Other {
		why := "unknown reason"
		if v.Err != nil {
			why = v.Err.Error()
		}
		msg = "forbidden: Keyport could not verify that this connection comes from the user this proxy belongs to (" + why + ")"
	}
	if ok, suppressed := p.peers.admitLog(time.Now()); ok {
		args := []any{"peer", v.String(), "client", r.RemoteAddr}
		if v.UID >= 0 {
			args = append(args, "peer_uid", v.UID)
		}
		if suppressed > 0 {
			args = append(args, "refused_since_last_warning", suppressed)
		}
		p.log.Warn("refused a connection of another user of this machine: the proxy serves only its own user's programs", args...)
	}
	w.Header().Set("Connection", "close")
	writeJSON(w, http.StatusForbidden, rpcError(nil, codeInvalidRequest, msg))
	return false
}

// admitLog reports whether a warning may be written now, and how many were
// held back since the last one.
func (g *peerGate) admitLog(now time.Time) (bool, int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.lastLog.IsZero() && now.Sub(g.lastLog) < peerLogInterval {
		g.suppressed++
		return false, 0
	}
	g.lastLog = now
	n := g.suppressed
	g.suppressed = 0
	return true, n
}

// logPeerCheck says at start when other users can use the proxy.
func (p *Proxy) logPeerCheck() {
	if s := peercred.Supported(); !s.Active {
		p.log.Warn("other users of this machine can use this proxy: this system has no same-user check", "reason", s.Reason)
	}
}
