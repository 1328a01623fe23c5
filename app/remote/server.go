package remote

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"keyport/app"
	"keyport/app/oauth"
)

// ServeOptions configure a Server.
type ServeOptions struct {
	// OpenURL opens the browser for SignIn. It runs in the server's
	// process: the window's own opener cannot cross the socket. nil means
	// oauth.BrowserOpener(os.Getenv), the CLI's opener.
	OpenURL func(string) error
	// OnQuit is called when a client asks the whole app to quit
	// (Client.Quit), after the client got its answer, on a goroutine of its
	// own: it may call Server.Close. nil: Quit fails with an error saying so.
	OnQuit func()
	// Logger receives the server's logs (never a frame's content); nil
	// means slog.Default().
	Logger *slog.Logger
}

// Server serves a Backend to any number of clients until Close.
type Server struct {
	ln      net.Listener
	b       Backend
	openURL func(string) error
	onQuit  func()
	log     *slog.Logger

	snapMu  sync.Mutex // snapshots are read and numbered one at a time
	snapSeq uint64

	mu     sync.Mutex
	conns  map[*serverConn]struct{}
	closed bool
	wg     sync.WaitGroup // the accept loop and every connection
	once   sync.Once
	err    error
}

// Limits of one connection.
const (
	// maxInFlight is how many requests of one connection run at once; the
	// connection's next request waits for a free slot.
	maxInFlight = 32
	// maxBatch is how many queued events go in one snapshot frame.
	maxBatch = 64
	// writeTimeout ends a connection whose peer stops reading.
	writeTimeout = 10 * time.Second
)

// Serve serves b on ln, each connection on goroutines of its own, until
// Close. It returns at once.
func Serve(ln net.Listener, b Backend, opts ServeOptions) *Server {
	s := &Server{ln: ln, b: b, openURL: opts.OpenURL, onQuit: opts.OnQuit, log: opts.Logger,
		conns: map[*serverConn]struct{}{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.openURL == nil {
		s.openURL = oauth.BrowserOpener(os.Getenv)
	}
	s.wg.Add(1)
	go s.accept()
	return s
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, then go on.
			s.log.Warn("remote: accept failed; retrying", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		sc := newServerConn(s, c)
		s.conns[sc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			sc.serve()
			s.mu.Lock()
			delete(s.conns, sc)
			s.mu.Unlock()
		}()
	}
}

// Raise asks every connected window to come to the front (a second launch
// of Keyport, "Open Keyport" in the tray). It does not wait for them.
func (s *Server) Raise() {
	s.mu.Lock()
	conns := make([]*serverConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	for _, sc := range conns {
		go sc.write(frame{Raise: true})
	}
}

// Connected reports how many windows are connected.
func (s *Server) Connected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops accepting, ends every connection (cancelling the requests
// in flight: a running sign-in stops) and waits for their goroutines. The
// Backend stays as it is. It is safe to call more than once, and from
// OnQuit.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*serverConn, 0, len(s.conns))
		for sc := range s.conns {
			conns = append(conns, sc)
		}
		s.mu.Unlock()
		s.err = s.ln.Close()
		for _, sc := range conns {
			sc.write(frame{Bye: true}) // so the window knows Keyport quit, not crashed
			sc.close()
		}
		s.wg.Wait()
	})
	return s.err
}

// serverConn is one client's connection.
type serverConn struct {
	s      *Server
	c      net.Conn
	ctx    context.Context // cancelled when the connection ends
	cancel context.CancelFunc
	sem    chan struct{} // requests in flight
	wg     sync.WaitGroup

	wmu sync.Mutex // one frame at a time

	mu    sync.Mutex
	calls map[uint64]context.CancelFunc // requests in flight by id
}

func newServerConn(s *Server, c net.Conn) *serverConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &serverConn{s: s, c: c, ctx: ctx, cancel: cancel,
		sem: make(chan struct{}, maxInFlight), calls: map[uint64]context.CancelFunc{}}
}

func (sc *serverConn) close() {
	sc.cancel()
	sc.c.Close()
}

