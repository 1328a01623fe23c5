package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The tools/call pass-through. A tool call is what a profile serves most,
// and the go-sdk path costs it a go-sdk server and a go-sdk client in the
// gateway, which decode every message several times (each decode of
// go-sdk v1.8.0 allocates a 32 KiB buffer). So a 2025-era client's
// tools/call is passed to its member as bytes: the gateway reads the
// request, rewrites only what the profile changes (the tool's name, the
// request id, the progress token) and relays the member's answer stream
// to the client, rewriting the same fields back. Everything else a call's
// stream may carry is kept:
//
//   - progress (under the gateway's own token, as on the go-sdk path) and
//     log messages are relayed in order, before the result;
//   - a server-to-client request on the stream (sampling, elicitation,
//     roots) goes to the client under an id of the gateway's
//     ("keyport-ask-N"); the client's answer, POSTed to the profile
//     endpoint, goes back to the member under the member's id; a ping is
//     answered by the gateway, as the go-sdk client does;
//   - list_changed and resources/updated reach the gateway's bookkeeping,
//     as the go-sdk client's handlers would;
//   - a stream the member closes before its answer (SEP-1699 polling) is
//     closed for the client too, with the member's retry field; the event
//     ids the client sees are the member's under a prefix of the gateway,
//     and the client's GET with Last-Event-ID resumes the member's stream;
//   - the client's notifications/cancelled reaches the member under the
//     member's id.
//
// The request still goes through the member's Keyport proxy (in process
// when it runs in this process, proxymgr.LocalTransport), which applies
// every check to it. Anything the pass-through does not handle takes the
// go-sdk path: other methods, batches, a 2026-era client or member, a
// tool the gateway has not listed yet, a member that is down, a body of
// unusual shape.

// Prefixes of the ids and event ids the pass-through makes up.
const (
	askPrefix   = "keyport-ask-"
	eventPrefix = "keyport-call-"
)

// maxPassBody bounds a request body the pass-through reads (go-sdk's own
// limit, mcp.DefaultMaxRequestBodyBytes); a larger one takes the go-sdk
// path, which refuses it.
const maxPassBody = mcp.DefaultMaxRequestBodyBytes

// maxPassEvent bounds one event of a member's answer stream
// (mcp.DefaultMaxEventSize, as the go-sdk client).
const maxPassEvent = mcp.DefaultMaxEventSize

// resumeWait is how long a call whose stream the member closed waits for
// its client to resume it.
const resumeWait = 5 * time.Minute

// passCall is one tools/call passed through to a member.
type passCall struct {
	g        *Gateway
	c        *clientSession
	mc       *memberConn
	cs       *mcp.ClientSession // the member session it was sent on
	url      string             // the member's proxy endpoint
	protocol string             // the member session's protocol version
	key      string             // unique in the gateway: ids and event ids
	clientID json.RawMessage    // the client's request id, as sent
	idKey    string             // canonicalID(clientID)
	memberID []byte             // the id the member got: "keyport-KEY"
	progress string             // the progress token the member got ("": none)
	token    json.RawMessage    // the client's progress token
	call     *call
	ctx      context.Context // lives until the call ends: call.ctx
	end      context.CancelFunc
	untrack  func()

	mu        sync.Mutex
	abort     context.CancelFunc // of the member request in flight
	cancelled bool               // the client cancelled the call
	lastEvent string             // the member's last event id
	expire    *time.Timer        // while waiting for the client to resume
	finished  bool
}

// wireMessage is a JSON-RPC message split into the fields the
// pass-through acts on.
type wireMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

