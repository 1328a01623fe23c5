package proxymgr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"syscall"
	"time"

	"keyport/proxymgr/audit"
)

// credError means the credentials function had no usable credential.
type credError struct{ err error }

func (e *credError) Error() string { return e.err.Error() }
func (e *credError) Unwrap() error { return e.err }

// restoreError means the upstream forgot a session and re-initializing it
// failed for a reason other than the network.
type restoreError struct{ msg string }

func (e *restoreError) Error() string { return e.msg }

// newUpstreamRequest builds the request to the upstream from the client's
// headers: connection headers, the client's Authorization and browser
// context are dropped; static headers and credentials are added.
func (p *Proxy) newUpstreamRequest(ctx context.Context, in http.Header, method string, body []byte, upstreamSID string) (*http.Request, error) {
	u := *p.up
	req := &http.Request{
		Method:     method,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, len(in)+4),
		Host:       u.Host,
		Body:       http.NoBody,
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	h := req.Header
	conn := in.Get("Connection")
	for k, vs := range in {
		if skipRequestHeader(k) {
			continue
		}
		h[k] = vs
	}
	if conn != "" {
		for _, f := range strings.Split(conn, ",") {
			h.Del(strings.TrimSpace(f))
		}
	}
	if upstreamSID != "" {
		h[headerSessionID] = []string{upstreamSID}
	}
	for k, v := range p.cfg.Headers {
		h.Set(k, v)
	}
	if p.cfg.Credentials != nil {
		ch, err := p.cfg.Credentials(ctx)
		if err != nil {
			return nil, &credError{err}
		}
		for k, vs := range ch {
			h[http.CanonicalHeaderKey(k)] = vs
			p.redactor.Add(vs...)
			p.secrets.Add(vs...)
		}
	}
	if p.hasCookies.Load() {
		for _, c := range p.jar.Cookies(p.up) {
			req.AddCookie(c)
		}
	}
	return req.WithContext(ctx), nil
}

// skipRequestHeader reports whether a client header stays out of the
// upstream request (canonical keys, as net/http parses them): connection
// headers; the client's credentials (the proxy sets the server's); browser
// context (origin, cookies of 127.0.0.1) that means nothing upstream;
// Accept-Encoding (the proxy inspects bodies); the session id (mapped);
// Expect (the proxy already holds the body).
func skipRequestHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Authorization", "Cookie", "Origin", "Referer", "Accept-Encoding", "Content-Length", "Host",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Mcp-Session-Id", "Expect",
		viaHeader: // Keyport's own (via.go), never the server's business
		return true
	}
	return strings.HasPrefix(k, "Sec-Fetch-") || strings.HasPrefix(k, "Access-Control-")
}

// roundTrip sends the client's request upstream under the session's current
// upstream id and returns that id with the response.
func (p *Proxy) roundTrip(ctx context.Context, r *http.Request, method string, body []byte, sess *session) (*http.Response, string, error) {
	usid := r.Header.Get(headerSessionID)
	if sess != nil {
		usid = sess.upstream()
	}
	req, err := p.newUpstreamRequest(ctx, r.Header, method, body, usid)
	if err != nil {
		return nil, usid, err
	}
	resp, err := p.send(req, body)
	if err != nil {
		return nil, usid, err
	}
	p.upstreamOK()
	if len(resp.Header["Set-Cookie"]) > 0 {
		p.jar.SetCookies(p.up, resp.Cookies())
		p.hasCookies.Store(true)
	}
	return resp, usid, nil
}

// send sends req. When it fails on a reused keep-alive connection before any
// answer (the server closed the idle connection as the request went out),
// it is sent once more on a new connection, as browsers do: the transport
// does that itself only for idempotent methods.
func (p *Proxy) send(req *http.Request, body []byte) (*http.Response, error) {
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := p.tr.RoundTrip(req)
	if err == nil || !reused || req.Context().Err() != nil || !staleConn(err) {
		return resp, err
	}
	retry := req.Clone(req.Context())
	if body != nil {
		retry.Body = io.NopCloser(bytes.NewReader(body))
	} else {
		retry.Body = http.NoBody
	}
	return p.tr.RoundTrip(retry)
}

// staleConn reports whether err is a connection closed under a request.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// restoreAndRetry handles an upstream that forgot a session it created (it
// restarted): it re-initializes the upstream with the client's own
// initialize, maps the new upstream session behind the client's id, and
// sends the request again. The client never notices.
func (p *Proxy) restoreAndRetry(ctx context.Context, r *http.Request, method string, body []byte, sess *session, usedSID string) (*http.Response, error) {
	if _, err := p.reinit(ctx, r, sess, usedSID); err != nil {
		var re *restoreError
		if !errors.As(err, &re) {
			return nil, err
		}
		p.log.Warn("could not restore a session the server forgot; the client must reconnect", "err", err)
		if s := p.sessions.remove(sess.id); s != nil {
			p.endSession(s, "server forgot the session")
		}
		b := rpcError(nil, codeSessionMissing, fmt.Sprintf("session not found: %s forgot the session and Keyport could not restore it (%s); reconnect", p.name, re.msg))
		return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b))}, nil
	}
	resp, _, err := p.roundTrip(ctx, r, method, body, sess)
	return resp, err
}