func (sc *serverConn) serve() {
	defer sc.wg.Wait()
	defer sc.close()
	// Subscribe before the first snapshot, so no change falls in between.
	events, unsubscribe := sc.s.b.Subscribe()
	defer unsubscribe()
	sc.wg.Add(1)
	go sc.push(events)
	sc.read()
}

// read reads requests until the connection ends or breaks the protocol
// beyond repair.
func (sc *serverConn) read() {
	in := bufio.NewScanner(sc.c)
	in.Buffer(make([]byte, 0, 4096), maxRequest)
	for in.Scan() {
		line := in.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var f frame
		if err := json.Unmarshal(line, &f); err != nil {
			// Never log the line: it may hold a secret.
			sc.s.log.Debug("remote: malformed request", "bytes", len(line))
			sc.reply(0, "", nil, errors.New("malformed request: each line must be one JSON frame"))
			continue
		}
		switch {
		case f.Cancel != 0:
			sc.mu.Lock()
			if cancel, ok := sc.calls[f.Cancel]; ok {
				cancel()
			}
			sc.mu.Unlock()
		case f.ID == 0 || f.Method == "":
			sc.reply(f.ID, "", nil, errors.New("malformed request: it needs an id and a method"))
		default:
			if !sc.start(f) {
				return
			}
		}
	}
	if errors.Is(in.Err(), bufio.ErrTooLong) {
		sc.s.log.Warn("remote: a request was too large; closing its connection", "limit", maxRequest)
		sc.reply(0, "", nil, fmt.Errorf("request larger than %d bytes refused; closing the connection", maxRequest))
	}
}

// start runs request f on a goroutine of its own. It reports false when the
// connection ended while waiting for a free slot.
func (sc *serverConn) start(f frame) bool {
	h, ok := handlers[f.Method]
	if !ok {
		name := f.Method
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		sc.reply(f.ID, "", nil, fmt.Errorf("unknown method %q: the window and the background app are "+
			"different Keyport versions; quit Keyport and launch it again", name))
		return true
	}
	select {
	case sc.sem <- struct{}{}:
	case <-sc.ctx.Done():
		return false
	}
	ctx, cancel := context.WithCancel(sc.ctx)
	sc.mu.Lock()
	if _, dup := sc.calls[f.ID]; dup {
		sc.mu.Unlock()
		cancel()
		<-sc.sem
		sc.reply(f.ID, "", nil, fmt.Errorf("request id %d is already in flight", f.ID))
		return true
	}
	sc.calls[f.ID] = cancel
	sc.mu.Unlock()
	sc.wg.Add(1)
	go func() {
		defer sc.wg.Done()
		defer func() { <-sc.sem }()
		res, err := sc.run(ctx, f.Method, h, f.Params)
		sc.mu.Lock()
		delete(sc.calls, f.ID)
		sc.mu.Unlock()
		cancel()
		sc.reply(f.ID, f.Method, res, err)
		if f.Method == "Quit" && err == nil {
			go sc.s.onQuit() // not waited for: it may Close the server
		}
	}()
	return true
}

// run calls a handler; a panic in the Backend fails the request, not the
// process.
func (sc *serverConn) run(ctx context.Context, method string, h handler, params json.RawMessage) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			sc.s.log.Error("remote: a core method panicked", "method", method, "panic", r, "stack", string(debug.Stack()))
			res, err = nil, fmt.Errorf("%s failed unexpectedly (%v); see Keyport's log", method, r)
		}
	}()
	return h(ctx, sc.s, params)
}

// reply answers request id (0: a request that could not be read).
func (sc *serverConn) reply(id uint64, method string, res any, err error) {
	f := frame{ID: id}
	if err == nil {
		b, merr := json.Marshal(res)
		switch {
		case merr != nil:
			err = fmt.Errorf("%s: encode the answer: %w", method, merr)
		case len(b) > maxResponse-1024:
			err = fmt.Errorf("%s: the answer is larger than %d bytes; ask for less", method, maxResponse)
		default:
			f.Result = b
		}
	}
	if err != nil {
		msg := err.Error()
		f.Err = &msg
	}
	if changesServers[method] {
		f.Snapshot = sc.snapshot() // even after an error: a failed start shows as error
	}
	sc.write(f)
}