// passPOST handles a POST of a 2025-era client session when it is a
// tools/call the pass-through takes or the client's answer to a request
// the pass-through relayed, and reports whether it did. Otherwise r is
// left for the go-sdk handler (its body restored).
func (g *Gateway) passPOST(w http.ResponseWriter, r *http.Request, c *clientSession) bool {
	if g.passOff.Load() || !passHeaders(r, c) || !c.ready() {
		return false
	}
	body, ok := readPassBody(r)
	if !ok {
		return false
	}
	if !bytes.Contains(body, []byte(`"tools/call"`)) && !bytes.Contains(body, []byte(`"`+askPrefix)) {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || string(top["jsonrpc"]) != `"2.0"` {
		return false
	}
	if _, isRequest := top["method"]; !isRequest {
		return g.passAnswer(w, r, c, top)
	}
	for k := range top {
		if k != "jsonrpc" && k != "id" && k != "method" && k != "params" {
			return false
		}
	}
	var method string
	if json.Unmarshal(top["method"], &method) != nil || method != "tools/call" || !validID(top["id"]) {
		return false
	}
	var params map[string]json.RawMessage
	if json.Unmarshal(top["params"], &params) != nil || params == nil {
		return false
	}
	for k := range params {
		// Only the fields a 2025-era call has, spelled exactly: a key the
		// go-sdk would read case-insensitively ("Name", "nam\u017f"), or a
		// 2026 field, takes the go-sdk path, which drops or decides it.
		if k != "name" && k != "arguments" && k != "_meta" {
			return false
		}
	}
	var name string
	if json.Unmarshal(params["name"], &name) != nil || name == "" {
		return false
	}
	var meta map[string]json.RawMessage
	if raw, ok := params["_meta"]; ok {
		if json.Unmarshal(raw, &meta) != nil || meta == nil {
			return false
		}
		for k := range meta {
			if strings.HasPrefix(k, "io.modelcontextprotocol/") {
				return false // per-request 2026 keys: the go-sdk path decides
			}
		}
	}
	rt, ok := c.set.tool(name)
	if !ok {
		return false // the go-sdk path lists first, or says it is unknown
	}
	cs := rt.mc.current()
	if cs == nil || cs.ID() == "" || cs.InitializeResult() == nil || cs.InitializeResult().ProtocolVersion >= "2026-07-28" {
		return false // the go-sdk path says why it is unavailable, or speaks 2026
	}
	p := g.newPassCall(c, rt, cs, name, top["id"])
	if !c.addPass(p) {
		p.finish()
		writeJSONRPC(w, http.StatusBadRequest, rpcErrorAnswer(top["id"], &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest,
			Message: fmt.Sprintf("duplicate in-flight request ID %s", top["id"])}))
		return true
	}
	nameRaw, _ := json.Marshal(rt.name)
	params["name"] = nameRaw
	if tok, ok := meta["progressToken"]; ok && string(tok) != "null" {
		p.token = tok
		p.progress = "keyport-" + p.key
		meta["progressToken"], _ = json.Marshal(p.progress)
		var t any
		_ = json.Unmarshal(tok, &t)
		p.call.token = t
		g.mu.Lock()
		g.progress[p.progress] = p.call
		g.mu.Unlock()
		params["_meta"], _ = marshalRaw(meta)
	}
	pb, err := marshalRaw(params)
	if err != nil {
		p.finish()
		return false
	}
	out := make([]byte, 0, len(pb)+64)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, p.memberID...)
	out = append(out, `,"method":"tools/call","params":`...)
	out = append(out, pb...)
	out = append(out, '}')
	g.passed.Add(1)
	p.send(w, r, http.MethodPost, out, "")
	return true
}

// passHeaders reports whether r is a POST the pass-through may take: the
// headers the go-sdk handler requires are there, and the session speaks
// the 2025 era.
func passHeaders(r *http.Request, c *clientSession) bool {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		return false
	}
	if jsonOK, streamOK := accepts(r.Header.Values("Accept")); !jsonOK || !streamOK {
		return false
	}
	if len(r.Header.Values("Last-Event-Id")) > 0 {
		return false
	}
	ip := c.ss.InitializeParams()
	if ip == nil || ip.ProtocolVersion >= "2026-07-28" {
		return false
	}
	if v := r.Header.Get("Mcp-Protocol-Version"); v != "" && v != ip.ProtocolVersion {
		return false
	}
	return true
}

// accepts is how the go-sdk handler reads Accept: whether JSON and event
// streams are acceptable.
func accepts(values []string) (jsonOK, streamOK bool) {
	for _, v := range values {
		for _, raw := range strings.Split(v, ",") {
			base, _, _ := strings.Cut(strings.TrimSpace(raw), ";")
			switch strings.ToLower(strings.TrimSpace(base)) {
			case "application/json", "application/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				streamOK = true
			case "*/*":
				jsonOK, streamOK = true, true
			}
		}
	}
	return jsonOK, streamOK
}

