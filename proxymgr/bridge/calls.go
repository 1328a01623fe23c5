package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client requests: sending them (with retries), relaying what comes back,
// and answering each exactly once.

// forward sends a request until it is answered, retrying while the server
// is unreachable (the request never left) or lost the session (the request
// was not processed).
func (b *bridge) forward(c *call) {
	defer c.cancel() // releases the call's context (registered with the bridge's)
	defer c.markSent()
	deadline := time.Now().Add(b.cfg.RequestWait)
	for attempt := 0; ; attempt++ {
		sess, err := b.sessionFor(c, deadline)
		if err != nil {
			b.answerError(c, err.Error())
			return
		}
		res, err := b.exchange(c, sess)
		switch res {
		case resDone:
			return
		case resResend:
			continue
		case resSessionLost:
			b.sessionLost(sess, err)
			if !b.canRecover() {
				b.answerError(c, b.downError(err).Error())
				return
			}
		case resRetry:
			b.noteFailure(err)
			if !b.canRecover() {
				b.goDown(sess, err)
				b.answerError(c, b.downError(err).Error())
				return
			}
			if !time.Now().Before(deadline) {
				b.answerError(c, b.unreachable(err).Error())
				return
			}
			c.markSent() // waiting: let the client's next messages through
			if !sleepCtx(c.ctx, min(b.backoff(attempt), time.Until(deadline))) {
				return
			}
		}
	}
}

// sessionFor returns the session a call goes out on, waiting (until
// deadline) while the bridge reconnects. Initialize and 2026-07-28 requests
// use no session.
func (b *bridge) sessionFor(c *call, deadline time.Time) (*session, error) {
	if c.method == "initialize" {
		return nil, nil
	}
	for {
		b.mu.Lock()
		state, sess, settled, stateErr, lastErr := b.state, b.sess, b.settled, b.stateErr, b.lastErr
		b.mu.Unlock()
		switch {
		case state == stateStale || state == stateDown:
			return nil, stateErr
		case c.modern:
			return nil, nil // 2026-07-28 requests need no session
		case state == stateReconnecting:
			c.markSent()
			t := time.NewTimer(time.Until(deadline))
			select {
			case <-settled:
				t.Stop()
				continue
			case <-t.C:
				return nil, b.unreachable(lastErr)
			case <-c.ctx.Done():
				t.Stop()
				return nil, c.ctx.Err()
			}
		default:
			return sess, nil
		}
	}
}

// canRecover reports whether the bridge may retry and reconnect: always
// before the first session, and afterwards only with AutoReconnect.
func (b *bridge) canRecover() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg.AutoReconnect || !b.everReady
}

func (b *bridge) noteFailure(err error) {
	b.mu.Lock()
	b.lastErr = err
	b.mu.Unlock()
}

