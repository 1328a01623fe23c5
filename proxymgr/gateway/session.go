package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// clientSession is one 2025-era client session and its member sessions.
type clientSession struct {
	g       *Gateway
	ss      *mcp.ServerSession
	init    *mcp.InitializeParams
	set     *memberSet
	started time.Time

	sid string // its Mcp-Session-Id

	mu          sync.Mutex
	initialized bool                 // the client sent notifications/initialized
	logLevel    mcp.LoggingLevel     // what the client asked for, replayed to members
	subs        map[string]bool      // resource URIs the client subscribed to
	passing     map[string]*passCall // passed tool calls by their client id (passthrough.go)
	passKeys    map[string]*passCall // the same, by key, with those awaiting a resume
	asks        map[string]*passAsk  // member requests relayed by passed calls, by id
	closeOnce   sync.Once

	idleMu sync.Mutex
	posts  int         // POSTs in flight
	idle   *time.Timer // ends the session sessionTimeout after its last POST
}

// newClientSession registers ss and starts connecting its members.
func (g *Gateway) newClientSession(ss *mcp.ServerSession, init *mcp.InitializeParams) *clientSession {
	c := &clientSession{g: g, ss: ss, init: init, sid: ss.ID(), started: time.Now(), subs: map[string]bool{}}
	c.set = newMemberSet(g, c)
	g.mu.Lock()
	closed := g.closed
	if !closed {
		g.sessions[ss] = c
		if c.sid != "" {
			g.bySID[c.sid] = c
		}
	}
	g.mu.Unlock()
	if closed {
		return c
	}
	c.idleMu.Lock()
	c.idle = time.AfterFunc(g.sessionTimeout, c.close)
	c.idleMu.Unlock()
	c.set.reconcile(g.config().Members)
	go func() {
		_ = ss.Wait()
		c.close()
	}()
	return c
}

// session finds the client session of ss (nil for stateless requests).
func (g *Gateway) session(ss *mcp.ServerSession) *clientSession {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sessions[ss]
}

// sessionByID finds the client session with the Mcp-Session-Id sid.
func (g *Gateway) sessionByID(sid string) *clientSession {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bySID[sid]
}

// The session timeout. The gateway keeps it itself, rather than the go-sdk
// handler, because passed tool calls (passthrough.go) never reach that
// handler: as there, a session ends Gateway.sessionTimeout after its last
// POST ended, and not while one is in flight.

// postStarted pauses the timeout while a POST of the session is served.
func (c *clientSession) postStarted() {
	c.idleMu.Lock()
	defer c.idleMu.Unlock()
	if c.posts == 0 && c.idle != nil {
		c.idle.Stop()
	}
	c.posts++
}

// postEnded restarts the timeout after the session's last POST.
func (c *clientSession) postEnded() {
	c.idleMu.Lock()
	defer c.idleMu.Unlock()
	c.posts--
	if c.posts == 0 && c.idle != nil {
		c.idle.Reset(c.g.sessionTimeout)
	}
}

// setFor is the member sessions a request of ss goes to.
func (g *Gateway) setFor(ss *mcp.ServerSession) *memberSet {
	if c := g.session(ss); c != nil {
		return c.set
	}
	return g.pool
}

func (c *clientSession) close() {
	c.closeOnce.Do(func() {
		c.g.mu.Lock()
		delete(c.g.sessions, c.ss)
		if c.g.bySID[c.sid] == c {
			delete(c.g.bySID, c.sid)
		}
		c.g.mu.Unlock()
		c.idleMu.Lock()
		if c.idle != nil {
			c.idle.Stop()
			c.idle = nil
		}
		c.idleMu.Unlock()
		c.endPassed()
		c.set.close()
		_ = c.ss.Close()
	})
}

// changed tells the client that lists changed (a member came, went or
// changed its own lists): it re-lists and gets the re-merged lists.
func (c *clientSession) changed(kinds ...string) {
	c.mu.Lock()
	ready := c.initialized
	c.mu.Unlock()
	if !ready {
		return
	}
	if len(kinds) == 0 {
		kinds = []string{"notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"}
	}
	for _, k := range kinds {
		var p mcp.Params
		switch k {
		case "notifications/tools/list_changed":
			p = &mcp.ToolListChangedParams{}
		case "notifications/prompts/list_changed":
			p = &mcp.PromptListChangedParams{}
		default:
			p = &mcp.ResourceListChangedParams{}
		}
		c.g.relay(context.Background(), c.ss, k, p)
	}
}

// memberSet is the member sessions of one client session, or, for owner
// nil, the shared sessions of stateless requests.
type memberSet struct {
	g     *Gateway
	owner *clientSession

	mu     sync.Mutex
	conns  []*memberConn
	routes routes
	closed bool
}

