package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Run bridges cfg.In/cfg.Out to the endpoint until the client closes its
// end (In reaches EOF, or Out breaks) or ctx is cancelled. On the way out it
// ends the upstream session (HTTP DELETE). It returns nil after a normal end
// of input, ctx's error when cancelled, and an error for an invalid Config.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.check(); err != nil {
		return err
	}
	b := newBridge(ctx, cfg)
	return b.run(ctx)
}

// connState is where the bridge's connection to the server stands.
type connState int

const (
	stateNew          connState = iota // no session yet (before initialize, or a stateless client)
	stateReady                         // a session is established (or the era needs none)
	stateReconnecting                  // the session was lost; re-initializing
	stateStale                         // the server changed identity: the client must restart
	stateDown                          // the connection was lost and reconnection is off
)

// session is one upstream MCP session (protocol versions before 2026-07-28).
type session struct {
	id      string // Mcp-Session-Id; "" when the server does not use sessions
	version string // negotiated protocol version
	gen     int
	ctx     context.Context // cancelled when the session is lost or replaced
	cancel  context.CancelFunc
	caps    []byte // the server's capabilities (raw)

	listenOnce sync.Once
}

// identity is what must not change across a reconnection.
type identity struct {
	name, version, protocol string
}

func (id identity) String() string {
	return fmt.Sprintf("%q %s, protocol %s", id.name, id.version, id.protocol)
}

// call is one request in flight, from the client or the bridge itself.
type call struct {
	key    string // idKey of rawID
	rawID  []byte
	method string
	msg    *message
	modern bool // protocol 2026-07-28 or later: no session, standard headers
	ctx    context.Context
	cancel context.CancelFunc

	sent     chan struct{} // closed once the request is on the wire (or given up)
	sentOnce sync.Once

	internal chan *message // bridge-originated: the response goes here, not to the client

	// Guarded by bridge.mu.
	done      bool
	cancelled bool // by the client: its response is not wanted
	viaGET    bool // the server answered 202: the response comes on the GET stream

	sessionID string // Mcp-Session-Id of an initialize response

	staleRetried bool // resent once after a stale keep-alive connection
	nameRetried  bool // resent once with a plain Mcp-Name
}

func (c *call) markSent() { c.sentOnce.Do(func() { close(c.sent) }) }

type bridge struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	out    *output
	ctx    context.Context // cancelled when Run ends
	cancel context.CancelFunc

	wgMu    sync.Mutex
	closing bool
	wg      sync.WaitGroup // every goroutine but the input reader

	nextID atomic.Int64 // ids of the bridge's own requests

	// rawName: the server rejected a base64-encoded Mcp-Name (it compares
	// without decoding), so names go out as plain UTF-8.
	rawName atomic.Bool

	toolsMu sync.Mutex
	tools   toolHeaders

	mu        sync.Mutex
	calls     map[string]*call
	state     connState
	stateErr  error         // why requests fail in stateStale and stateDown
	lastErr   error         // the last upstream failure, for messages
	settled   chan struct{} // closed when stateReconnecting ends
	sess      *session
	gen       int
	everReady bool
	initReq   []byte            // params of the client's initialize request
	initNote  []byte            // the client's notifications/initialized message
	identity  identity          // of the first session
	logLevel  []byte            // params of the client's last successful logging/setLevel
	subs      map[string][]byte // resources/subscribe params by URI
}

func newBridge(ctx context.Context, cfg Config) *bridge {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	settled := make(chan struct{})
	close(settled)
	return &bridge{
		cfg:     cfg,
		log:     cfg.Logger.With("server", cfg.Name),
		client:  cfg.HTTPClient,
		out:     newOutput(cfg.Out),
		ctx:     bctx,
		cancel:  cancel,
		calls:   map[string]*call{},
		settled: settled,
		subs:    map[string][]byte{},
	}
}

