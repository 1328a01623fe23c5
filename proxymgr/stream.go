package proxymgr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"keyport/proxymgr/audit"
)

// ownReq is a request of the current POST that the proxy forwarded.
type ownReq struct {
	key string
	id  []byte
	tr  *tracker
}

// respCtx carries what inspecting one upstream response needs.
type respCtx struct {
	p         *Proxy
	sess      *session // the client's session (nil: none, or stateless)
	sid       string   // the session id the client sent, known or not
	local     *tracker // requests of this POST when there is no session
	own       []ownReq // the requests this POST forwarded
	localResp [][]byte // answers the proxy gave itself (denials, bad elements)
	batch     bool     // the POST was a batch
	init      *message // the client's initialize, when this POST is one
	newSess   *session // the session this initialize created
	answered  int      // responses matched to requests so far

	// gate lets tool pinning add list_changed to this stream (inject.go).
	gate *streamGate
}

func (rc *respCtx) sessID() string {
	if rc.sess != nil {
		return rc.sess.id
	}
	return ""
}

// holdNeeded reports whether a tools/list answer the policy must filter may
// be in the next event: then the event is held until complete.
func (rc *respCtx) holdNeeded() bool {
	if rc.local.filters.Load() > 0 {
		return true
	}
	if rc.sess == nil {
		return rc.p.sessions.looseN.Load() > 0 // lostListAnswer
	}
	return rc.sess.tr.filters.Load() > 0
}

// ownFilter reports whether this POST forwarded a tools/list to filter.
func (rc *respCtx) ownFilter() bool {
	for _, o := range rc.own {
		if o.tr.peekFilter(o.key) {
			return true
		}
	}
	return false
}

// take finds and removes the request a response answers.
func (rc *respCtx) take(key string) *pendingReq {
	if pr := rc.local.take(key); pr != nil {
		return pr
	}
	if rc.sess != nil {
		return rc.sess.tr.take(key)
	}
	return nil
}