// readPassBody reads r's body when it is small enough for the
// pass-through, and leaves r able to give the go-sdk handler the whole
// body either way.
func readPassBody(r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.ContentLength > maxPassBody {
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPassBody+1))
	if err != nil || len(body) > maxPassBody {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), errReader{err}, r.Body), r.Body}
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, true
}

// errReader fails with err (nil: nothing more).
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return 0, io.EOF
}

// validID reports whether raw is a request id the go-sdk accepts: a
// string or an integer.
func validID(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	if raw[0] == '"' {
		var s string
		return json.Unmarshal(raw, &s) == nil
	}
	_, err := strconv.ParseInt(string(raw), 10, 64)
	return err == nil
}

// canonicalID is the form two spellings of one id share (1 and 1.0).
func canonicalID(raw []byte) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (g *Gateway) newPassCall(c *clientSession, rt route, cs *mcp.ClientSession, exposed string, id json.RawMessage) *passCall {
	key := strconv.FormatInt(g.tokens.Add(1), 36)
	ctx, end := context.WithCancel(context.Background())
	p := &passCall{
		g: g, c: c, mc: rt.mc, cs: cs, url: rt.mc.member().URL, protocol: cs.InitializeResult().ProtocolVersion,
		key: key, clientID: slices.Clone(id), idKey: canonicalID(id), memberID: []byte(`"keyport-` + key + `"`),
		ctx: ctx, end: end,
		abort: func() {}, // in flight from the start (addPass)
	}
	p.call = &call{ctx: ctx, ss: c.ss, exposed: exposed, overrides: rt.overrides, passed: true}
	p.untrack = rt.mc.track(p.call)
	return p
}

// finish forgets the call: it was answered, cancelled, or abandoned.
func (p *passCall) finish() {
	p.mu.Lock()
	if p.finished {
		p.mu.Unlock()
		return
	}
	p.finished = true
	if p.expire != nil {
		p.expire.Stop()
	}
	abort := p.abort
	p.mu.Unlock()
	if abort != nil {
		abort()
	}
	p.c.removePass(p)
	if p.progress != "" {
		p.g.mu.Lock()
		delete(p.g.progress, p.progress)
		p.g.mu.Unlock()
	}
	p.untrack()
	p.end()
}

// send sends the call's request to the member (a POST of body, or the GET
// that resumes its stream after lastEvent) and relays the answer to w.
func (p *passCall) send(w http.ResponseWriter, r *http.Request, method string, body []byte, lastEvent string) {
	ctx, abort := context.WithCancel(r.Context())
	defer abort()
	p.mu.Lock()
	if p.finished || p.cancelled {
		p.mu.Unlock()
		return
	}
	p.abort = abort
	p.mu.Unlock()
	out := &sseOut{w: w}
	if method == http.MethodGet {
		out.start() // a resumed stream answers in events only, failures too
	}
	req, err := p.memberRequest(ctx, method, body, lastEvent)
	if err != nil {
		p.fail(w, out, err)
		return
	}
	resp, err := p.g.httpClient.Do(req)
	if err != nil {
		if p.wasCancelled() {
			p.endCancelled(out)
			return
		}
		if r.Context().Err() != nil {
			p.detach() // the client left
			return
		}
		p.fail(w, out, p.g.memberError(r.Context(), p.mc, p.cs, err))
		return
	}
	defer resp.Body.Close()
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		p.fail(w, out, p.refused(resp))
	case resp.StatusCode == http.StatusOK && ct == "application/json" && method == http.MethodPost:
		p.relayJSON(w, out, resp.Body)
	case resp.StatusCode == http.StatusOK && ct == "text/event-stream":
		p.relayStream(out, r, resp.Body)
	default:
		p.fail(w, out, p.unavailable(fmt.Errorf("it answered a tool call with HTTP %d %q", resp.StatusCode, ct)))
	}
}

// endCancelled ends the client's stream of a call it cancelled (or left)
// without an answer: an empty event stream, which clients read as the end
// of a request they gave up.
func (p *passCall) endCancelled(out *sseOut) {
	out.start()
	p.finish()
}

