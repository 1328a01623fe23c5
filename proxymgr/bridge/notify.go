package bridge

import (
	"net/http"
	"time"
)

// Client notifications and responses, and cancellation.

// notify forwards a client notification.
func (b *bridge) notify(m *message) {
	switch m.method {
	case "notifications/cancelled":
		if c := b.takeCancelled(m); c != nil {
			// Stop reading a response nobody wants: at once on 2026-07-28,
			// where closing the stream is the cancellation, and after the
			// notification has been forwarded before that.
			defer c.cancel()
			if c.modern {
				return
			}
		}
	case "notifications/initialized":
		b.mu.Lock()
		b.initNote = m.raw
		b.mu.Unlock()
	}
	sess, ok := b.sessionForNotice(metaProtocolVersion(m.params) >= version20260728)
	if !ok {
		return
	}
	if !b.post(sess, m, "the client's "+m.method) {
		return
	}
	if m.method == "notifications/initialized" && sess != nil {
		b.startListening(sess)
	}
}

// sendResponse forwards the client's response to a server request.
func (b *bridge) sendResponse(m *message) {
	sess, ok := b.sessionForNotice(false)
	if !ok {
		return
	}
	b.post(sess, m, "the client's response")
}

// sessionForNotice returns the session a notification or response goes
// out on, waiting briefly if the bridge is reconnecting.
func (b *bridge) sessionForNotice(modern bool) (*session, bool) {
	if modern {
		return nil, true
	}
	c := &call{ctx: b.ctx, sent: make(chan struct{})}
	sess, err := b.sessionFor(c, time.Now().Add(b.cfg.RequestWait))
	if err != nil {
		b.log.Warn("dropped a message from the client", "error", err)
		return nil, false
	}
	return sess, true
}

// post sends a notification or response (no answer expected), retrying
// while the server is unreachable. It reports whether the server took it.
func (b *bridge) post(sess *session, m *message, what string) bool {
	deadline := time.Now().Add(b.cfg.RequestWait)
	staleRetried := false
	for attempt := 0; ; attempt++ {
		ctx := b.ctx
		if sess != nil {
			ctx = sess.ctx
		}
		var tr sendTrace
		req, err := b.newRequest(tr.with(ctx), http.MethodPost, sess, m)
		if err != nil {
			b.log.Warn("could not send "+what, "error", err)
			return false
		}
		resp, err := b.client.Do(req)
		if err == nil {
			drain(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusNotFound && sess != nil && sess.id != "":
				b.sessionLost(sess, errSessionMissing)
				return false
			case resp.StatusCode/100 != 2:
				b.log.Warn("the server refused "+what, "method", m.method, "status", resp.Status)
				return false
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		err = redactErr(err)
		b.noteFailure(err)
		if !tr.unsent(err, &staleRetried) || !b.canRecover() || !time.Now().Before(deadline) {
			if !b.canRecover() {
				b.goDown(sess, err)
			}
			b.log.Warn("could not send "+what, "method", m.method, "error", err)
			return false
		}
		if !sleepCtx(ctx, min(b.backoff(attempt), time.Until(deadline))) {
			return false
		}
	}
}

// takeCancelled finds the request a notifications/cancelled names and
// retires it: its response is not wanted any more.
func (b *bridge) takeCancelled(m *message) *call {
	id := field(m.params, "requestId")
	if id == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls[idKey(id)]
	if c != nil {
		c.cancelled = true
		c.done = true
		delete(b.calls, c.key)
	}
	return c
}
