package proxymgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A socket is a proxy's listening socket and the HTTP server on it. Every
// request goes to the socket's current proxy. Manager.Restart applies a new
// configuration (a policy edit, a new credential) by making a proxy built
// from it current (startAfter); the old proxy only finishes the requests it
// had. No connection is refused or closed on the way: connections clients
// keep alive carry on, served by the new configuration from their next
// request.
type socket struct {
	ln      net.Listener
	srv     *http.Server
	current atomic.Pointer[Proxy]
	fresh   sync.Map      // connections whose first request is not read yet
	closing atomic.Bool   // the listener is being closed on purpose
	done    chan struct{} // closed when Serve has returned
	err     error         // why Serve returned, if the listener failed; set before done closes
}

func newSocket(ln net.Listener, log *slog.Logger) *socket {
	s := &socket{ln: ln, done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnState:         s.trackFresh,
		ConnContext:       withConnPeer, // peer.go
	}
	return s
}

// serve accepts in the background until the listener closes or fails.
func (s *socket) serve() {
	s.register() // local.go: this process's profile endpoints reach it in process
	go func() {
		err := s.srv.Serve(s.ln)
		s.unregister()
		if errors.Is(err, http.ErrServerClosed) || s.closing.Load() {
			err = nil
		}
		if err != nil {
			if p := s.current.Load(); p != nil {
				err = fmt.Errorf("%s: the listener failed: %w", p.name, err)
				p.setState(StateError, err.Error())
			}
		}
		s.err = err
		close(s.done)
	}()
}

// ServeHTTP hands the request to the current proxy. A proxy that was
// replaced and is stopping declines, and its successor (already current)
// takes the request.
func (s *socket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for {
		if p := s.current.Load(); p.enter() {
			defer p.handlers.Done()
			p.serveHTTP(w, r)
			return
		}
	}
}

// trackFresh keeps the set of connections that have not sent a request
// yet (http.Server.ConnState).
func (s *socket) trackFresh(c net.Conn, st http.ConnState) {
	if st == http.StateNew {
		s.fresh.Store(c, struct{}{})
	} else {
		s.fresh.Delete(c)
	}
}

// shutdown stops the server gracefully: it stops accepting, lets the
// connections already accepted send their first request (net/http drops,
// unanswered, a connection whose request it reads after Shutdown began),
// runs beforeDrain, then waits for the requests until ctx is done.
func (s *socket) shutdown(ctx context.Context, beforeDrain func()) error {
	s.closing.Store(true)
	s.unregister()
	s.ln.Close()
	<-s.done
	s.awaitFresh(time.Second)
	beforeDrain()
	return s.srv.Shutdown(ctx)
}

// awaitFresh waits, at most max, until every accepted connection has sent
// its first request or closed. It polls, but only while stopping.
func (s *socket) awaitFresh(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		empty := true
		s.fresh.Range(func(any, any) bool { empty = false; return false })
		if empty {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// errNoSocket: the proxy to succeed is not serving (it failed or is
// stopping), so there is no socket to take over.
var errNoSocket = errors.New("no socket to take over")

// startAfter starts p on old's socket and makes it the socket's current
// proxy and owner; old's Shutdown afterwards only finishes its own
// requests, and p listens on old's port. It returns errNoSocket when old is
// not serving.
func (p *Proxy) startAfter(ctx context.Context, old *Proxy) error {
	old.mu.Lock()
	sock, serving := old.sock, old.sock != nil && !old.stopping && old.ownsSock
	old.mu.Unlock()
	if !serving {
		return errNoSocket
	}
	p.inherit = sock
	// The clients' sessions go on: the successor knows how each began (to
	// re-initialize an upstream that restarts), which id the upstream gave
	// it since, and which requests still wait for an answer.
	p.sessions = old.sessions
	// A token refreshed away is still kept from clients.
	p.secrets.Inherit(old.secrets)
	if err := p.Start(ctx); err != nil {
		return err
	}
	old.mu.Lock()
	old.ownsSock = false
	old.mu.Unlock()
	return nil
}

// enter counts a request in, unless p was replaced and is stopping.
func (p *Proxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping && !p.ownsSock {
		return false
	}
	p.handlers.Add(1)
	return true
}

// carryOver continues old's traffic counters and running time in p, its
// successor: for the user it is the same proxy with a new configuration.
func (p *Proxy) carryOver(old *Proxy) {
	p.requests.Add(old.requests.Load())
	p.errs.Add(old.errs.Load())
	p.denials.Add(old.denials.Load())
	p.bytesIn.Add(old.bytesIn.Load())
	p.bytesOut.Add(old.bytesOut.Load())
	p.peers.refused.Add(old.peers.refused.Load())
	p.redactions.Add(old.redactions.Load())
	old.mu.Lock()
	since, state := old.since, old.state
	old.mu.Unlock()
	if state == StateRunning {
		p.mu.Lock()
		p.since = since
		p.mu.Unlock()
	}
}