// memberRequest is the HTTP request to the member's proxy, with the
// headers a go-sdk client sends on the member session.
func (p *passCall) memberRequest(ctx context.Context, method string, body []byte, lastEvent string) (*http.Request, error) {
	ctx = context.WithValue(withProfile(ctx, p.g.config().Name), callKey{}, p.call)
	ctx = context.WithValue(ctx, memberKey{}, p.mc)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	} else {
		req.Header.Set("Accept", "text/event-stream")
	}
	req.Header.Set("Mcp-Protocol-Version", p.protocol)
	req.Header.Set("Mcp-Session-Id", p.cs.ID())
	if lastEvent != "" {
		req.Header.Set("Last-Event-Id", lastEvent)
	}
	return req, nil
}

// refused is the error a client gets for a member's HTTP refusal, as on
// the go-sdk path: the member's own JSON-RPC error passes, unless it says
// the server is unavailable (-32603); then, as for a lost session or any
// other refusal, the member is marked down and reconnects, and the client
// hears it is unavailable.
func (p *passCall) refused(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var m wireMessage
	var e jsonrpc.Error
	if json.Unmarshal(b, &m) == nil && m.Error != nil && json.Unmarshal(m.Error, &e) == nil {
		if e.Code != jsonrpc.CodeInternalError {
			return &e
		}
		return p.unavailable(errors.New(e.Message))
	}
	if resp.StatusCode == http.StatusNotFound {
		return p.unavailable(errors.New("its session ended"))
	}
	return p.unavailable(fmt.Errorf("its Keyport proxy answered HTTP %d", resp.StatusCode))
}

// unavailable marks the member session failed and is the error naming
// the member.
func (p *passCall) unavailable(why error) error {
	p.mc.failed(p.cs, why)
	return p.g.unavailableError(p.mc, why)
}

// relayJSON relays a member's application/json answer.
func (p *passCall) relayJSON(w http.ResponseWriter, out *sseOut, body io.Reader) {
	b, err := io.ReadAll(io.LimitReader(body, maxPassEvent+1))
	if err != nil || len(b) > maxPassEvent {
		if p.wasCancelled() {
			p.endCancelled(out)
			return
		}
		p.fail(w, out, p.unavailable(errors.New("its answer could not be read")))
		return
	}
	var m wireMessage
	if json.Unmarshal(b, &m) != nil || !p.isAnswer(&m) {
		p.fail(w, out, p.unavailable(errors.New("it answered a tool call with something else")))
		return
	}
	writeJSONRPC(w, http.StatusOK, p.answer(&m))
	p.finish()
}

// isAnswer reports whether m answers the call.
func (p *passCall) isAnswer(m *wireMessage) bool {
	if m.Method != "" || (m.Result == nil && m.Error == nil) {
		return false
	}
	if bytes.Equal(m.ID, p.memberID) {
		return true
	}
	var s string
	return json.Unmarshal(m.ID, &s) == nil && `"`+s+`"` == string(p.memberID)
}

// answer is the member's answer m to the client, under the client's id.
func (p *passCall) answer(m *wireMessage) []byte {
	out := make([]byte, 0, len(m.Result)+len(m.Error)+len(p.clientID)+40)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, p.clientID...)
	if m.Error != nil && string(m.Error) != "null" {
		out = append(out, `,"error":`...)
		out = append(out, m.Error...)
	} else {
		out = append(out, `,"result":`...)
		out = append(out, m.Result...)
	}
	return append(out, '}')
}

// relayStream relays a member's event stream of the call to w until its
// answer. When the stream ends before the answer, the client's stream
// ends too: it resumes it with the member's last event id, or, when the
// member gave none, is answered that the member is unavailable.
func (p *passCall) relayStream(out *sseOut, r *http.Request, body io.Reader) {
	in := getSSEReader(body)
	defer putSSEReader(in)
	var ev sseEvent
	for {
		err := in.next(&ev)
		if err != nil {
			if p.wasCancelled() {
				p.endCancelled(out)
				return
			}
			p.mu.Lock()
			last := p.lastEvent
			p.mu.Unlock()
			if r.Context().Err() != nil {
				p.detach() // the client left
				return
			}
			if last != "" && err == io.EOF {
				// The member closed the stream to be polled (SEP-1699): so
				// is the client's, which resumes it with the event id.
				out.start()
				p.detach()
				return
			}
			p.fail(out.w, out, p.g.streamEnded(p.mc, err))
			return
		}
		done, werr := p.relayEvent(out, &ev)
		if werr != nil { // the client went away
			if done {
				p.finish()
			} else {
				p.detach()
			}
			return
		}
		if done {
			p.finish()
			return
		}
	}
}