// backoff is the delay before retry attempt n (0-based), with jitter.
func (b *bridge) backoff(n int) time.Duration {
	d := b.cfg.MinBackoff << min(n, 20)
	if d <= 0 || d > b.cfg.MaxBackoff {
		d = b.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// exchange outcomes.
type result int

const (
	resDone        result = iota // answered, or nothing more to do
	resRetry                     // not delivered: safe to send again
	resSessionLost               // the server does not know the session: not processed
	resResend                    // refused before processing; send again now, differently
)

var errSessionMissing = errors.New("the server no longer knows the session (HTTP 404): it probably restarted")

// exchange POSTs c's message and relays what comes back until c is answered.
// Losing the session does not abort it: on a live server a request in
// flight may still complete, and on a dead one its connection fails anyway.
func (b *bridge) exchange(c *call, sess *session) (result, error) {
	ctx := c.ctx
	var tr sendTrace
	tr.onWrote = c.markSent
	req, err := b.newRequest(tr.with(ctx), http.MethodPost, sess, c.msg)
	if err != nil {
		b.answerError(c, err.Error())
		return resDone, nil
	}
	resp, err := b.client.Do(req)
	if err != nil {
		lost := sess != nil && sess.ctx.Err() != nil
		unsent := tr.unsent(err, &c.staleRetried)
		switch {
		case c.ctx.Err() != nil:
			return resDone, nil // cancelled by the client, or shutting down
		case unsent && lost:
			return resSessionLost, errSessionMissing // never sent: send it on the next session
		case unsent:
			return resRetry, redactErr(err)
		}
		b.noteFailure(err)
		b.answerError(c, b.lostInFlight(c, redactErr(err)).Error())
		return resDone, nil
	}
	defer resp.Body.Close()
	if c.method == "initialize" {
		c.sessionID = resp.Header.Get(hdrSessionID)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && sess != nil && sess.id != "":
		drain(resp.Body)
		return resSessionLost, errSessionMissing
	case resp.StatusCode == http.StatusAccepted:
		// Some servers answer a request on the GET stream instead.
		b.mu.Lock()
		c.viaGET = true
		b.mu.Unlock()
		drain(resp.Body)
		return resDone, nil
	case resp.StatusCode/100 == 2:
		switch mediaType(resp.Header) {
		case "application/json":
			b.readJSON(c, resp.Body)
		case "text/event-stream":
			return b.readStreams(ctx, c, sess, resp.Body)
		default:
			b.answerError(c, fmt.Sprintf("%s answered %q with an unexpected Content-Type %q; is %s an MCP endpoint?",
				b.cfg.Name, c.method, resp.Header.Get("Content-Type"), redactURL(b.cfg.URL)))
		}
		return resDone, nil
	default:
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if b.retryPlainName(c, req, resp.StatusCode, data) {
			return resResend, nil
		}
		b.answerHTTPError(c, resp.StatusCode, resp.Status, data)
		return resDone, nil
	}
}

// retryPlainName reports whether a request rejected with HeaderMismatch
// (-32020) about Mcp-Name, whose name the bridge had base64-encoded as the
// specification requires, should be sent again with the plain name: some
// servers compare Mcp-Name without decoding it. A rejected request was not
// processed, so sending it again is safe; it happens once per request, and
// the bridge then sends plain names to this server.
func (b *bridge) retryPlainName(c *call, req *http.Request, status int, body []byte) bool {
	if status != http.StatusBadRequest || c.nameRetried || !strings.HasPrefix(req.Header.Get(hdrName), b64Prefix) {
		return false
	}
	m, err := parseMessage(bytes.TrimSpace(body))
	if err != nil || m.errObj == nil {
		return false
	}
	code, msg := field(m.errObj, "code"), field(m.errObj, "message")
	if string(code) != "-32020" || !bytes.Contains(msg, []byte(hdrName)) {
		return false
	}
	c.nameRetried = true
	if !b.rawName.Swap(true) {
		b.log.Info("the server does not decode base64 Mcp-Name values; sending names as plain UTF-8")
	}
	return true
}

// readJSON relays a single JSON response body.
func (b *bridge) readJSON(c *call, body io.Reader) {
	data, err := io.ReadAll(io.LimitReader(body, int64(b.cfg.MaxMessageSize)+1))
	if err != nil {
		if c.ctx.Err() == nil {
			b.answerError(c, b.lostInFlight(c, redactErr(err)).Error())
		}
		return
	}
	if len(data) > b.cfg.MaxMessageSize {
		b.answerError(c, fmt.Sprintf("%s: the response to %q is larger than %d bytes", b.cfg.Name, c.method, b.cfg.MaxMessageSize))
		return
	}
	m, err := parseMessage(data)
	if err != nil {
		b.answerError(c, fmt.Sprintf("%s sent an invalid response to %q: %v", b.cfg.Name, c.method, err))
		return
	}
	if !m.isResponse() {
		b.fromServer(&m)
		b.answerError(c, fmt.Sprintf("%s answered %q with a %s instead of a response", b.cfg.Name, c.method, kindOf(&m)))
		return
	}
	b.deliver(c, &m)
}

// maxResumeAttempts bounds stream resumption attempts that make no progress.
const maxResumeAttempts = 5

// readStreams relays the event stream answering c and, if it breaks before
// the response, resumes it with Last-Event-ID (2025 era) on GET requests.
func (b *bridge) readStreams(ctx context.Context, c *call, sess *session, body io.ReadCloser) (result, error) {
	var (
		lastID   string
		retry    time.Duration
		failures int
	)
	for {
		r := newSSEReader(body, b.cfg.MaxMessageSize)
		r.LastID = lastID
		err := b.relayEvents(r, c, sess)
		r.release()
		if b.isDone(c) {
			finishStream(body)
			return resDone, nil
		}
		body.Close()
		if ctx.Err() != nil {
			return resDone, nil // cancelled by the client, or shutting down
		}
		if r.LastID != lastID {
			failures = 0
		}
		lastID = r.LastID
		if r.Retry > 0 {
			retry = r.Retry
		}
		if lastID == "" || sess == nil || c.modern {
			why := "the server closed it"
			if err != nil && err != io.EOF {
				why = redactErr(err).Error()
			}
			b.answerError(c, fmt.Sprintf("%s ended the response stream of %q before answering (%s); retry the request",
				b.cfg.Name, c.method, why))
			return resDone, nil
		}
		failures++
		if failures > maxResumeAttempts {
			b.answerError(c, b.lostInFlight(c, fmt.Errorf("the response stream broke and could not be resumed")).Error())
			return resDone, nil
		}
		delay := retry
		if delay == 0 {
			delay = b.backoff(failures - 1)
		}
		if !sleepCtx(ctx, delay) {
			return resDone, nil
		}
		resp, err := b.get(ctx, sess, lastID)
		if err != nil {
			continue
		}
		switch {
		case resp.StatusCode == http.StatusNotFound:
			drain(resp.Body)
			resp.Body.Close()
			b.answerError(c, b.lostInFlight(c, errSessionMissing).Error())
			b.sessionLost(sess, errSessionMissing)
			return resDone, nil
		case resp.StatusCode/100 == 2 && mediaType(resp.Header) == "text/event-stream":
			body = resp.Body
		default:
			drain(resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests {
				continue
			}
			b.answerError(c, b.lostInFlight(c, fmt.Errorf("resuming the response stream failed: HTTP %s", resp.Status)).Error())
			return resDone, nil
		}
	}
}

// relayEvents relays the messages of one event stream until c is answered
// or the stream ends.
func (b *bridge) relayEvents(r *sseReader, c *call, sess *session) error {
	for {
		ev, err := r.next()
		if err != nil {
			return err
		}
		if ev.name != "" && ev.name != "message" {
			continue
		}
		m, err := parseMessage(ev.data)
		if err != nil {
			b.log.Warn("skipped an invalid message from the server", "error", err)
			continue
		}
		if !m.isResponse() {
			b.fromServer(&m)
			continue
		}
		target := c
		if k := idKey(m.id); c == nil || k != c.key {
			if other := b.lookup(k); other != nil {
				target = other
			}
		}
		if target == nil {
			b.log.Debug("dropped a response nobody waits for", "id", string(m.id))
			continue
		}
		b.deliver(target, &m)
		if target == c {
			return nil
		}
	}
}

func (b *bridge) lookup(key string) *call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[key]
}

func (b *bridge) isDone(c *call) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return c.done
}

// fromServer relays a server request or notification to the client.
func (b *bridge) fromServer(m *message) {
	b.out.write(m.raw)
}

// deliver answers c with the server's response m, after the bookkeeping
// some methods need.
func (b *bridge) deliver(c *call, m *message) {
	if m.result != nil {
		if c.internal == nil {
			b.mu.Lock()
			b.everReady = true
			b.mu.Unlock()
		}
		switch c.method {
		case "initialize":
			if c.internal == nil {
				b.established(c, m)
			}
		case "tools/list":
			m = b.filterTools(m)
		case "logging/setLevel":
			b.mu.Lock()
			b.logLevel = c.msg.params
			b.mu.Unlock()
		case "resources/subscribe", "resources/unsubscribe":
			if uri, ok := unquote(field(c.msg.params, "uri")); ok {
				b.mu.Lock()
				if c.method == "resources/subscribe" {
					b.subs[uri] = c.msg.params
				} else {
					delete(b.subs, uri)
				}
				b.mu.Unlock()
			}
		}
	}
	b.answer(c, m)
}

// answer hands the response to whoever waits for c, once.
func (b *bridge) answer(c *call, m *message) {
	b.mu.Lock()
	if c.done {
		b.mu.Unlock()
		return
	}
	c.done = true
	if b.calls[c.key] == c {
		delete(b.calls, c.key)
	}
	cancelled := c.cancelled
	b.mu.Unlock()
	c.markSent()
	if c.internal != nil {
		c.internal <- m
		return
	}
	if !cancelled {
		b.out.write(withID(m, c.rawID))
	}
}

// answerError answers c with a JSON-RPC internal error (-32603).
func (b *bridge) answerError(c *call, text string) {
	if c.internal == nil && !b.isDone(c) {
		b.log.Warn("request failed", "method", c.method, "error", text)
	}
	raw := errorResponse(c.rawID, -32603, text)
	m, _ := parseMessage(raw)
	b.answer(c, &m)
}

// answerHTTPError answers c after an HTTP error status: with the JSON-RPC
// error the body carries, if any (a proxy saying "sign in ..."), otherwise
// with a message built from the status.
func (b *bridge) answerHTTPError(c *call, statusCode int, status string, data []byte) {
	if m, err := parseMessage(bytes.TrimSpace(data)); err == nil && m.errObj != nil && m.errObj[0] == '{' {
		out := []byte(`{"jsonrpc":"2.0","id":`)
		out = append(out, c.rawID...)
		out = append(out, `,"error":`...)
		out = append(out, m.errObj...)
		out = append(out, '}')
		em, _ := parseMessage(out)
		b.answer(c, &em)
		return
	}
	detail := strings.TrimSpace(string(bytes.ToValidUTF8(data, nil)))
	if len(detail) > 200 {
		detail = detail[:200] + "…"
	}
	if detail != "" {
		detail = ": " + detail
	}
	var text string
	switch statusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		text = fmt.Sprintf("%s refused the request (HTTP %s%s): sign in to %s in Keyport, or check its credentials",
			b.cfg.Name, status, detail, b.cfg.Name)
	case http.StatusTooManyRequests:
		text = fmt.Sprintf("%s is rate limiting requests (HTTP %s%s): retry later", b.cfg.Name, status, detail)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		text = fmt.Sprintf("%s unreachable (HTTP %s%s): retry in a moment", b.cfg.Name, status, detail)
	default:
		text = fmt.Sprintf("%s answered %q with HTTP %s%s", b.cfg.Name, c.method, status, detail)
	}
	b.answerError(c, text)
}