func (b *bridge) run(ctx context.Context) error {
	inputDone := make(chan error, 1)
	go func() { inputDone <- b.readInput() }()

	var err error
	select {
	case err = <-inputDone:
		if err != nil {
			b.log.Warn("reading the client's input failed", "error", err)
		}
		err = nil
	case <-b.out.broken:
		b.log.Info("the client closed its output stream")
	case <-ctx.Done():
		err = ctx.Err()
	}
	b.shutdown()
	return err
}

// readInput reads client messages until the end of input.
func (b *bridge) readInput() error {
	lr := newLineReader(b.cfg.In, b.cfg.MaxMessageSize)
	for {
		line, err := lr.next()
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, errLineTooLong):
			b.log.Warn("dropped an oversized message from the client", "limit", b.cfg.MaxMessageSize)
			b.out.write(errorResponse(nil, -32600, fmt.Sprintf(
				"keyport: message larger than %d bytes dropped", b.cfg.MaxMessageSize)))
			continue
		case err != nil:
			return err
		}
		if b.ctx.Err() != nil {
			return nil
		}
		line = bytes.Clone(line)
		if line[skipSpace(line, 0)] == '[' {
			msgs, err := splitBatch(line)
			if err != nil {
				b.out.write(errorResponse(nil, -32700, "keyport: parse error: "+err.Error()))
				continue
			}
			for _, m := range msgs {
				b.dispatch(m)
			}
			continue
		}
		b.dispatch(line)
	}
}

// dispatch routes one message from the client.
func (b *bridge) dispatch(raw []byte) {
	m, err := parseMessage(raw)
	if err != nil {
		b.log.Warn("invalid message from the client", "error", err)
		if !json.Valid(raw) {
			b.out.write(errorResponse(nil, -32700, "keyport: parse error: "+err.Error()))
			return
		}
		var id []byte // JSON-RPC: the request's id if it can be read, else null
		if m.id != nil && m.method != "" {
			id = m.id
		}
		b.out.write(errorResponse(id, -32600, "keyport: invalid request: "+err.Error()))
		return
	}
	switch {
	case m.isRequest():
		b.startCall(&m)
	case m.isNotification():
		b.waitBriefly(b.goDo(func() { b.notify(&m) }))
	default:
		b.waitBriefly(b.goDo(func() { b.sendResponse(&m) }))
	}
}

// goDo runs f on a tracked goroutine and returns a channel closed when it ends.
func (b *bridge) goDo(f func()) chan struct{} {
	done := make(chan struct{})
	b.wgMu.Lock()
	if b.closing {
		b.wgMu.Unlock()
		close(done)
		return done
	}
	b.wg.Add(1)
	b.wgMu.Unlock()
	go func() {
		defer b.wg.Done()
		defer close(done)
		f()
	}()
	return done
}

// waitBriefly keeps client messages in order: the next one is read only
// after this one reached the server, unless that takes longer than a second
// (a slow server must not stall the stream).
func (b *bridge) waitBriefly(done <-chan struct{}) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-b.ctx.Done():
	}
}

// startCall forwards a client request and returns once it is on its way.
func (b *bridge) startCall(m *message) {
	c := b.newCall(m, nil)
	b.mu.Lock()
	if _, dup := b.calls[c.key]; dup {
		b.mu.Unlock()
		b.out.write(errorResponse(m.id, -32600, fmt.Sprintf(
			"keyport: request id %s is already in use by a request in flight", m.id)))
		return
	}
	if m.method == "initialize" {
		b.resetForInitialize()
	}
	b.calls[c.key] = c
	b.mu.Unlock()
	b.goDo(func() { b.forward(c) })
	b.waitBriefly(c.sent)
}