// relayEvent relays one event of the member's stream and reports whether
// it was the answer.
func (p *passCall) relayEvent(out *sseOut, ev *sseEvent) (done bool, err error) {
	id := ""
	if ev.hasID {
		p.mu.Lock()
		p.lastEvent = ev.id
		p.mu.Unlock()
		if ev.id != "" {
			id = eventPrefix + p.key + "_" + ev.id
		}
	}
	if ev.dataLines == 0 || len(ev.data) == 0 || (ev.name != "" && ev.name != "message") {
		// A priming event, or one clients ignore: its id and retry count.
		return false, out.event(ev.name, id, ev.retry, ev.data, ev.dataLines)
	}
	var m wireMessage
	if json.Unmarshal(ev.data, &m) != nil {
		return false, out.event(ev.name, id, ev.retry, nil, 0)
	}
	data := ev.data
	switch {
	case m.Method == "": // a response
		if !p.isAnswer(&m) {
			return false, out.event(ev.name, id, ev.retry, nil, 0)
		}
		return true, out.last(ev.name, id, ev.retry, p.answer(&m), 1)
	case m.ID == nil || string(m.ID) == "null": // a notification
		data = p.notification(&m, data)
	default: // a request of the member to the client
		data = p.request(&m)
	}
	if data == nil {
		return false, out.event(ev.name, id, ev.retry, nil, 0)
	}
	return false, out.event(ev.name, id, ev.retry, data, 1)
}

