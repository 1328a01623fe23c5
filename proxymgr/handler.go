package proxymgr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"keyport/proxymgr/audit"
)

// HealthPath is the proxy's health endpoint: a GET answers 200 with the
// server's name in the HealthServerHeader header and a small JSON status,
// so a CLI can tell Keyport's proxy for a server from another program on
// its port. It needs no local token (it reveals only the name and state)
// but the Host and Origin checks apply.
const HealthPath = "/.keyport/health"

// HealthServerHeader carries the server name in health answers.
const HealthServerHeader = "Keyport-Server"

const (
	headerSessionID = "Mcp-Session-Id"
	headerProtocol  = "Mcp-Protocol-Version"
	headerLastEvent = "Last-Event-Id"
)

// ServeHTTP handles one client request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.handlers.Add(1)
	defer p.handlers.Done()
	p.serveHTTP(w, r)
}

// serveHTTP handles one request counted in p.handlers. The request ends
// when its client goes or when the proxy is cancelled (Shutdown), whichever
// comes first: a proxy replaced on its socket cancels only its own.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rw := p.redactAnswers(w) // every byte to the client passes it (redact.go)
	defer rw.finish()
	w = rw
	if p.baseCtx != nil {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(p.baseCtx, cancel)()
		r = r.WithContext(ctx)
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			p.log.Error("internal error while proxying; the request was answered with 500", "panic", fmt.Sprint(v))
			p.errs.Add(1)
			writeJSON(w, http.StatusInternalServerError, rpcError(nil, codeInternalError, fmt.Sprintf("%s: internal error in Keyport's proxy", p.name)))
		}
	}()
	if !p.checkPeer(w, r) { // peer.go: only this OS user's programs
		return
	}
	if !p.checkLocal(w, r) {
		return
	}
	if r.URL.Path == HealthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		p.health(w)
		return
	}
	if r.URL.Path != "/" && r.URL.Path != "/mcp" {
		p.reject(w, http.StatusNotFound, nil, codeInvalidRequest, fmt.Sprintf("%s: no MCP endpoint at %s; use /mcp (or /)", p.name, r.URL.Path))
		return
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		p.preflight(w, r)
		return
	}
	if !p.checkToken(w, r) {
		return
	}
	p.cors(w, r)
	if r.Method == http.MethodPost {
		p.servePOST(w, r)
		return
	}
	p.serveOther(w, r)
}

func (p *Proxy) health(w http.ResponseWriter) {
	st := p.Status()
	b, _ := json.Marshal(struct {
		Server string `json:"server"`
		State  State  `json:"state"`
	}{st.Name, st.State})
	w.Header().Set(HealthServerHeader, p.name)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, b)
}

// reject answers with a JSON-RPC error the proxy produced itself.
func (p *Proxy) reject(w http.ResponseWriter, status int, id []byte, code int, msg string) {
	p.errs.Add(1)
	p.changed(false)
	writeJSON(w, status, rpcError(id, code, msg))
}

// checkLocal enforces DNS-rebinding protection: the Host must be this proxy
// on a loopback name, and a browser Origin must be loopback or allowed.
func (p *Proxy) checkLocal(w http.ResponseWriter, r *http.Request) bool {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || port != p.portStr || !(strings.EqualFold(host, "localhost") || host == "127.0.0.1" || host == "::1") {
		p.reject(w, http.StatusForbidden, nil, codeInvalidRequest, fmt.Sprintf(
			"forbidden: Host %q is not this proxy (%s); Keyport serves local clients only (DNS rebinding protection)", r.Host, p.Addr()))
		return false
	}
	if origins := r.Header.Values("Origin"); len(origins) > 1 {
		// Only the first would be checked, and a server or a browser may
		// believe another: refuse the request, as net/http does two Hosts.
		p.reject(w, http.StatusForbidden, nil, codeInvalidRequest, fmt.Sprintf(
			"forbidden: the request has %d Origin headers; send at most one", len(origins)))
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && !p.originAllowed(o) {
		p.reject(w, http.StatusForbidden, nil, codeInvalidRequest, fmt.Sprintf(
			"forbidden: Origin %q may not use this proxy; only loopback origins (or those allowed in Keyport) may", o))
		return false
	}
	return true
}

func (p *Proxy) originAllowed(o string) bool {
	n, err := normalizeOrigin(o)
	if err != nil {
		return false
	}
	if p.origins[n] {
		return true
	}
	host := n[strings.Index(n, "://")+3:]
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// checkToken enforces the optional local access token (constant time). It
// answers 403, not 401: a 401 makes MCP clients start an OAuth flow.
func (p *Proxy) checkToken(w http.ResponseWriter, r *http.Request) bool {
	if p.cfg.LocalToken == "" {
		return true
	}
	got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
	if subtle.ConstantTimeCompare(got[:], p.tokenSum[:]) == 1 {
		return true
	}
	p.reject(w, http.StatusForbidden, nil, codeInvalidRequest, fmt.Sprintf(
		"forbidden: missing or wrong local access token for %s; send the header Authorization: Bearer <token> with the token Keyport shows for this server", p.name))
	return false
}

func (p *Proxy) cors(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", o)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, Mcp-Protocol-Version")
	}
}