// push sends the first snapshot, then a snapshot with the events for every
// batch of events, until the connection ends.
func (sc *serverConn) push(events <-chan app.Event) {
	defer sc.wg.Done()
	sc.write(frame{Hello: &hello{Protocol: protocolVersion}, Snapshot: sc.snapshot()})
	for {
		select {
		case <-sc.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			batch := []app.Event{ev}
		drain:
			for len(batch) < maxBatch {
				select {
				case ev, ok := <-events:
					if !ok {
						break drain
					}
					batch = append(batch, ev)
				default:
					break drain
				}
			}
			// The snapshot is read after the events: it shows at least
			// what they announce.
			sc.write(frame{Snapshot: sc.snapshot(), Events: batch})
		}
	}
}

func (sc *serverConn) snapshot() *snapshot { return sc.s.snapshot() }

// snapshot reads the core's servers and catalog error, numbered in the
// order they were read.
func (s *Server) snapshot() *snapshot {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	servers, err := json.Marshal(s.b.Servers())
	if err != nil { // plain values: cannot happen
		s.log.Error("remote: encode the servers", "err", err)
		servers = []byte("null")
	}
	profiles, err := json.Marshal(s.b.Profiles())
	if err != nil {
		profiles = []byte("null")
	}
	s.snapSeq++
	return &snapshot{Seq: s.snapSeq, Servers: servers, CatalogError: s.b.CatalogError(), Profiles: profiles}
}

// write sends one frame; a peer that does not read it in time loses its
// connection.
func (sc *serverConn) write(f frame) {
	b, err := json.Marshal(f)
	if err != nil {
		sc.s.log.Error("remote: encode a frame", "err", err)
		return
	}
	b = append(b, '\n')
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	_ = sc.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := sc.c.Write(b); err != nil {
		sc.close()
	}
}

// handler runs one method with its JSON parameters.
type handler func(ctx context.Context, s *Server, params json.RawMessage) (any, error)

// method makes a handler of a function taking decoded parameters.
func method[P any](f func(ctx context.Context, s *Server, p P) (any, error)) handler {
	return func(ctx context.Context, s *Server, params json.RawMessage) (any, error) {
		var p P
		if len(params) > 0 {
			dec := json.NewDecoder(bytes.NewReader(params))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				return nil, fmt.Errorf("malformed parameters: %w", err)
			}
		}
		return f(ctx, s, p)
	}
}