func (b *bridge) newCall(m *message, internal chan *message) *call {
	ctx, cancel := context.WithCancel(b.ctx)
	return &call{
		key:      idKey(m.id),
		rawID:    m.id,
		method:   m.method,
		msg:      m,
		modern:   metaProtocolVersion(m.params) >= version20260728,
		ctx:      ctx,
		cancel:   cancel,
		sent:     make(chan struct{}),
		internal: internal,
	}
}

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
func (b *bridge) exchange(c *call, sess *session) (result, error) {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	if sess != nil {
		stop := context.AfterFunc(sess.ctx, cancel)
		defer stop()
	}
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
		case lost:
			b.answerError(c, b.lostInFlight(c, b.sessionGone()).Error())
			return resDone, nil
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

// sendTrace follows one HTTP request far enough to tell whether a failed
// request can safely be sent again.
type sendTrace struct {
	wrote, reused, gotByte atomic.Bool
	wroteAt                atomic.Int64 // UnixNano
	onWrote                func()
}

// staleWindow is how soon after the request was written a hang-up counts
// as the server having closed the idle connection, rather than having
// failed while processing the request.
const staleWindow = 50 * time.Millisecond

func (t *sendTrace) with(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { t.reused.Store(i.Reused) },
		WroteRequest: func(httptrace.WroteRequestInfo) {
			t.wroteAt.Store(time.Now().UnixNano())
			t.wrote.Store(true)
			if t.onWrote != nil {
				t.onWrote()
			}
		},
		GotFirstResponseByte: func() { t.gotByte.Store(true) },
	})
}

