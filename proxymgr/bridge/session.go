package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// The upstream session (protocol versions before 2026-07-28): its
// creation, the standalone GET stream, its loss, and reconnection.

// resetForInitialize starts over when the client (re)initializes: the
// client is starting a new session, so a stale or down state is cleared and
// the previous session ends. b.mu must be held.
func (b *bridge) resetForInitialize() {
	if old := b.sess; old != nil {
		b.sess = nil
		old.cancel()
		b.goDo(func() { b.deleteSession(old) })
	}
	b.state = stateNew
	b.stateErr = nil
	b.everReady = false
	b.logLevel = nil
	clear(b.subs)
	b.settle()
}

// settle wakes requests waiting for a reconnection. b.mu must be held.
func (b *bridge) settle() {
	select {
	case <-b.settled:
	default:
		close(b.settled)
	}
}

// startListening opens the session's standalone GET stream (2025 era) for
// server-initiated requests and notifications, once per session, and waits
// (a second at most) until the server has answered it: a server may send a
// request there as soon as the client's next call arrives, and drops what
// it cannot deliver. The go-sdk client waits the same way.
func (b *bridge) startListening(sess *session) {
	if sess.version >= version20260728 {
		return
	}
	sess.listenOnce.Do(func() {
		sess.listening = make(chan struct{})
		b.goDo(func() { b.listen(sess) })
	})
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-sess.listening:
	case <-t.C:
		b.log.Debug("the server has not answered the GET stream yet; going on")
	case <-sess.ctx.Done():
	}
}

// listen keeps the standalone GET stream open while the session lives.
func (b *bridge) listen(sess *session) {
	var (
		lastID   string
		failures int
	)
	answered := sync.OnceFunc(func() { close(sess.listening) })
	defer answered()
	for sess.ctx.Err() == nil {
		resp, err := b.get(sess.ctx, sess, lastID)
		answered()
		if err != nil {
			if sess.ctx.Err() != nil {
				return
			}
			b.noteFailure(err)
			if !b.canRecover() {
				b.goDown(sess, err)
				return
			}
			if failures == 0 {
				b.log.Warn("the event stream from the server broke; retrying", "error", err)
			}
			sleepCtx(sess.ctx, b.backoff(failures))
			failures++
			continue
		}
		switch {
		case resp.StatusCode == http.StatusMethodNotAllowed:
			resp.Body.Close()
			b.log.Debug("the server offers no standalone event stream (HTTP 405)")
			return
		case resp.StatusCode == http.StatusNotFound && sess.id != "":
			drain(resp.Body)
			resp.Body.Close()
			b.sessionLost(sess, errSessionMissing)
			return
		case resp.StatusCode/100 == 2 && mediaType(resp.Header) == "text/event-stream":
			if failures > 0 {
				b.log.Info("the event stream from the server is back")
			}
			started := time.Now()
			r := newSSEReader(resp.Body, b.cfg.MaxMessageSize)
			r.LastID = lastID
			err := b.relayEvents(r, nil, sess)
			r.release()
			resp.Body.Close()
			lastID = r.LastID
			if sess.ctx.Err() != nil {
				return
			}
			if time.Since(started) > 10*time.Second {
				failures = 0
			}
			delay := r.Retry
			if delay == 0 {
				delay = b.backoff(failures)
			}
			failures++
			b.log.Debug("the event stream from the server ended; reopening", "error", err)
			sleepCtx(sess.ctx, delay)
		case resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests:
			drain(resp.Body)
			resp.Body.Close()
			sleepCtx(sess.ctx, b.backoff(failures))
			failures++
		default:
			drain(resp.Body)
			resp.Body.Close()
			b.log.Warn("the server refused the standalone event stream; server-initiated messages arrive only during requests",
				"status", resp.Status)
			return
		}
	}
}