func newMemberSet(g *Gateway, owner *clientSession) *memberSet {
	return &memberSet{g: g, owner: owner}
}

// members are the member connections in profile order.
func (s *memberSet) members() []*memberConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.conns)
}

// member finds the connection of server.
func (s *memberSet) member(server string) *memberConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, mc := range s.conns {
		if mc.m.Server == server {
			return mc
		}
	}
	return nil
}

// reconcile makes the set's members those of ms: new ones connect, removed
// ones close, changed ones reconnect. The shared set connects lazily.
func (s *memberSet) reconcile(ms []Member) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	old := s.conns
	next := make([]*memberConn, 0, len(ms))
	var gone, fresh []*memberConn
	changed := false
	for _, m := range ms {
		var keep *memberConn
		for _, mc := range old {
			if mc.m.Server == m.Server {
				keep = mc
			}
		}
		switch {
		case keep != nil && keep.member().URL == m.URL:
			changed = changed || !sameMember(keep.member(), m)
			keep.setMember(m) // selection and overrides apply at the next list
			next = append(next, keep)
		default:
			if keep != nil {
				gone = append(gone, keep)
			}
			mc := newMemberConn(s, m)
			next = append(next, mc)
			fresh = append(fresh, mc)
			changed = true
		}
	}
	for _, mc := range old {
		if !slices.ContainsFunc(ms, func(m Member) bool { return m.Server == mc.m.Server }) {
			gone = append(gone, mc)
			changed = true
		}
	}
	s.conns = next
	s.routes = routes{}
	s.mu.Unlock()
	for _, mc := range next {
		mc.forgetTools() // the selection or overrides may have changed
	}
	for _, mc := range gone {
		mc.close()
	}
	for _, mc := range fresh {
		if s.owner != nil {
			mc.start()
		}
	}
	if changed && len(old) > 0 {
		s.changed()
	}
}

func sameMember(a, b Member) bool {
	if a.URL != b.URL || !slices.Equal(a.Tools, b.Tools) || (a.Tools == nil) != (b.Tools == nil) || len(a.Overrides) != len(b.Overrides) {
		return false
	}
	for k, v := range a.Overrides {
		if b.Overrides[k] != v {
			return false
		}
	}
	return true
}

// changed tells whoever listens to the set that its lists changed.
func (s *memberSet) changed(kinds ...string) {
	if f := s.g.config().OnChange; f != nil {
		f()
	}
	if s.owner != nil {
		s.owner.changed(kinds...)
		return
	}
	s.g.modernChanged(kinds...)
}

// await waits until every member made its first connection attempt, or
// ctx ends.
func (s *memberSet) await(ctx context.Context) {
	for _, mc := range s.members() {
		mc.ensure()
		select {
		case <-mc.ready:
		case <-ctx.Done():
			return
		}
	}
}

func (s *memberSet) close() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, mc := range conns {
		mc.close()
	}
}

// memberConn is one member session and its lifecycle: it connects, and
// when the session is lost (the member's proxy stopped, the server went
// away) it reconnects with backoff, replaying what the client set up.
type memberConn struct {
	set *memberSet

	mu      sync.Mutex
	m       Member
	cs      *mcp.ClientSession
	err     error // why it is down
	slow    bool  // it missed a list deadline; left out until it answers
	started bool
	closed  bool
	calls   []*call // in flight through it, newest last
	cancel  context.CancelFunc
	ready   chan struct{} // closed after the first connection attempt
	kick    chan struct{} // asks the loop to reconnect now

	clientSend atomic.Pointer[mcp.MethodHandler] // the member client's sending handler
	tools      *toolsCache                       // lists.go
	refusal    string                            // the proxy's last refusal (members.go)
}

func newMemberConn(s *memberSet, m Member) *memberConn {
	return &memberConn{set: s, m: m, ready: make(chan struct{}), kick: make(chan struct{}, 1)}
}

func (mc *memberConn) member() Member {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return mc.m
}

func (mc *memberConn) setMember(m Member) {
	mc.mu.Lock()
	mc.m = m
	mc.mu.Unlock()
}

// state reports whether the member is up, and why not.
func (mc *memberConn) state() (bool, string) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	switch {
	case mc.cs != nil && !mc.slow:
		return true, ""
	case mc.cs != nil:
		return false, "it did not answer in time"
	case mc.err != nil:
		return false, mc.err.Error()
	case !mc.started:
		return false, "not connected yet"
	}
	return false, "connecting"
}

// tried reports whether the member's connection loop has started.
func (mc *memberConn) tried() bool {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return mc.started
}