func (p *Proxy) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	p.cors(w, r)
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// servePOST handles a POST: one JSON-RPC message or a batch, inspected
// element by element, forwarded, and its response inspected.
func (p *Proxy) servePOST(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		p.reject(w, http.StatusUnsupportedMediaType, nil, codeInvalidRequest, fmt.Sprintf(
			"unsupported Content-Type %q: MCP messages are POSTed as application/json", r.Header.Get("Content-Type")))
		return
	}
	limit := p.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		p.reject(w, http.StatusRequestEntityTooLarge, nil, codeInvalidRequest, fmt.Sprintf("request body of %d bytes is above the %d-byte limit", r.ContentLength, limit))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(bodyLimitWriter(w), r.Body, limit))
	p.bytesIn.Add(int64(len(body)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			p.reject(w, http.StatusRequestEntityTooLarge, nil, codeInvalidRequest, fmt.Sprintf("request body is above the %d-byte limit", limit))
			return
		}
		p.reject(w, http.StatusBadRequest, nil, codeParseError, "could not read the request body: "+err.Error())
		return
	}
	if !utf8.Valid(body) || !json.Valid(body) {
		p.reject(w, http.StatusBadRequest, nil, codeParseError, "parse error: the request body is not valid JSON (UTF-8)")
		return
	}
	msgs, errs, batch, err := parseMessages(body)
	if err != nil {
		p.reject(w, http.StatusBadRequest, nil, codeInvalidRequest, "invalid request: "+err.Error())
		return
	}
	now := time.Now()
	sid := r.Header.Get(headerSessionID)
	sess := p.sessions.get(sid)
	adopted := false
	if sess == nil && sid != "" {
		// A session the proxy did not see start (it restarted): track it, so
		// responses on other streams are still matched.
		sess = &session{id: sid, upstreamID: sid, started: now, lastSeen: now}
		p.addSession(sess, now)
		adopted = true
	}
	if sess != nil {
		sess.touch(now)
		if sess.tr.size() > maxPending/2 {
			for _, pr := range sess.tr.expire(now, pendingTTL) {
				p.auditRequest(pr, audit.OutcomeNoResponse, "no answer within "+pendingTTL.String(), now.Sub(pr.start))
			}
		}
	}
	rc := &respCtx{p: p, sess: sess, sid: sid, local: &tracker{}}
	tr := rc.local
	if sess != nil {
		tr = &sess.tr
	}

	var (
		local   [][]byte // answers the proxy gives itself
		fwd     = make([][]byte, 0, len(msgs))
		initReq *message
		notifs  []*message
		allBad  = true
		listen  bool
	)
	var ci clientInfo
	if sess != nil {
		sess.mu.Lock()
		ci = sess.client
		sess.mu.Unlock()
	}
	ci.via = via(r) // via.go
	for i := range msgs {
		m := &msgs[i]
		p.requests.Add(1)
		if errs[i] != nil {
			local = append(local, p.refuseAmbiguous(m, errs[i], sess, ci, now))
			continue
		}
		if !batch {
			if err := checkStandardHeaders(r.Header, m); err != nil {
				local = append(local, p.refuse(m, "", sess, ci, now, codeHeaderMismatch, "header mismatch: "+err.Error()))
				continue
			}
		}
		answer, invalid := p.gate(m, sess, ci, now)
		if !invalid {
			allBad = false
		}
		if answer != nil {
			local = append(local, answer)
			continue
		}
		fwd = append(fwd, m.raw)
		switch {
		case m.isRequest():
			if m.method == "initialize" && !batch && sid == "" {
				initReq = m
			}
			if m.method == "subscriptions/listen" {
				listen = true
			}
			if sess != nil {
				sess.remember(m)
			}
			if ci.name == "" && p.audit != nil {
				ci = metaClientInfo(m.params, ci.via)
			}
			pr := p.newPending(m, sess, ci, now)
			key, ok := idKey(m.id)
			if !ok {
				break
			}
			if !tr.add(key, pr) {
				if pr.filter {
					fwd = fwd[:len(fwd)-1]
					local = append(local, rpcError(m.id, codeInternalError, fmt.Sprintf("%s: too many requests in flight on this session", p.name)))
				}
				break
			}
			rc.own = append(rc.own, ownReq{key: key, id: m.id, tr: tr})
		case m.isNotification():
			notifs = append(notifs, m)
		}
	}
	if len(fwd) == 0 && len(msgs) > 0 { // the proxy answered everything itself
		if adopted {
			p.sessions.remove(sid)
		}
		status := http.StatusOK
		if allBad && !batch {
			status = http.StatusBadRequest
		}
		out := joinResponses(local, batch)
		p.bytesOut.Add(int64(len(out)))
		p.changed(false)
		writeJSON(w, status, out)
		return
	}
	out := body
	if len(fwd) != len(msgs) {
		out = joinResponses(fwd, true)
	}
	rc.localResp = local
	rc.batch = batch
	if initReq != nil {
		rc.init = initReq
	}
	if sess == nil && tr.filters.Load() > 0 {
		// Without a session, a tools/list answer may come on another
		// request's stream, where the client takes it too (stream.go).
		defer p.sessions.addLoose(tr)()
	}
	ctx := r.Context()
	if listen {
		// A 2026-era subscriptions/listen stream is open-ended, like a GET
		// stream: a graceful stop ends it at once instead of waiting for it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		if !p.addStream(&cancel) {
			p.reject(w, http.StatusServiceUnavailable, nil, codeInternalError, fmt.Sprintf("%s: the proxy is stopping", p.name))
			return
		}
		defer p.removeStream(&cancel)
		rc.gate = p.listenGate(msgs)
		defer p.closeGate(rc.gate)
	}

	resp, usedSID, err := p.roundTrip(ctx, r, http.MethodPost, out, sess)
	if err != nil {
		p.failRequest(w, r, rc, err)
		if adopted {
			p.sessions.remove(sid)
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && sess != nil && sess.hasInit() {
		resp.Body.Close()
		resp, err = p.restoreAndRetry(ctx, r, http.MethodPost, out, sess, usedSID)
		if err != nil {
			p.failRequest(w, r, rc, err)
			return
		}
		defer resp.Body.Close()
	}
	resp = p.renew(w, r, resp, rc, func(ctx context.Context) (*http.Response, error) {
		next, _, err := p.roundTrip(ctx, r, http.MethodPost, out, sess)
		return next, err
	})
	if resp == nil {
		if adopted {
			p.sessions.remove(sid)
		}
		return
	}
	defer resp.Body.Close()
	if adopted && resp.StatusCode >= 400 {
		p.sessions.remove(sid)
		rc.sess = nil
	}
	for _, n := range notifs {
		p.auditNotification(n, sess, ci, resp.StatusCode, now)
	}
	if initReq != nil {
		p.maybeStartSession(rc, r, resp, body, initReq, now)
	}
	p.respond(w, r, resp, rc)
}

// deny answers a tools/call the policy refuses.
func (p *Proxy) deny(m *message, tool string, sess *session, ci clientInfo, now time.Time) []byte {
	p.denials.Add(1)
	msg := fmt.Sprintf("tool %q is not allowed by the tool policy of server %s in Keyport (%s)", tool, p.name, p.pol)
	if p.audit != nil {
		e := audit.Event{Time: now, Type: audit.TypeDenial, Server: p.name, Method: m.method, ID: m.id, Tool: tool,
			ClientName: ci.name, ClientVersion: ci.version, Via: ci.via, ParamsSize: len(m.params), Outcome: audit.OutcomeDenied, Error: msg}
		if sess != nil {
			e.Session = sess.id
		}
		e.Params = p.auditParams(m.params)
		p.audit.Log(e)
	}
	p.log.Info("denied a tool call", "tool", tool)
	return rpcError(m.id, codeInvalidParams, msg)
}

func (p *Proxy) newPending(m *message, sess *session, ci clientInfo, now time.Time) *pendingReq {
	pr := &pendingReq{method: m.method, id: m.id, start: now, paramsSize: len(m.params), client: ci}
	if m.method == "tools/list" && (!p.pol.Empty() || p.pinning()) {
		pr.filter = true
		p.pinRequest(pr, m)
	}
	if m.method == "tools/call" {
		pr.tool, _ = paramString(m.params, "name")
	}
	if sess != nil {
		pr.session = sess.id
	}
	if p.audit != nil {
		pr.params = p.auditParams(m.params)
	}
	return pr
}

// auditParams returns the params the audit log keeps (the writer redacts
// them off the request path). The body they point into is never reused.
func (p *Proxy) auditParams(params []byte) json.RawMessage {
	if p.audit == nil || len(params) == 0 || p.audit.Config().Params == audit.ParamsNone {
		return nil
	}
	return params
}

// metaClientInfo reads the 2026-era per-request client info from
// params._meta (via is the request's, kept).
func metaClientInfo(params []byte, via string) clientInfo {
	ci := metaClient(params)
	ci.via = via
	return ci
}

func metaClient(params []byte) clientInfo {
	if len(params) == 0 || params[0] != '{' {
		return clientInfo{}
	}
	ms, err := scanObject(params)
	if err != nil {
		return clientInfo{}
	}
	meta, ok := lookup(ms, "_meta")
	if !ok {
		return clientInfo{}
	}
	mms, err := scanObject(meta)
	if err != nil {
		return clientInfo{}
	}
	info, ok := lookup(mms, "io.modelcontextprotocol/clientInfo")
	if !ok {
		return clientInfo{}
	}
	n, _ := paramString(info, "name")
	v, _ := paramString(info, "version")
	return clientInfo{name: n, version: v}
}

// maybeStartSession records a session the upstream created in answer to the
// client's initialize.
func (p *Proxy) maybeStartSession(rc *respCtx, r *http.Request, resp *http.Response, body []byte, init *message, now time.Time) {
	sid := resp.Header.Get(headerSessionID)
	if sid == "" || resp.StatusCode/100 != 2 {
		return
	}
	h := make(http.Header)
	for _, k := range []string{"Accept", "Content-Type", "User-Agent", headerProtocol, "Mcp-Method"} {
		if v := r.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	s := &session{id: sid, upstreamID: sid, initBody: bytes.Clone(body), initHeader: h, started: now, lastSeen: now}
	if init.params != nil {
		if ms, err := scanObject(init.params); err == nil {
			if v, ok := lookup(ms, "protocolVersion"); ok {
				s.protocol, _ = unquote(v)
			}
			if v, ok := lookup(ms, "clientInfo"); ok {
				s.client.name, _ = paramString(v, "name")
				s.client.version, _ = paramString(v, "version")
			}
		}
	}
	p.addSession(s, now)
	rc.newSess = s
}

func (p *Proxy) addSession(s *session, now time.Time) {
	for _, old := range p.sessions.put(s, now) {
		p.endSession(old, "forgotten (idle)")
	}
	p.changed(false)
}

// endSession logs the end of a session the proxy forgets.
func (p *Proxy) endSession(s *session, why string) {
	for _, pr := range s.tr.expire(time.Now(), 0) {
		p.auditRequest(pr, audit.OutcomeNoResponse, "", time.Since(pr.start))
	}
	if p.audit != nil && s.initBody != nil {
		s.mu.Lock()
		e := audit.Event{Type: audit.TypeSessionEnd, Server: p.name, Session: s.id, ClientName: s.client.name, ClientVersion: s.client.version,
			ProtocolVersion: s.protocol, DurationMS: ms(time.Since(s.started)), Outcome: audit.OutcomeOK, Error: why}
		s.mu.Unlock()
		if why == "" {
			e.Error = ""
		}
		p.audit.Log(e)
	}
	p.changed(false)
}

func (s *session) hasInit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.initBody != nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (p *Proxy) auditNotification(m *message, sess *session, ci clientInfo, status int, now time.Time) {
	if p.audit == nil {
		return
	}
	e := audit.Event{Time: now, Type: audit.TypeNotification, Server: p.name, Method: m.method, ClientName: ci.name, ClientVersion: ci.version, Via: ci.via,
		ParamsSize: len(m.params), Params: p.auditParams(m.params), Outcome: audit.OutcomeOK, Status: status}
	if sess != nil {
		e.Session = sess.id
	}
	if status >= 400 {
		e.Outcome = audit.OutcomeError
	}
	p.audit.Log(e)
}

// auditRequest logs an answered (or abandoned) request. ping and */list are
// skipped when they succeed, unless the audit config asks for them.
func (p *Proxy) auditRequest(pr *pendingReq, outcome, errText string, d time.Duration) {
	if p.audit == nil {
		return
	}
	if outcome == audit.OutcomeOK && !p.audit.Config().LogList && (pr.method == "ping" || strings.HasSuffix(pr.method, "/list")) {
		return
	}
	p.audit.Log(audit.Event{Time: pr.start, Type: audit.TypeRequest, Server: p.name, Session: pr.session,
		ClientName: pr.client.name, ClientVersion: pr.client.version, Via: pr.client.via, Method: pr.method, ID: pr.id, Tool: pr.tool,
		ParamsSize: pr.paramsSize, Params: pr.params, DurationMS: ms(d), Outcome: outcome, Error: errText})
}

// serveOther forwards GET (the standalone SSE stream), DELETE (session end)
// and any other method, streaming the body both ways.
func (p *Proxy) serveOther(w http.ResponseWriter, r *http.Request) {
	if !p.checkBodiless(w, r) {
		return
	}
	var body []byte // only POSTs carry messages, and they are inspected
	sid := r.Header.Get(headerSessionID)
	sess := p.sessions.get(sid)
	ctx := r.Context()
	if r.Method == http.MethodGet {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		if !p.addStream(&cancel) {
			p.reject(w, http.StatusServiceUnavailable, nil, codeInternalError, fmt.Sprintf("%s: the proxy is stopping", p.name))
			return
		}
		defer p.removeStream(&cancel)
	}
	if sess != nil {
		sess.touch(time.Now())
	}
	rc := &respCtx{p: p, sess: sess, sid: sid, local: &tracker{}}
	if r.Method == http.MethodGet {
		rc.gate = p.getGate(sess)
		defer p.closeGate(rc.gate)
	}
	resp, usedSID, err := p.roundTrip(ctx, r, r.Method, body, sess)
	if err != nil {
		p.failRequest(w, r, rc, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && sess != nil && sess.hasInit() && r.Method == http.MethodGet {
		resp.Body.Close()
		r2 := r.Clone(ctx)
		r2.Header.Del(headerLastEvent) // the event ids of the old upstream session mean nothing now
		resp, err = p.restoreAndRetry(ctx, r2, r.Method, body, sess, usedSID)
		if err != nil {
			p.failRequest(w, r, rc, err)
			return
		}
		defer resp.Body.Close()
	}
	resp = p.renew(w, r, resp, rc, func(ctx context.Context) (*http.Response, error) {
		next, _, err := p.roundTrip(ctx, r, r.Method, body, sess)
		return next, err
	})
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	if r.Method == http.MethodDelete && sess != nil && (resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotFound) {
		if s := p.sessions.remove(sess.id); s != nil {
			p.endSession(s, "")
		}
	}
	if sess == nil && sid != "" && r.Method == http.MethodGet && resp.StatusCode/100 == 2 {
		now := time.Now()
		sess = &session{id: sid, upstreamID: sid, started: now, lastSeen: now}
		p.addSession(sess, now)
		rc.sess = sess
	}
	if sess != nil && r.Method == http.MethodGet {
		sess.streams.Add(1)
		defer func() {
			sess.streams.Add(-1)
			sess.touch(time.Now())
		}()
	}
	p.respond(w, r, resp, rc)
}

// checkBodiless admits the methods of the streamable HTTP transport besides
// POST (GET opens a stream, DELETE ends a session; HEAD and OPTIONS are
// harmless) and only without a body: a body on any of them is never
// inspected, so it must not reach a server that might read it as a message.
func (p *Proxy) checkBodiless(w http.ResponseWriter, r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodDelete, http.MethodHead, http.MethodOptions:
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		p.reject(w, http.StatusMethodNotAllowed, nil, codeInvalidRequest, fmt.Sprintf(
			"method %s is not part of MCP's streamable HTTP transport; use POST, GET or DELETE", r.Method))
		return false
	}
	if r.ContentLength > 0 || (r.ContentLength < 0 && bodyNotEmpty(r.Body)) {
		p.reject(w, http.StatusBadRequest, nil, codeInvalidRequest, fmt.Sprintf(
			"a %s request must not have a body; MCP messages are POSTed", r.Method))
		return false
	}
	return true
}

// bodyNotEmpty reports whether a body of unknown length has a byte.
func bodyNotEmpty(b io.Reader) bool {
	var one [1]byte
	n, _ := io.ReadFull(b, one[:])
	return n > 0
}

func (p *Proxy) addStream(c *context.CancelFunc) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return false
	}
	p.streams[c] = struct{}{}
	return true
}

func (p *Proxy) removeStream(c *context.CancelFunc) {
	p.mu.Lock()
	delete(p.streams, c)
	p.mu.Unlock()
}