// notification is what the client gets of a member's notification on the
// call's stream (nil: nothing).
func (p *passCall) notification(m *wireMessage, data []byte) []byte {
	switch m.Method {
	case "notifications/message", "notifications/elicitation/complete":
		return data
	case "notifications/progress":
		var params map[string]json.RawMessage
		if json.Unmarshal(m.Params, &params) != nil {
			return nil
		}
		var tok string
		if json.Unmarshal(params["progressToken"], &tok) != nil || p.progress == "" || tok != p.progress {
			// Another call's progress: its own path relays it.
			var q mcp.ProgressNotificationParams
			if json.Unmarshal(m.Params, &q) == nil {
				p.g.relayProgress(&q)
			}
			return nil
		}
		params["progressToken"] = p.token
		pb, err := marshalRaw(params)
		if err != nil {
			return nil
		}
		return append(append([]byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":`), pb...), '}')
	default:
		p.mc.notified(m.Method, m.Params)
		return nil
	}
}

// request is what the client gets of a member's request on the call's
// stream (nil: nothing; the gateway answered it).
func (p *passCall) request(m *wireMessage) []byte {
	switch m.Method {
	case "roots/list", "sampling/createMessage", "elicitation/create":
		id := askPrefix + strconv.FormatInt(p.g.tokens.Add(1), 36)
		p.c.addAsk(id, &passAsk{p: p, memberID: slices.Clone(m.ID)})
		out := []byte(`{"jsonrpc":"2.0","id":"` + id + `","method":`)
		method, _ := json.Marshal(m.Method)
		out = append(out, method...)
		if m.Params != nil {
			out = append(out, `,"params":`...)
			out = append(out, m.Params...)
		}
		return append(out, '}')
	case "ping":
		go p.reply(slices.Clone(m.ID), []byte(`"result":{}`))
	default:
		e, _ := json.Marshal(&jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: fmt.Sprintf("method %q not handled", m.Method)})
		go p.reply(slices.Clone(m.ID), append([]byte(`"error":`), e...))
	}
	return nil
}

// reply POSTs the gateway's answer to a request of the member (payload:
// `"result":...` or `"error":...`).
func (p *passCall) reply(id json.RawMessage, payload []byte) {
	body := make([]byte, 0, len(id)+len(payload)+32)
	body = append(body, `{"jsonrpc":"2.0","id":`...)
	body = append(body, id...)
	body = append(body, ',')
	body = append(body, payload...)
	body = append(body, '}')
	p.postToMember(p.ctx, body)
}

// postToMember POSTs a message without an answer (a response or a
// notification) on the member session.
func (p *passCall) postToMember(ctx context.Context, body []byte) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := p.memberRequest(ctx, http.MethodPost, body, "")
	if err != nil {
		return
	}
	resp, err := p.g.httpClient.Do(req)
	if err != nil {
		p.g.log.Debug("could not send a message to a member", "server", p.mc.member().Server, "err", err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// fail answers the call with err (when the client is still there) and
// forgets it.
func (p *passCall) fail(w http.ResponseWriter, out *sseOut, err error) {
	defer p.finish()
	var je *jsonrpc.Error
	if !errors.As(err, &je) {
		if p.ctx.Err() != nil || p.wasCancelled() {
			return
		}
		je = &jsonrpc.Error{Code: codeInternalError, Message: err.Error()}
	}
	answer := rpcErrorAnswer(p.clientID, je)
	if out.started {
		_ = out.last("", "", "", answer, 1)
		return
	}
	writeJSONRPC(w, http.StatusOK, answer)
}

// streamEnded is the error for a call whose stream ended without an
// answer and cannot be resumed (the member gave no event id). The member
// session is not dropped for it: a server may end a stream so.
func (g *Gateway) streamEnded(mc *memberConn, err error) error {
	why := "it ended the call's stream without an answer"
	if err != io.EOF {
		why = fmt.Sprintf("its answer stream broke off (%v)", err)
	}
	return &jsonrpc.Error{Code: codeInternalError, Message: fmt.Sprintf("profile %s: server %s: %s", g.config().Name, mc.member().Server, why)}
}

func (p *passCall) wasCancelled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cancelled
}

// detach keeps a call whose client's stream ended before the answer for
// at most resumeWait: the client may resume the stream (a GET with
// Last-Event-ID, when the member gave event ids) or cancel the call (a
// client leaving a request is not cancelling it, and its cancellation may
// come after it left).
func (p *passCall) detach() {
	p.mu.Lock()
	if p.finished {
		p.mu.Unlock()
		return
	}
	p.abort = nil
	p.expire = time.AfterFunc(resumeWait, p.finish)
	p.mu.Unlock()
}

// cancel is the client's notifications/cancelled for the call: the member
// is told under its id, and the relay stops.
func (p *passCall) cancelByClient(reason string) {
	p.mu.Lock()
	if p.cancelled || p.finished {
		p.mu.Unlock()
		return
	}
	p.cancelled = true
	p.mu.Unlock()
	params, _ := json.Marshal(map[string]any{"requestId": json.RawMessage(p.memberID), "reason": reason})
	p.postToMember(context.WithoutCancel(p.ctx), append(append([]byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":`), params...), '}'))
	p.finish()
}

// passResume handles the client's GET that resumes a passed call's
// stream (its Last-Event-ID is one the pass-through made up), and
// reports whether it did.
func (g *Gateway) passResume(w http.ResponseWriter, r *http.Request, c *clientSession) bool {
	last := r.Header.Get("Last-Event-Id")
	rest, ok := strings.CutPrefix(last, eventPrefix)
	if !ok {
		return false
	}
	key, memberEvent, ok := strings.Cut(rest, "_")
	if !ok || memberEvent == "" {
		return false
	}
	if _, streamOK := accepts(r.Header.Values("Accept")); !streamOK {
		return false
	}
	p := c.pass(key)
	if p == nil {
		return false
	}
	p.mu.Lock()
	if p.finished || p.abort != nil { // ended, or its stream is being relayed
		p.mu.Unlock()
		return false
	}
	p.abort = func() {} // taken: until send sets its own
	if p.expire != nil {
		p.expire.Stop()
		p.expire = nil
	}
	p.mu.Unlock()
	g.resumed.Add(1)
	p.send(w, r, http.MethodGet, nil, memberEvent)
	return true
}

// passAsk is a request of a member relayed to the client by a passed call.
type passAsk struct {
	p        *passCall
	memberID json.RawMessage
}

// passAnswer handles a client's POST of an answer to a request the
// pass-through relayed (top is the message), and reports whether it did.
func (g *Gateway) passAnswer(w http.ResponseWriter, r *http.Request, c *clientSession, top map[string]json.RawMessage) bool {
	var id string
	if json.Unmarshal(top["id"], &id) != nil || !strings.HasPrefix(id, askPrefix) {
		return false
	}
	for k := range top {
		if k != "jsonrpc" && k != "id" && k != "result" && k != "error" {
			return false
		}
	}
	payload := top["result"]
	field := "result"
	if e, ok := top["error"]; ok {
		payload, field = e, "error"
	}
	if payload == nil {
		return false
	}
	a := c.takeAsk(id)
	if a == nil {
		return false
	}
	body := append([]byte(`"`+field+`":`), payload...)
	a.p.reply(a.memberID, body)
	w.WriteHeader(http.StatusAccepted)
	return true
}

// marshalRaw encodes an object of raw members with their bytes as they
// were (json.Marshal would escape <, > and & in their strings).
func marshalRaw(m map[string]json.RawMessage) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// rpcErrorAnswer is a JSON-RPC error response.
func rpcErrorAnswer(id json.RawMessage, e *jsonrpc.Error) []byte {
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *jsonrpc.Error  `json:"error"`
	}{"2.0", id, e})
	return b
}

func writeJSONRPC(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// notified is a member's notification that arrived on a passed call's
// stream, handled as the member session's go-sdk handlers would.
func (mc *memberConn) notified(method string, params json.RawMessage) {
	switch method {
	case "notifications/tools/list_changed":
		mc.forgetTools()
		mc.set.changed(method)
	case "notifications/prompts/list_changed", "notifications/resources/list_changed":
		mc.set.changed(method)
	case "notifications/resources/updated":
		var p mcp.ResourceUpdatedNotificationParams
		if json.Unmarshal(params, &p) == nil {
			mc.resourceUpdated(&p)
		}
	}
}

// Passed calls of a client session.

// ready reports whether the client finished initializing (sent
// notifications/initialized): before, the go-sdk server refuses a call,
// and the pass-through leaves it that answer.
func (c *clientSession) ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.initialized
}

// addPass registers p (false: a call with its id is in flight already).
// A detached call with the id is forgotten: the client reused the id.
func (c *clientSession) addPass(p *passCall) bool {
	for {
		c.mu.Lock()
		if c.passing == nil {
			c.passing = map[string]*passCall{}
			c.passKeys = map[string]*passCall{}
		}
		old := c.passing[p.idKey]
		if old == nil {
			c.passing[p.idKey] = p
			c.passKeys[p.key] = p
			c.mu.Unlock()
			return true
		}
		c.mu.Unlock()
		old.mu.Lock()
		inFlight := old.abort != nil && !old.finished
		old.mu.Unlock()
		if inFlight {
			return false
		}
		old.finish()
	}
}

func (c *clientSession) removePass(p *passCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.passing[p.idKey] == p {
		delete(c.passing, p.idKey)
	}
	delete(c.passKeys, p.key)
	for id, a := range c.asks {
		if a.p == p {
			delete(c.asks, id)
		}
	}
}

// pass is the passed call with key.
func (c *clientSession) pass(key string) *passCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.passKeys[key]
}

// cancelPassed is the client's notifications/cancelled: it reports
// whether the request was a passed call.
func (c *clientSession) cancelPassed(p *mcp.CancelledParams) bool {
	if p == nil || p.RequestID == nil {
		return false
	}
	b, err := json.Marshal(p.RequestID)
	if err != nil {
		return false
	}
	c.mu.Lock()
	pc := c.passing[canonicalID(b)]
	c.mu.Unlock()
	if pc == nil {
		return false
	}
	go pc.cancelByClient(p.Reason)
	return true
}

func (c *clientSession) addAsk(id string, a *passAsk) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.asks == nil {
		c.asks = map[string]*passAsk{}
	}
	c.asks[id] = a
}

func (c *clientSession) takeAsk(id string) *passAsk {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.asks[id]
	delete(c.asks, id)
	return a
}

// endPassed forgets every passed call (the session ends).
func (c *clientSession) endPassed() {
	c.mu.Lock()
	ps := make([]*passCall, 0, len(c.passKeys))
	for _, p := range c.passKeys {
		ps = append(ps, p)
	}
	c.mu.Unlock()
	for _, p := range ps {
		p.finish()
	}
}