// inspect looks at one server-to-client payload (an SSE event's data or a
// JSON body): it completes the requests it answers and filters tools/list
// results. It returns the replacement payload, or nil to keep it.
func (rc *respCtx) inspect(data []byte, canRewrite bool) []byte {
	p := rc.p
	if !json.Valid(data) {
		return nil
	}
	one := func(raw []byte) []byte {
		m, err := parseMessage(raw)
		if err != nil {
			return rc.refuseAmbiguousAnswer(raw, err)
		}
		if !m.isResponse() {
			return nil
		}
		key, ok := idKey(m.id)
		if !ok {
			return nil
		}
		pr := rc.take(key)
		detached := false
		if pr == nil {
			if pr = rc.lostListAnswer(key); pr == nil {
				return nil
			}
			detached = true
		}
		var repl []byte
		if pr.filter {
			if !canRewrite {
				p.log.Error("a tools/list answer could not be filtered (too large); it passed unfiltered", "limit", p.cfg.MaxInspectBytes)
			} else if out, removed, err := p.filterTools(raw, pr); err != nil {
				p.log.Warn("could not filter a tools/list answer", "err", err)
				repl = rpcError(m.id, codeInternalError, fmt.Sprintf("%s: Keyport could not apply %s to the tools/list answer: %v", p.name, p.checksText(), err))
			} else if removed > 0 {
				repl = out
			}
		}
		if !detached {
			rc.complete(pr, &m)
		}
		return repl
	}
	if !isBatch(data) {
		return one(data)
	}
	elems, err := scanArray(data)
	if err != nil {
		return nil
	}
	changed := false
	for i, e := range elems {
		if r := one(e); r != nil {
			elems[i] = r
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return joinResponses(elems, true)
}

// lostListAnswer is for a response that answers no request of this stream
// or session: when no session ties the requests together and the response
// has the id of a tools/list still in flight on another request's stream,
// every MCP client takes it as that list's answer (a client reads all its
// streams into one queue and matches by id), so it is filtered like one. It
// returns a pending request to filter it with, detached from the real one,
// which is still answered, and filtered, on its own stream; else nil.
func (rc *respCtx) lostListAnswer(key string) *pendingReq {
	if rc.sess != nil || !rc.p.sessions.looseFilter(key, rc.local) {
		return nil
	}
	rc.p.log.Warn("the server answered a tools/list on the stream of another request; it is filtered as that answer")
	return &pendingReq{method: "tools/list", filter: true, start: time.Now()}
}

// lostOversized reports whether an answer too large to inspect starts
// with the id of a tools/list in flight on another request's stream.
func (rc *respCtx) lostOversized(buf []byte) bool {
	key, ok := idKey(leadingID(buf))
	return ok && rc.lostListAnswer(key) != nil
}

// takeFilter finds the filtered tools/list key answers: one of this stream
// or session (taken: the answer completes it), or one in flight on
// another request's stream (detached: see lostListAnswer). nil when key
// answers no filtered tools/list.
func (rc *respCtx) takeFilter(key string) (pr *pendingReq, detached bool) {
	if rc.local.peekFilter(key) || rc.sess != nil && rc.sess.tr.peekFilter(key) {
		if pr = rc.take(key); pr != nil {
			return pr, false
		}
	}
	if pr = rc.lostListAnswer(key); pr != nil {
		return pr, true
	}
	return nil, false
}

// refuseAmbiguousAnswer handles a server message the proxy cannot read
// unambiguously (keys equal up to case). When it may answer a tools/list
// the proxy must filter, under any reading of its id, that request is
// answered with an error instead: the client must not read tools the proxy
// could not check. Anything else passes as it came.
func (rc *respCtx) refuseAmbiguousAnswer(raw []byte, why error) []byte {
	rs := readAmbiguous(raw)
	for _, id := range append(rs.exact.ids, rs.folded.ids...) {
		key, ok := idKey(id)
		if !ok {
			continue
		}
		pr, detached := rc.takeFilter(key)
		if pr == nil {
			continue
		}
		p := rc.p
		p.log.Warn("refused an ambiguous tools/list answer", "err", why)
		answer := rpcError(id, codeInternalError, fmt.Sprintf(
			"%s: Keyport refused the server's tools/list answer: it can be read two ways (%v)", p.name, why))
		if !detached {
			m, _ := parseMessage(answer)
			rc.complete(pr, &m)
		}
		return answer
	}
	return nil
}

// complete records the answer to a request: latency, counters, audit.
func (rc *respCtx) complete(pr *pendingReq, m *message) {
	p := rc.p
	rc.answered++
	d := time.Since(pr.start)
	p.lat.add(d)
	outcome, errText := audit.OutcomeOK, ""
	if m.errVal != nil {
		outcome = audit.OutcomeError
		p.errs.Add(1)
		if msg, ok := paramString(m.errVal, "message"); ok {
			errText = msg
		} else {
			errText = "error"
		}
	} else if pr.method == "tools/call" && p.audit != nil {
		if ms, err := scanObject(m.result); err == nil {
			if v, ok := lookup(ms, "isError"); ok && string(v) == "true" {
				outcome, errText = audit.OutcomeError, "the tool reported an error"
			}
		}
	}
	if pr.method == "initialize" && rc.newSess != nil {
		s := rc.newSess
		if v, ok := paramString(m.result, "protocolVersion"); ok && m.result != nil {
			s.mu.Lock()
			s.protocol = v
			s.mu.Unlock()
		}
		if p.audit != nil && outcome == audit.OutcomeOK {
			s.mu.Lock()
			p.audit.Log(audit.Event{Time: s.started, Type: audit.TypeSessionStart, Server: p.name, Session: s.id,
				ClientName: s.client.name, ClientVersion: s.client.version, ProtocolVersion: s.protocol, DurationMS: ms(d), Outcome: outcome})
			s.mu.Unlock()
		}
	}
	p.auditRequest(pr, outcome, errText, d)
	p.changed(false)
}

// abandon removes this POST's unanswered requests and logs them.
func (rc *respCtx) abandon(outcome, why string) {
	for _, o := range rc.own {
		if pr := o.tr.take(o.key); pr != nil {
			rc.p.auditRequest(pr, outcome, why, time.Since(pr.start))
		}
	}
}

// finishLocal logs this POST's requests that got no answer, when nothing
// else can answer them (no session: no other stream).
func (rc *respCtx) finishLocal(outcome, why string) {
	for _, o := range rc.own {
		if o.tr != rc.local {
			continue
		}
		if pr := o.tr.take(o.key); pr != nil {
			rc.p.auditRequest(pr, outcome, why, time.Since(pr.start))
		}
	}
}

// answerAll answers every forwarded request of this POST with the same
// JSON-RPC error (plus the proxy's own answers), or with one null-id error
// when there was no request.
func (rc *respCtx) answerAll(w http.ResponseWriter, status, code int, msg, outcome string) {
	p := rc.p
	var rs [][]byte
	for _, o := range rc.own {
		if pr := o.tr.take(o.key); pr != nil {
			p.auditRequest(pr, outcome, msg, time.Since(pr.start))
		}
		rs = append(rs, rpcError(o.id, code, msg))
	}
	rs = append(rs, rc.localResp...)
	if len(rs) == 0 {
		rs = append(rs, rpcError(nil, code, msg))
	}
	p.errs.Add(1)
	p.changed(false)
	body := joinResponses(rs, rc.batch)
	p.bytesOut.Add(int64(len(body)))
	writeJSON(w, status, body)
}

// copyResponseHeaders copies the upstream's response headers, minus
// connection headers and those that must not reach local clients
// (WWW-Authenticate would start the client's own OAuth flow against
// 127.0.0.1; cookies, HSTS and Alt-Svc describe the remote host), with the
// session id the client knows.
func copyResponseHeaders(dst, src http.Header, sess *session) {
	for k, vs := range src {
		switch k {
		case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
			"Te", "Trailer", "Transfer-Encoding", "Upgrade",
			"Www-Authenticate", "Set-Cookie", "Strict-Transport-Security", "Alt-Svc", "Content-Length":
			continue
		case "Vary":
			if _, ok := dst[k]; ok {
				continue // the proxy's own CORS answer wins
			}
		}
		if _, ok := dst[k]; ok && strings.HasPrefix(k, "Access-Control-") {
			continue
		}
		dst[k] = vs
	}
	if c := src.Get("Connection"); c != "" {
		for _, f := range strings.Split(c, ",") {
			dst.Del(strings.TrimSpace(f))
		}
	}
	if sess != nil {
		if v := dst[headerSessionID]; len(v) > 0 && v[0] != sess.id {
			dst[headerSessionID] = []string{sess.id}
		}
	}
}

// sentHeader is the header of the upstream request resp answers.
func sentHeader(resp *http.Response) http.Header {
	if resp.Request == nil {
		return http.Header{}
	}
	return resp.Request.Header
}

// respond relays the upstream's response to the client. The credential
// hooks already had their say (renew).
func (p *Proxy) respond(w http.ResponseWriter, r *http.Request, resp *http.Response, rc *respCtx) {
	if resp.StatusCode == http.StatusUnauthorized {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		msg := fmt.Sprintf("%s refused the credentials Keyport sent (HTTP 401); update or renew them in Keyport", p.name)
		if p.cfg.Credentials == nil {
			msg = fmt.Sprintf("%s requires credentials (HTTP 401); add them to this server in Keyport", p.name)
		}
		p.log.Warn("the server refused the credentials; answered 503", "status", resp.StatusCode)
		rc.answerAll(w, http.StatusServiceUnavailable, codeInternalError, msg, audit.OutcomeRejected)
		return
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode/100 == 2 && ct == "text/event-stream" {
		copyResponseHeaders(w.Header(), resp.Header, rc.sess)
		p.streamSSE(w, r, resp, rc)
		return
	}
	noBody := resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || r.Method == http.MethodHead || resp.ContentLength == 0
	switch {
	case noBody:
		if len(rc.localResp) > 0 {
			rc.finishLocal(audit.OutcomeNoResponse, "")
			body := joinResponses(rc.localResp, rc.batch)
			copyResponseHeaders(w.Header(), resp.Header, rc.sess)
			p.bytesOut.Add(int64(len(body)))
			writeJSON(w, http.StatusOK, body)
			return
		}
		if resp.StatusCode >= 400 && r.Method != http.MethodHead {
			p.relayError(w, resp, rc, nil)
			return
		}
		rc.finishLocal(audit.OutcomeNoResponse, "")
		copyResponseHeaders(w.Header(), resp.Header, rc.sess)
		w.WriteHeader(resp.StatusCode)
		n, _ := io.Copy(w, resp.Body)
		p.bytesOut.Add(int64(n))
	case ct == "application/json":
		p.relayJSON(w, resp, rc)
	case resp.StatusCode >= 400:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		p.relayError(w, resp, rc, summarizeBody(b, ct))
	case resp.StatusCode/100 == 2 && (r.Method == http.MethodPost || r.Method == http.MethodGet):
		what := ct
		if what == "" {
			what = "no Content-Type"
		}
		rc.answerAll(w, http.StatusBadGateway, codeInternalError, fmt.Sprintf(
			"%s answered %s instead of JSON or an event stream; check that the server URL is its MCP endpoint", p.name, what), audit.OutcomeError)
	default:
		copyResponseHeaders(w.Header(), resp.Header, rc.sess)
		w.WriteHeader(resp.StatusCode)
		n, _ := io.Copy(w, resp.Body)
		p.bytesOut.Add(int64(n))
	}
}

// relayError turns an upstream error that is not JSON into a JSON-RPC error
// with the same status.
func (p *Proxy) relayError(w http.ResponseWriter, resp *http.Response, rc *respCtx, detail []byte) {
	code := codeInvalidRequest
	switch {
	case resp.StatusCode == http.StatusNotFound && (rc.sess != nil || rc.sid != ""):
		code = codeSessionMissing
	case resp.StatusCode >= 500:
		code = codeInternalError
	}
	msg := fmt.Sprintf("%s answered %d %s", p.name, resp.StatusCode, http.StatusText(resp.StatusCode))
	if len(detail) > 0 {
		msg += ": " + string(detail)
	}
	for _, k := range []string{"Allow", "Retry-After"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	if rc.sess != nil && resp.Header.Get(headerSessionID) != "" {
		w.Header().Set(headerSessionID, rc.sess.id)
	}
	rc.answerAll(w, resp.StatusCode, code, msg, audit.OutcomeError)
}

// summarizeBody returns a short, printable account of an error body.
func summarizeBody(b []byte, ct string) []byte {
	if ct == "text/html" || bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")) {
		return []byte("(an HTML page)")
	}
	b = bytes.TrimSpace(b)
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	if len(b) > 200 {
		b = append(b[:200:200], "..."...)
	}
	if !utf8.Valid(b) {
		return []byte("(unreadable body)")
	}
	return bytes.Map(func(r rune) rune {
		if r < ' ' {
			return ' '
		}
		return r
	}, b)
}

// relayJSON buffers a JSON response (up to MaxInspectBytes), inspects it and
// relays it. Larger responses are streamed through uninspected.
func (p *Proxy) relayJSON(w http.ResponseWriter, resp *http.Response, rc *respCtx) {
	lim := p.cfg.MaxInspectBytes
	buf, err := io.ReadAll(io.LimitReader(resp.Body, lim+1))
	if err != nil {
		rc.answerAll(w, http.StatusBadGateway, codeInternalError, fmt.Sprintf("%s unreachable: the answer broke off: %s", p.name, reason(err)), audit.OutcomeUnreachable)
		return
	}
	if int64(len(buf)) > lim {
		if rc.ownFilter() || rc.lostOversized(buf) {
			rc.answerAll(w, http.StatusOK, codeInternalError, p.tooLargeToFilter(), audit.OutcomeError)
			return
		}
		rc.finishLocal(audit.OutcomeOK, "")
		copyResponseHeaders(w.Header(), resp.Header, rc.sess)
		w.WriteHeader(resp.StatusCode)
		n1, _ := w.Write(buf)
		n2, _ := io.Copy(w, resp.Body)
		p.bytesOut.Add(int64(n1) + n2)
		return
	}
	if !json.Valid(buf) {
		if resp.StatusCode >= 400 {
			p.relayError(w, resp, rc, summarizeBody(buf, "application/json"))
			return
		}
		rc.answerAll(w, http.StatusBadGateway, codeInternalError, fmt.Sprintf("%s answered invalid JSON; it may not be an MCP server", p.name), audit.OutcomeError)
		return
	}
	out := buf
	if repl := rc.inspect(buf, true); repl != nil {
		out = repl
	}
	if len(rc.localResp) > 0 {
		var all [][]byte
		if isBatch(out) {
			if elems, err := scanArray(out); err == nil {
				all = elems
			}
		} else {
			all = [][]byte{out}
		}
		out = joinResponses(append(all, rc.localResp...), true)
	}
	outcome := audit.OutcomeNoResponse
	if resp.StatusCode >= 400 {
		outcome = audit.OutcomeError
		if rc.answered == 0 { // JSON-RPC error answers were counted already
			p.errs.Add(1)
		}
	}
	rc.finishLocal(outcome, fmt.Sprintf("HTTP %d", resp.StatusCode))
	copyResponseHeaders(w.Header(), resp.Header, rc.sess)
	w.Header().Set("Content-Length", fmt.Sprint(len(out)))
	w.WriteHeader(resp.StatusCode)
	n, _ := w.Write(out)
	p.bytesOut.Add(int64(n))
}

// errClientGone means writing to the client failed.
var errClientGone = errors.New("client went away")

// streamSSE relays an event stream: every byte as received, flushed at
// once, except events that may carry a tools/list answer to filter, which
// are held until complete.
func (p *Proxy) streamSSE(w http.ResponseWriter, r *http.Request, resp *http.Response, rc *respCtx) {
	p.streamsOpen.Add(1)
	p.changed(false)
	defer func() {
		p.streamsOpen.Add(-1)
		p.changed(false)
	}()
	w = rc.gate.wrap(w)
	defer rc.gate.close()
	w.WriteHeader(resp.StatusCode)
	ctl := http.NewResponseController(w)
	for _, lr := range rc.localResp { // the proxy's own answers to a batch come first
		ev := append(append([]byte("event: message\ndata: "), lr...), "\n\n"...)
		n, _ := w.Write(ev)
		p.bytesOut.Add(int64(n))
	}
	if r.Method != http.MethodPost || len(rc.localResp) > 0 {
		// A GET stream may stay silent for long: the client must see it open.
		// A POST answer's headers go with its first event, as a bare
		// reverse proxy sends them (one write fewer per call).
		_ = ctl.Flush()
	}
	err := p.pumpSSE(w, ctl, resp.Body, rc)
	if err != nil && !errors.Is(err, errClientGone) && !errors.Is(err, context.Canceled) && r.Context().Err() == nil {
		// The upstream broke off mid-stream (it crashed or restarted): answer
		// what it will never answer rather than leave the client waiting.
		why := fmt.Sprintf("%s unreachable: the stream broke off (%s)", p.name, reason(err))
		p.log.Warn("upstream stream broke off", "err", reason(err))
		for _, o := range rc.own {
			pr := o.tr.take(o.key)
			if pr == nil {
				continue
			}
			p.auditRequest(pr, audit.OutcomeUnreachable, why, time.Since(pr.start))
			p.errs.Add(1)
			ev := append(append([]byte("event: message\ndata: "), rpcError(o.id, codeInternalError, why)...), "\n\n"...)
			n, _ := w.Write(ev)
			p.bytesOut.Add(int64(n))
		}
		_ = ctl.Flush()
	}
	rc.finishLocal(audit.OutcomeNoResponse, "the stream ended before the answer")
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// tooLargeToFilter is what a client reads when a tools/list answer is too
// large for the proxy to apply the tool policy (it fails closed).
func (p *Proxy) tooLargeToFilter() string {
	return fmt.Sprintf("%s: the tools/list answer is larger than %d bytes, too large for Keyport to apply %s", p.name, p.cfg.MaxInspectBytes, p.checksText())
}

// failOversized handles a held SSE event grown past what the proxy can
// inspect. When its beginning shows it answers a tools/list the policy
// filters, the request is completed as failed and failOversized returns the
// event to send instead (the same event id, a JSON-RPC error); otherwise
// nil, and the event passes through.
func (rc *respCtx) failOversized(held []byte) []byte {
	head, data := splitEventHead(held)
	id := leadingID(data)
	key, ok := idKey(id)
	if !ok {
		return nil
	}
	pr, detached := rc.takeFilter(key)
	if pr == nil {
		return nil
	}
	p := rc.p
	p.log.Error("a tools/list answer was too large to filter; the client got an error instead", "limit", p.cfg.MaxInspectBytes)
	answer := rpcError(id, codeInternalError, p.tooLargeToFilter())
	if !detached {
		m, _ := parseMessage(answer)
		rc.complete(pr, &m)
	}
	out := append([]byte(nil), head...)
	out = append(out, "data: "...)
	out = append(out, answer...)
	return append(out, "\n\n"...)
}

// splitEventHead splits the start of a raw SSE event into its lines before
// the first data line (id, event: kept for the replacement) and the first
// data line's value (as much of it as is there).
func splitEventHead(raw []byte) (head, data []byte) {
	for len(raw) > 0 {
		line, rest, _ := bytes.Cut(raw, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			return head, bytes.TrimPrefix(v, []byte(" "))
		}
		if len(line) > 0 && line[0] != ':' {
			head = append(append(head, line...), '\n')
		}
		raw = rest
	}
	return head, nil
}

// leadingID finds the "id" of a JSON-RPC object from the beginning of its
// text, walking the top-level members that come before it (a server that
// writes the result first hides it: nil).
func leadingID(prefix []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(prefix))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
		if k == "id" {
			return v
		}
	}
	return nil
}

// pumpSSE copies the stream. It returns nil at the upstream's EOF,
// errClientGone when the client cannot be written to, or the read error.
func (p *Proxy) pumpSSE(w io.Writer, ctl *http.ResponseController, body io.Reader, rc *respCtx) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	sc := getSSEScanner(int(p.cfg.MaxInspectBytes))
	defer putSSEScanner(sc)
	holdLimit := int(p.cfg.MaxInspectBytes) + 64<<10
	var (
		held    []byte
		holding bool
		dirty   bool // written since the last flush
		werr    error
		// dropped is set while the rest of an oversized event that answers
		// a filtered tools/list is discarded; what replaces it is sent when
		// the event ends.
		dropped []byte
	)
	write := func(b []byte) {
		if werr != nil || len(b) == 0 {
			return
		}
		n, err := w.Write(b)
		p.bytesOut.Add(int64(n))
		dirty = true
		if err != nil {
			werr = errClientGone
		}
	}
	flush := func() {
		if dirty && werr == nil {
			dirty = false
			if err := ctl.Flush(); err != nil {
				werr = errClientGone
			}
		}
	}
	emit := func(b []byte) {
		if dropped != nil {
			return
		}
		if !holding {
			write(b)
			return
		}
		held = append(held, b...)
		if len(held) > holdLimit {
			if repl := rc.failOversized(held); repl != nil {
				// It answers a tools/list the policy must filter: fail
				// closed rather than show the client denied tools.
				dropped = repl
			} else {
				p.log.Error("an SSE event is too large to hold for the tool policy; passing it through", "limit", holdLimit)
				write(held)
			}
			held, holding = held[:0], false
		}
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			chunk, seg := buf[:n], 0
			sc.feed(chunk, func(i int) {
				emit(chunk[seg:i])
				seg = i
				holding = rc.holdNeeded()
			}, func(i int, ev *sseEvent) {
				emit(chunk[seg:i])
				seg = i
				if dropped != nil {
					write(dropped)
					dropped = nil
					flush()
					return
				}
				if holding {
					out := held
					if ev.hasData && !ev.overflow {
						if repl := rc.inspect(ev.data, true); repl != nil {
							out = rewriteEvent(held, repl)
						}
					}
					write(out)
					held, holding = held[:0], false
					flush()
				} else {
					// Inspect before the event leaves: once the client has
					// its answer it may end the session at once, and the
					// request must be recorded as answered by then. The
					// scan of one event costs microseconds.
					if ev.hasData && !ev.overflow {
						rc.inspect(ev.data, false)
					}
					flush()
				}
			})
			emit(chunk[seg:])
			flush()
			if werr != nil {
				return werr
			}
		}
		if rerr != nil {
			if holding && len(held) > 0 {
				write(held) // an unfinished event: clients discard it, but relay it as it was
				flush()
			}
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return rerr
		}
	}
}