// established records the session the client's initialize created.
func (b *bridge) established(c *call, m *message) {
	id, caps, err := parseInitializeResult(m.result)
	if err != nil {
		b.log.Warn("could not read the initialize result", "error", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	ctx, cancel := context.WithCancel(b.ctx)
	sess := &session{id: c.sessionID, version: id.protocol, gen: b.gen, ctx: ctx, cancel: cancel, caps: caps}
	if old := b.sess; old != nil {
		old.cancel()
		b.goDo(func() { b.deleteSession(old) })
	}
	b.sess = sess
	b.state = stateReady
	b.everReady = true
	b.identity = id
	b.initReq = c.msg.params
	b.settle()
	b.log.Info("connected", "server_name", id.name, "server_version", id.version, "protocol", id.protocol,
		"session", sess.id != "")
}

// parseInitializeResult extracts the server's identity and capabilities.
func parseInitializeResult(result []byte) (identity, []byte, error) {
	var r struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ServerInfo      struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"serverInfo"`
	}
	err := json.Unmarshal(result, &r)
	return identity{name: r.ServerInfo.Name, version: r.ServerInfo.Version, protocol: r.ProtocolVersion}, r.Capabilities, err
}

// sessionLost handles the loss of sess: it starts reconnecting, or with
// AutoReconnect off, marks the bridge down.
func (b *bridge) sessionLost(sess *session, cause error) {
	b.mu.Lock()
	if sess == nil || b.sess != sess || b.state != stateReady {
		b.mu.Unlock()
		return
	}
	b.lastErr = cause
	if !b.cfg.AutoReconnect {
		b.mu.Unlock()
		b.goDown(sess, cause)
		return
	}
	b.state = stateReconnecting
	b.settled = make(chan struct{})
	b.mu.Unlock()
	b.log.Warn("lost the session; reconnecting", "cause", cause)
	sess.cancel()
	b.failWaitingCalls(sess, cause)
	b.goDo(func() { b.reconnect(sess) })
}

// goDown marks the bridge down (AutoReconnect off): every request from now
// on is answered with an error telling the user to restart the client.
func (b *bridge) goDown(sess *session, cause error) {
	b.mu.Lock()
	if b.state == stateDown || b.state == stateStale || (sess != nil && b.sess != sess) {
		b.mu.Unlock()
		return
	}
	b.state = stateDown
	b.stateErr = b.downError(cause)
	b.settle()
	b.mu.Unlock()
	b.log.Error("lost the connection to the server; automatic reconnection is off", "cause", cause)
	if sess != nil {
		sess.cancel()
		b.failWaitingCalls(sess, cause)
	}
}

// failWaitingCalls answers the calls waiting for a response on the GET
// stream of a session that is gone (calls reading their own response
// stream finish or fail on their own).
func (b *bridge) failWaitingCalls(sess *session, cause error) {
	b.mu.Lock()
	var waiting []*call
	for _, c := range b.calls {
		if c.viaGET && !c.modern {
			waiting = append(waiting, c)
		}
	}
	b.mu.Unlock()
	for _, c := range waiting {
		b.answerError(c, b.lostInFlight(c, cause).Error())
	}
}

// reconnect re-establishes a lost session: it replays the client's
// initialize (and notifications/initialized), checks that the server is
// still the same, restores the log level and subscriptions, and reopens the
// GET stream.
func (b *bridge) reconnect(old *session) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !sleepCtx(b.ctx, b.backoff(attempt-1)) {
			return
		}
		if b.ctx.Err() != nil {
			return
		}
		b.mu.Lock()
		initParams, note, want := b.initReq, b.initNote, b.identity
		b.mu.Unlock()
		m, sessionID, err := b.internalCall(nil, "initialize", initParams)
		if err == nil && m.errObj != nil {
			err = fmt.Errorf("the server refused to initialize: %s", m.errObj)
		}
		if err != nil {
			b.noteFailure(err)
			if attempt == 0 || attempt%10 == 0 {
				b.log.Warn("reconnecting failed; retrying", "attempt", attempt+1, "error", err)
			}
			continue
		}
		got, caps, _ := parseInitializeResult(m.result)
		b.mu.Lock()
		b.gen++
		ctx, cancel := context.WithCancel(b.ctx)
		sess := &session{id: sessionID, version: got.protocol, gen: b.gen, ctx: ctx, cancel: cancel, caps: caps}
		if b.state != stateReconnecting || b.sess != old {
			// The client re-initialized meanwhile: this session is not needed.
			b.mu.Unlock()
			b.deleteSession(sess)
			return
		}
		if got != want {
			b.state = stateStale
			b.stateErr = fmt.Errorf("%s changed while Keyport was reconnecting (was %s; now %s): restart your MCP client to start a new session",
				b.cfg.Name, want, got)
			b.settle()
			b.mu.Unlock()
			b.log.Error("the server changed identity; the client must restart", "was", want.String(), "now", got.String())
			b.deleteSession(sess)
			return
		}
		b.mu.Unlock()

		if note == nil {
			note = []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		}
		nm, _ := parseMessage(note)
		if !b.post(sess, &nm, "notifications/initialized") {
			b.deleteSession(sess)
			continue
		}
		b.replay(sess)
		b.startListening(sess)

		b.mu.Lock()
		b.sess = sess
		b.state = stateReady
		b.lastErr = nil
		b.settle()
		b.mu.Unlock()
		b.log.Info("reconnected", "attempts", attempt+1)
		b.announceListChanges(caps)
		return
	}
}

// replay restores the client's log level and resource subscriptions on a
// new session.
func (b *bridge) replay(sess *session) {
	b.mu.Lock()
	level := b.logLevel
	subs := make([][]byte, 0, len(b.subs))
	for _, p := range b.subs {
		subs = append(subs, p)
	}
	b.mu.Unlock()
	if level != nil {
		if _, _, err := b.internalCall(sess, "logging/setLevel", level); err != nil {
			b.log.Warn("could not restore the log level", "error", err)
		}
	}
	for _, p := range subs {
		if _, _, err := b.internalCall(sess, "resources/subscribe", p); err != nil {
			b.log.Warn("could not restore a resource subscription", "error", err)
		}
	}
}

// announceListChanges tells the client to refresh the lists the server may
// have changed while it was away.
func (b *bridge) announceListChanges(caps []byte) {
	for _, kind := range []string{"tools", "prompts", "resources"} {
		if lc := field(field(caps, kind), "listChanged"); string(lc) == "true" {
			b.out.write([]byte(`{"jsonrpc":"2.0","method":"notifications/` + kind + `/list_changed"}`))
		}
	}
}

// deleteSession ends sess on the server (best effort, bounded).
func (b *bridge) deleteSession(sess *session) {
	if sess == nil || sess.id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := b.newRequest(ctx, http.MethodDelete, sess, nil)
	if err != nil {
		b.log.Debug("could not end the session", "error", err)
		return
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.log.Debug("could not end the session", "error", redactErr(err))
		return
	}
	drain(resp.Body)
	resp.Body.Close()
}