// session is the member session when the member is up.
func (mc *memberConn) session() (*mcp.ClientSession, error) {
	mc.ensure()
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.cs != nil {
		return mc.cs, nil
	}
	if mc.err != nil {
		return nil, mc.err
	}
	return nil, errors.New("it is still connecting")
}

// ensure starts the connection loop once (the shared set connects on first
// use).
func (mc *memberConn) ensure() {
	mc.mu.Lock()
	started := mc.started
	mc.mu.Unlock()
	if !started {
		mc.start()
	}
}

func (mc *memberConn) start() {
	mc.mu.Lock()
	if mc.started || mc.closed {
		mc.mu.Unlock()
		return
	}
	mc.started = true
	ctx, cancel := context.WithCancel(context.Background())
	mc.cancel = cancel
	mc.mu.Unlock()
	go mc.loop(ctx)
}

// Reconnection backoff.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 15 * time.Second
)

// loop keeps the member session up until close.
func (mc *memberConn) loop(ctx context.Context) {
	first := true
	backoff := minBackoff
	for ctx.Err() == nil {
		cs, err := mc.connect(ctx)
		mc.mu.Lock()
		if mc.closed {
			mc.mu.Unlock()
			if cs != nil {
				_ = cs.Close()
			}
			return
		}
		mc.cs, mc.err, mc.slow = cs, err, false
		mc.mu.Unlock()
		if first {
			close(mc.ready)
			first = false
		}
		if err == nil {
			m := mc.member()
			mc.set.g.log.Info("member session up", "server", m.Server)
			mc.replay(ctx, cs)
			mc.set.changed()
			backoff = minBackoff
			up := time.Now()
			_ = cs.Wait()
			mc.mu.Lock()
			closed := mc.closed
			if mc.cs == cs {
				mc.cs = nil
				mc.err = fmt.Errorf("its session ended")
			}
			mc.mu.Unlock()
			if closed {
				return
			}
			mc.set.g.log.Warn("member session lost; reconnecting", "server", m.Server)
			mc.set.changed()
			if time.Since(up) > maxBackoff {
				continue // it was up a while: try again at once
			}
		} else {
			mc.set.g.log.Info("member unavailable; retrying", "server", mc.member().Server, "err", err, "in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-mc.kick:
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// failed records that a request found the member unreachable: the session
// is dropped and the loop reconnects (and the client hears list_changed).
func (mc *memberConn) failed(cs *mcp.ClientSession, err error) {
	mc.mu.Lock()
	if mc.cs != cs || cs == nil {
		mc.mu.Unlock()
		return
	}
	mc.err = err
	mc.mu.Unlock()
	_ = cs.Close() // the loop sees Wait return and reconnects
}

// markSlow leaves the member out of lists until it answers again.
func (mc *memberConn) markSlow(cs *mcp.ClientSession) {
	mc.mu.Lock()
	if mc.slow || mc.cs != cs {
		mc.mu.Unlock()
		return
	}
	mc.slow = true
	mc.mu.Unlock()
	mc.set.g.log.Warn("member did not answer a list in time; it is left out until it answers", "server", mc.member().Server)
	mc.set.changed()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err := cs.ListTools(ctx, nil)
		mc.mu.Lock()
		recovered := err == nil && mc.cs == cs && mc.slow
		if recovered {
			mc.slow = false
		}
		mc.mu.Unlock()
		if recovered {
			mc.set.g.log.Info("member answers again", "server", mc.member().Server)
			mc.set.changed()
		} else if err != nil {
			mc.failed(cs, fmt.Errorf("it did not answer: %w", err))
		}
	}()
}

func (mc *memberConn) close() {
	mc.mu.Lock()
	if mc.closed {
		mc.mu.Unlock()
		return
	}
	mc.closed = true
	cs, cancel := mc.cs, mc.cancel
	mc.cs = nil
	started := mc.started
	mc.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if cs != nil {
		_ = cs.Close()
	}
	if !started {
		close(mc.ready)
	}
}

// track records a call in flight through the member (messages the member
// sends meanwhile relate to it); the returned func forgets it.
func (mc *memberConn) track(c *call) func() {
	mc.mu.Lock()
	mc.calls = append(mc.calls, c)
	mc.mu.Unlock()
	return func() {
		mc.mu.Lock()
		mc.calls = slices.DeleteFunc(mc.calls, func(x *call) bool { return x == c })
		mc.mu.Unlock()
	}
}

// related is the newest call in flight through the member, if any.
func (mc *memberConn) related() *call {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if n := len(mc.calls); n > 0 {
		return mc.calls[n-1]
	}
	return nil
}