// handlers are the methods by name: Backend's, but Servers, CatalogError,
// Subscribe (pushed as snapshots) and Close (the server's owner closes the
// core), plus Quit.
var handlers = map[string]handler{
	"SetProxyEnabled": method(func(ctx context.Context, s *Server, p proxyArgs) (any, error) {
		return nil, s.b.SetProxyEnabled(ctx, p.Name, p.On)
	}),
	"SetProfileEnabled": method(func(ctx context.Context, s *Server, p proxyArgs) (any, error) {
		return nil, s.b.SetProfileEnabled(ctx, p.Name, p.On)
	}),
	"SetProfile": method(func(_ context.Context, s *Server, p profileArgs) (any, error) {
		return nil, s.b.SetProfile(p.Profile, p.Create)
	}),
	"RemoveProfile": method(func(_ context.Context, s *Server, p nameArgs) (any, error) {
		return nil, s.b.RemoveProfile(p.Name)
	}),
	"ProfileTools": method(func(ctx context.Context, s *Server, p nameArgs) (any, error) {
		return s.b.ProfileTools(ctx, p.Name)
	}),
	"SetSecret": method(func(_ context.Context, s *Server, p secretArgs) (any, error) {
		return nil, s.b.SetSecret(p.Name, p.Kind, p.Value)
	}),
	"ClearSecrets": method(func(_ context.Context, s *Server, p nameArgs) (any, error) {
		return nil, s.b.ClearSecrets(p.Name)
	}),
	"SignIn": method(func(ctx context.Context, s *Server, p nameArgs) (any, error) {
		return nil, s.b.SignIn(ctx, p.Name, s.openURL)
	}),
	"SetToolPolicy": method(func(_ context.Context, s *Server, p policyArgs) (any, error) {
		return nil, s.b.SetToolPolicy(p.Name, p.Allow, p.Deny)
	}),
	"Tools": method(func(ctx context.Context, s *Server, p nameArgs) (any, error) {
		return s.b.Tools(ctx, p.Name)
	}),
	"CheckPolicy": method(func(_ context.Context, s *Server, p checkArgs) (any, error) {
		return s.b.CheckPolicy(p.Allow, p.Deny, p.Tools)
	}),
	"ToolReview": method(func(_ context.Context, s *Server, p nameArgs) (any, error) {
		return s.b.ToolReview(p.Name)
	}),
	"ApproveTools": method(func(_ context.Context, s *Server, p pinArgs) (any, error) {
		return s.b.ApproveTools(p.Name, p.Tools, p.All)
	}),
	"BlockTools": method(func(_ context.Context, s *Server, p pinArgs) (any, error) {
		return s.b.BlockTools(p.Name, p.Tools, p.All)
	}),
	"ResetPins": method(func(_ context.Context, s *Server, p nameArgs) (any, error) {
		return s.b.ResetPins(p.Name)
	}),
	"Audit": method(func(_ context.Context, s *Server, p auditArgs) (any, error) {
		return s.b.Audit(p.Name, p.N)
	}),
	"AuditPath": method(func(_ context.Context, s *Server, p nameArgs) (any, error) {
		return s.b.AuditPath(p.Name), nil
	}),
	"Clients": method(func(_ context.Context, s *Server, p clientArgs) (any, error) {
		return s.b.Clients(p.Server), nil
	}),
	"PreviewClient": method(func(_ context.Context, s *Server, p clientArgs) (any, error) {
		return s.b.PreviewClient(p.ClientID, p.Server, p.On)
	}),
	"ApplyClient": method(func(_ context.Context, s *Server, p clientArgs) (any, error) {
		return s.b.ApplyClient(p.ClientID, p.Server, p.On)
	}),
	"UndoClient": method(func(_ context.Context, s *Server, p clientArgs) (any, error) {
		return nil, s.b.UndoClient(p.ClientID)
	}),
	"AddServer": method(func(_ context.Context, s *Server, p app.NewServer) (any, error) {
		return nil, s.b.AddServer(p)
	}),
	"RemoveServer": method(func(_ context.Context, s *Server, p nameArgs) (any, error) {
		return nil, s.b.RemoveServer(p.Name)
	}),
	"SearchRegistry": method(func(ctx context.Context, s *Server, p queryArgs) (any, error) {
		return s.b.SearchRegistry(ctx, p.Query)
	}),
	"ImportFromRegistry": method(func(ctx context.Context, s *Server, p importArgs) (any, error) {
		return nil, s.b.ImportFromRegistry(ctx, p.Result, p.Secrets)
	}),
	"SetDemoHidden": method(func(_ context.Context, s *Server, p onArgs) (any, error) {
		return nil, s.b.SetDemoHidden(p.On)
	}),
	"Telemetry": method(func(_ context.Context, s *Server, _ noArgs) (any, error) {
		return s.b.Telemetry(), nil
	}),
	"Autostart": method(func(_ context.Context, s *Server, _ noArgs) (any, error) {
		return s.b.Autostart(), nil
	}),
	"SetAutostart": method(func(_ context.Context, s *Server, p onArgs) (any, error) {
		return nil, s.b.SetAutostart(p.On)
	}),
	"WindowPrefs": method(func(_ context.Context, s *Server, _ noArgs) (any, error) {
		return s.b.WindowPrefs(), nil
	}),
	"SetWindowPrefs": method(func(_ context.Context, s *Server, p app.WindowPrefs) (any, error) {
		return nil, s.b.SetWindowPrefs(p)
	}),
	"Quit": method(func(_ context.Context, s *Server, _ noArgs) (any, error) {
		if s.onQuit == nil {
			return nil, errors.New("this Keyport cannot be quit from its window; quit it from the tray")
		}
		return nil, nil // onQuit runs once the answer is sent
	}),
}
