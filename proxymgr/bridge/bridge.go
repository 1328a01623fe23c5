package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
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
	listening  chan struct{} // closed once the GET stream's first attempt is answered
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