// unsent reports whether a request that failed with err can be sent again:
// it never left, or it went out on a reused keep-alive connection that the
// server had already closed: the server hung up right after the write
// without a byte of response, the race every HTTP client meets when a
// server restarts or drops idle connections. Like browsers, the bridge
// resends in that second case, once per request (*once); a later hang-up
// may mean the server was processing the request, so it is not resent.
func (t *sendTrace) unsent(err error, once *bool) bool {
	if !t.wrote.Load() {
		return true
	}
	if *once || !t.reused.Load() || t.gotByte.Load() ||
		time.Since(time.Unix(0, t.wroteAt.Load())) > staleWindow {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || strings.Contains(err.Error(), "server closed idle connection") {
		*once = true
		return true
	}
	return false
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
		if c.ctx.Err() != nil {
			return resDone, nil
		}
		if ctx.Err() != nil { // the session was lost
			b.answerError(c, b.lostInFlight(c, b.sessionGone()).Error())
			return resDone, nil
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
			continue // the loop top reports cancellation or loss
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

// newRequest builds an HTTP request to the endpoint carrying m (nil for GET
// and DELETE) with the configured headers and the MCP transport headers.
func (b *bridge) newRequest(ctx context.Context, method string, sess *session, m *message) (*http.Request, error) {
	var body io.Reader
	if m != nil {
		body = bytes.NewReader(m.raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.cfg.URL, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.cfg.Name, redactErr(err))
	}
	if b.cfg.Header != nil {
		extra, err := b.cfg.Header(ctx)
		if err != nil {
			return nil, err
		}
		for k, vs := range extra {
			req.Header[http.CanonicalHeaderKey(k)] = vs
		}
	}
	switch method {
	case http.MethodPost:
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	case http.MethodGet:
		req.Header.Set("Accept", "text/event-stream")
	}
	version := ""
	if m != nil {
		version = metaProtocolVersion(m.params)
	}
	if version == "" && sess != nil && !(m != nil && m.method == "initialize") {
		version = sess.version
	}
	if version != "" {
		req.Header.Set(hdrProtocolVersion, version)
	}
	if sess != nil && sess.id != "" && version < version20260728 && !(m != nil && m.method == "initialize") {
		req.Header.Set(hdrSessionID, sess.id)
	}
	if m != nil && m.method != "" && version >= version20260728 {
		b.toolsMu.Lock()
		setStandardHeaders(req.Header, m, &b.tools, b.rawName.Load())
		b.toolsMu.Unlock()
	}
	return req, nil
}

// get opens a GET event stream on the session (resuming after lastID).
func (b *bridge) get(ctx context.Context, sess *session, lastID string) (*http.Response, error) {
	req, err := b.newRequest(ctx, http.MethodGet, sess, nil)
	if err != nil {
		return nil, err
	}
	if lastID != "" {
		req.Header.Set(hdrLastEventID, lastID)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, redactErr(err)
	}
	return resp, nil
}

// startListening opens the session's standalone GET stream (2025 era) for
// server-initiated requests and notifications, once per session.
func (b *bridge) startListening(sess *session) {
	if sess.version >= version20260728 {
		return
	}
	sess.listenOnce.Do(func() { b.goDo(func() { b.listen(sess) }) })
}

// listen keeps the standalone GET stream open while the session lives.
func (b *bridge) listen(sess *session) {
	var (
		lastID   string
		failures int
	)
	for sess.ctx.Err() == nil {
		resp, err := b.get(sess.ctx, sess, lastID)
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
// stream of a session that is gone (calls reading their own stream are
// answered by their reader when the session's context ends).
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

		b.mu.Lock()
		b.sess = sess
		b.state = stateReady
		b.lastErr = nil
		b.settle()
		b.mu.Unlock()
		b.log.Info("reconnected", "attempts", attempt+1)
		b.startListening(sess)
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

// shutdown stops everything and ends the upstream session.
func (b *bridge) shutdown() {
	b.wgMu.Lock()
	b.closing = true
	b.wgMu.Unlock()
	b.mu.Lock()
	sess := b.sess
	b.sess = nil
	b.mu.Unlock()
	b.cancel()
	if sess != nil {
		b.deleteSession(sess)
	}
	b.wg.Wait()
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

// Messages the client sees.

func (b *bridge) unreachable(err error) error {
	if err == nil {
		err = errors.New("no answer")
	}
	return fmt.Errorf("%s unreachable: %v; Keyport keeps retrying, try again in a moment", b.cfg.Name, err)
}

func (b *bridge) downError(err error) error {
	return fmt.Errorf("lost the connection to %s (%v) and automatic reconnection is off: restart your MCP client to reconnect",
		b.cfg.Name, err)
}

func (b *bridge) lostInFlight(c *call, err error) error {
	return fmt.Errorf("%s: the connection broke while %q was in flight (%v); it may or may not have completed, retry if that is safe",
		b.cfg.Name, c.method, err)
}

func (b *bridge) sessionGone() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastErr != nil {
		return b.lastErr
	}
	return errSessionMissing
}

// errorResponse builds a JSON-RPC error response (id nil means null).
func errorResponse(id []byte, code int, text string) []byte {
	if id == nil {
		id = []byte("null")
	}
	msg, _ := json.Marshal(text)
	out := make([]byte, 0, 64+len(id)+len(msg))
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, id...)
	out = append(out, `,"error":{"code":`...)
	out = strconv.AppendInt(out, int64(code), 10)
	out = append(out, `,"message":`...)
	out = append(out, msg...)
	return append(out, "}}"...)
}

func kindOf(m *message) string {
	switch {
	case m.isRequest():
		return "request"
	case m.isNotification():
		return "notification"
	}
	return "response"
}

func mediaType(h http.Header) string {
	t, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return t
}

// finishStream reads what follows the response on an event stream (the
// server normally ends the stream right after it) so the connection can be
// reused, giving up after a second.
func finishStream(body io.ReadCloser) {
	t := time.AfterFunc(time.Second, func() { body.Close() })
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 1<<20))
	t.Stop()
	body.Close()
}

// drain reads a little of an unwanted body so the connection can be reused.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10)) }

// output writes messages to the client, one per line, never interleaved.
type output struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	err    error
	broken chan struct{}
}

func newOutput(w io.Writer) *output { return &output{w: w, broken: make(chan struct{})} }

func (o *output) write(msg []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return
	}
	o.buf = append(o.buf[:0], msg...)
	// A message is one line: newlines in a valid JSON text are whitespace
	// between tokens, so they can become spaces.
	if bytes.IndexByte(msg, '\n') >= 0 || bytes.IndexByte(msg, '\r') >= 0 {
		for i, c := range o.buf {
			if c == '\n' || c == '\r' {
				o.buf[i] = ' '
			}
		}
	}
	o.buf = append(o.buf, '\n')
	_, err := o.w.Write(o.buf)
	if cap(o.buf) > 1<<20 {
		o.buf = nil
	}
	if err != nil {
		o.err = err
		close(o.broken)
	}
}