// internalCall sends a request of the bridge's own and waits for its
// response. It returns the Mcp-Session-Id of the response too.
func (b *bridge) internalCall(sess *session, method string, params []byte) (*message, string, error) {
	raw := []byte(`{"jsonrpc":"2.0","id":"keyport-` + strconv.FormatInt(b.nextID.Add(1), 10) + `","method":` +
		strconv.Quote(method))
	if params != nil {
		raw = append(raw, `,"params":`...)
		raw = append(raw, params...)
	}
	raw = append(raw, '}')
	m, err := parseMessage(raw)
	if err != nil {
		return nil, "", err
	}
	ch := make(chan *message, 1)
	c := b.newCall(&m, ch)
	defer c.cancel()
	res, err := b.exchange(c, sess)
	if res == resResend {
		res, err = b.exchange(c, sess)
	}
	switch res {
	case resRetry, resResend:
		return nil, "", b.unreachable(err)
	case resSessionLost:
		return nil, "", err
	}
	select {
	case resp := <-ch:
		if resp.errObj != nil && method == "initialize" {
			return resp, "", nil
		}
		if resp.errObj != nil {
			return resp, c.sessionID, fmt.Errorf("%s: %s", method, resp.errObj)
		}
		return resp, c.sessionID, nil
	default:
		return nil, "", fmt.Errorf("%s: no response", method)
	}
}

// filterTools applies the x-mcp-header rules to a tools/list response.
func (b *bridge) filterTools(m *message) *message {
	b.toolsMu.Lock()
	result, dropped, err := b.tools.filterTools(m.result)
	b.toolsMu.Unlock()
	if err != nil || dropped == nil {
		return m
	}
	for _, d := range dropped {
		b.log.Warn("left out a tool with an invalid x-mcp-header annotation", "tool", d)
	}
	raw := []byte(`{"jsonrpc":"2.0","id":`)
	raw = append(raw, m.id...)
	raw = append(raw, `,"result":`...)
	raw = append(raw, result...)
	raw = append(raw, '}')
	nm, err := parseMessage(raw)
	if err != nil {
		return m
	}
	return &nm
}
