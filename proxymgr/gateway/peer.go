package gateway

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

// The profile endpoint is a local listener like a server's proxy, and
// what it serves is reached with its owner's credentials (through the
// member proxies): so it serves only connections whose peer belongs to the
// OS user running it, with the same check as the proxies (package
// peercred), looked up once per connection and failing closed. Another
// user's request gets 403 before anything else reads it; nothing reaches a
// member. The gateway's own connections to the member proxies come from
// this process, so the proxies' check lets them through, and only them.

// msgForeignPeer is what another user's client is told.
const msgForeignPeer = "forbidden: this Keyport profile endpoint belongs to another user of this machine; each user runs their own Keyport"

type connPeerKey struct{}

type connPeer struct {
	conn net.Conn
	once sync.Once
	v    peercred.Verdict
}

func (c *connPeer) verdict() peercred.Verdict {
	c.once.Do(func() { c.v = peercred.CheckConn(c.conn) })
	return c.v
}

// withConnPeer is the listener's http.Server.ConnContext.
func withConnPeer(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connPeerKey{}, &connPeer{conn: c})
}

func peerVerdict(r *http.Request) peercred.Verdict {
	if c, ok := r.Context().Value(connPeerKey{}).(*connPeer); ok {
		return c.verdict()
	}
	var local netip.AddrPort
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		local = a.AddrPort()
	}
	remote, _ := netip.ParseAddrPort(r.RemoteAddr)
	return peercred.Check(local, remote)
}

// peerGate counts the refused requests and limits their warnings.
type peerGate struct {
	refused atomic.Int64
	lastLog atomic.Int64 // unix nanoseconds of the last warning
}

// checkPeer refuses, with 403, a request whose connection is not from this
// OS user (or cannot be told to be).
func (g *Gateway) checkPeer(w http.ResponseWriter, r *http.Request) bool {
	v := peerVerdict(r)
	if v.Allowed() {
		return true
	}
	g.peers.refused.Add(1)
	msg := msgForeignPeer
	if v.Kind != peercred.Other {
		why := "unknown reason"
		if v.Err != nil {
			why = v.Err.Error()
		}
		msg = "forbidden: Keyport could not verify that this connection comes from the user this profile endpoint belongs to (" + why + ")"
	}
	now := time.Now().UnixNano()
	if last := g.peers.lastLog.Load(); now-last > int64(10*time.Second) && g.peers.lastLog.CompareAndSwap(last, now) {
		g.log.Warn("refused a connection of another user of this machine: the profile endpoint serves only its own user's programs", "peer", v.String(), "client", r.RemoteAddr)
	}
	w.Header().Set("Connection", "close")
	writeError(w, http.StatusForbidden, msg)
	return false
}

// ForeignPeers is how many requests of other users were refused.
func (g *Gateway) ForeignPeers() int64 { return g.peers.refused.Load() }