func (p *Proxy) reinit(ctx context.Context, r *http.Request, sess *session, usedSID string) (string, error) {
	sess.reinitMu.Lock()
	defer sess.reinitMu.Unlock()
	if cur := sess.upstream(); cur != usedSID {
		return cur, nil // another request restored it already
	}
	start := time.Now()
	sess.mu.Lock()
	body, h := sess.initBody, sess.initHeader.Clone()
	sess.mu.Unlock()
	req, err := p.newUpstreamRequest(ctx, h, http.MethodPost, body, "")
	if err != nil {
		return "", err
	}
	resp, err := p.send(req, body)
	if err != nil {
		return "", err
	}
	newID := resp.Header.Get(headerSessionID)
	proto := initProtocol(resp, p.cfg.MaxInspectBytes)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 || newID == "" {
		return "", &restoreError{fmt.Sprintf("initialize answered %d without a session", resp.StatusCode)}
	}
	h2 := http.Header{"Content-Type": {"application/json"}, "Accept": r.Header.Values("Accept")}
	if v := r.Header.Get(headerProtocol); v != "" {
		proto = v
	}
	if proto != "" {
		h2.Set(headerProtocol, proto)
	}
	if len(h2["Accept"]) == 0 {
		h2.Set("Accept", "application/json, text/event-stream")
	}
	status, err := p.postQuietly(ctx, h2, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), newID)
	if err != nil {
		return "", err
	}
	if status/100 != 2 {
		return "", &restoreError{fmt.Sprintf("notifications/initialized answered %d", status)}
	}
	replayed := p.replayState(ctx, sess, newID, h2)
	sess.mu.Lock()
	sess.upstreamID = newID
	client := sess.client
	sess.mu.Unlock()
	p.log.Info("the server forgot a session (it restarted); re-initialized it for the client", "session", sess.id, "replayed", replayed)
	if p.audit != nil {
		p.audit.Log(audit.Event{Time: start, Type: audit.TypeSessionRestore, Server: p.name, Session: sess.id,
			ClientName: client.name, ClientVersion: client.version, ProtocolVersion: proto, DurationMS: ms(time.Since(start)), Outcome: audit.OutcomeOK})
	}
	return newID, nil
}

// postQuietly POSTs body to the upstream on session sid for the proxy's
// own bookkeeping (re-initializing a session): the answer is read (up to
// 64 KiB) and dropped; its status is returned.
func (p *Proxy) postQuietly(ctx context.Context, h http.Header, body []byte, sid string) (int, error) {
	req, err := p.newUpstreamRequest(ctx, h, http.MethodPost, body, sid)
	if err != nil {
		return 0, err
	}
	resp, err := p.send(req, body)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// replayState sends the upstream's new session newID what the client had
// set on the old one (its log level, its resource subscriptions), so
// notifications keep coming as the client expects. Failures are logged:
// the session works without them. It returns how many requests it sent.
func (p *Proxy) replayState(ctx context.Context, sess *session, newID string, h http.Header) int {
	methods, params := sess.replayable()
	for i, method := range methods {
		body := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":"keyport-restore-%d","method":%q`, i+1, method)
		if len(params[i]) > 0 {
			body = fmt.Appendf(body, `,"params":%s`, params[i])
		}
		body = append(body, '}')
		status, err := p.postQuietly(ctx, h, body, newID)
		if err == nil && status/100 != 2 {
			err = fmt.Errorf("answered %d", status)
		}
		if err != nil {
			p.log.Warn("could not restore the client's "+method+" on the re-initialized session", "session", sess.id, "err", err)
		}
	}
	return len(methods)
}

// initProtocol reads the protocolVersion of an InitializeResult from a JSON
// or SSE response.
func initProtocol(resp *http.Response, limit int64) string {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	b, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	fromMsg := func(data []byte) string {
		m, err := parseMessage(data)
		if err != nil || m.result == nil {
			return ""
		}
		v, _ := paramString(m.result, "protocolVersion")
		return v
	}
	if ct != "text/event-stream" {
		return fromMsg(b)
	}
	var proto string
	sc := newSSEScanner(int(limit))
	sc.feed(b, func(int) {}, func(_ int, ev *sseEvent) {
		if proto == "" && ev.hasData {
			proto = fromMsg(ev.data)
		}
	})
	return proto
}

// failRequest answers a request the upstream could not take: no credential
// (503), or the upstream unreachable (-32603 "NAME unreachable: why").
func (p *Proxy) failRequest(w http.ResponseWriter, r *http.Request, rc *respCtx, err error) {
	if r.Context().Err() != nil || errors.Is(err, context.Canceled) {
		rc.abandon(audit.OutcomeNoResponse, "the client went away or the proxy stopped")
		return // nobody to answer
	}
	var ce *credError
	if errors.As(err, &ce) {
		msg := ce.Error()
		p.log.Warn("no usable credential; answered 503", "err", msg)
		rc.answerAll(w, http.StatusServiceUnavailable, codeInternalError, msg, audit.OutcomeRejected)
		return
	}
	why := reason(err)
	msg := fmt.Sprintf("%s unreachable: %s", p.name, why)
	p.upstreamDown(why)
	p.log.Warn("upstream request failed", "err", why)
	if p.audit != nil {
		p.audit.Log(audit.Event{Type: audit.TypeUpstreamError, Server: p.name, Session: rc.sessID(), Method: r.Method, Outcome: audit.OutcomeUnreachable, Error: msg})
	}
	status := http.StatusBadGateway
	if len(rc.own) > 0 {
		status = http.StatusOK // a JSON-RPC error answers each request
	}
	rc.answerAll(w, status, codeInternalError, msg, audit.OutcomeUnreachable)
}
