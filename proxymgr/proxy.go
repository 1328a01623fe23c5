package proxymgr

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"keyport/proxymgr/audit"
	"keyport/proxymgr/policy"
	"keyport/proxymgr/redact"
)

// State is a proxy's lifecycle state.
type State string

// States.
const (
	StateStopped     State = "stopped"
	StateStarting    State = "starting"
	StateRunning     State = "running"
	StateUnreachable State = "unreachable" // listening, but the upstream cannot be reached
	StateError       State = "error"       // the listener failed
)

// Counters are a proxy's traffic counters since it started.
type Counters struct {
	Requests   int64 // JSON-RPC requests and notifications from clients
	Errors     int64 // requests answered with an error (by the proxy or the server)
	Denials    int64 // tool calls the policy denied
	BytesIn    int64 // request body bytes from clients
	BytesOut   int64 // response body bytes to clients
	Sessions   int64 // open MCP sessions
	Streams    int64 // open SSE responses
	AuditDrops int64 // audit events dropped because the writer fell behind
	// ForeignPeers counts requests refused because their connection came
	// from another OS user of this machine, or from one that could not be
	// identified (peer.go).
	ForeignPeers int64
	Redactions   int64 // injected credentials removed from answers to clients
}

// Status is a snapshot of a proxy.
type Status struct {
	Name      string
	State     State
	Port      int
	URL       string // http://127.0.0.1:PORT/mcp
	Upstream  string // the upstream URL with query values hidden
	Counters  Counters
	LastError string
	Latency   time.Duration // median of recent request round trips
	Since     time.Time     // when State was entered
}

// Proxy is one local streamable-HTTP reverse proxy in front of one MCP
// server. Create it with New, then Start; stop it with Shutdown. A Proxy is
// started at most once.
type Proxy struct {
	cfg      Config
	name     string
	up       *url.URL
	pol      *policy.Policy
	tr       *http.Transport
	jar      http.CookieJar
	log      *slog.Logger
	redactor *audit.Redactor
	secrets  *redact.Set // what the proxy injected: never sent to a client (redact.go)
	audit    *audit.Writer
	tokenSum [sha256.Size]byte
	origins  map[string]bool
	sessions *sessionTable // shared with a successor (handoff.go)
	handlers sync.WaitGroup

	baseCtx context.Context
	cancel  context.CancelFunc

	mu       sync.Mutex
	state    State
	since    time.Time
	lastErr  string
	port     int
	sock     *socket // the listening socket, maybe inherited (handoff.go)
	ownsSock bool    // Shutdown closes sock (false once a successor took it)
	inherit  *socket // set before Start: serve on this socket instead of listening
	started  bool
	stopping bool
	streams  map[*context.CancelFunc]struct{} // standalone GET streams
	probing  bool

	requests, errs, denials, bytesIn, bytesOut atomic.Int64
	streamsOpen                                atomic.Int64
	redactions, redactWarned                   atomic.Int64
	lat                                        latencyRing
	peers                                      peerGate // peer.go

	notify     atomic.Pointer[func(immediate bool)] // set by the Manager
	hasCookies atomic.Bool                          // the upstream set a cookie
	portStr    string                               // set before serving
}

// New validates cfg and returns a proxy ready to Start.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	jar, _ := cookiejar.New(nil)
	p := &Proxy{
		cfg:      cfg,
		name:     cfg.Name,
		up:       cfg.upstreamURL,
		pol:      cfg.policy,
		jar:      jar,
		log:      cfg.Logger.With("server", cfg.Name),
		redactor: audit.NewRedactor(),
		secrets:  redact.NewSet(),
		state:    StateStopped,
		since:    time.Now(),
		port:     cfg.Port,
		origins:  map[string]bool{},
		sessions: &sessionTable{},
		streams:  map[*context.CancelFunc]struct{}{},
	}
	for _, o := range cfg.AllowedOrigins {
		n, _ := normalizeOrigin(o)
		p.origins[n] = true
	}
	if cfg.LocalToken != "" {
		p.tokenSum = sha256.Sum256([]byte("Bearer " + cfg.LocalToken))
		p.redactor.Add(cfg.LocalToken)
		p.secrets.Add(cfg.LocalToken)
	}
	p.tr = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // the proxy inspects bodies; loopback needs no compression
		TLSClientConfig:       &tls.Config{RootCAs: cfg.caPool, MinVersion: tls.VersionTLS12},
	}
	return p, nil
}

// Name is the server's name.
func (p *Proxy) Name() string { return p.name }

// Start listens on 127.0.0.1 (cfg.Port, or a free port) and serves in the
// background. ctx bounds only the start itself; stop the proxy with
// Shutdown. If another program holds the port, the error wraps ErrPortInUse.
func (p *Proxy) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return fmt.Errorf("proxy %s: already started", p.name)
	}
	p.started = true
	p.mu.Unlock()
	p.setState(StateStarting, "")
	if err := ctx.Err(); err != nil {
		p.setState(StateStopped, "")
		return err
	}
	sock := p.inherit
	if sock == nil {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.cfg.Port)))
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				err = fmt.Errorf("%s: port %d on 127.0.0.1 is in use by another program; free it or choose another port: %w", p.name, p.cfg.Port, ErrPortInUse)
			} else {
				err = fmt.Errorf("%s: listen on 127.0.0.1:%d: %w", p.name, p.cfg.Port, err)
			}
			p.setState(StateError, err.Error())
			return err
		}
		sock = newSocket(ln, p.log)
	}
	if p.cfg.Audit.File != "" {
		w, err := audit.Open(p.cfg.Audit, p.redactor)
		if err != nil {
			if p.inherit == nil {
				sock.ln.Close()
			}
			err = fmt.Errorf("%s: %w", p.name, err)
			p.setState(StateError, err.Error())
			return err
		}
		p.mu.Lock() // Status reads it concurrently
		p.audit = w
		p.mu.Unlock()
	}
	p.baseCtx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.mu.Lock()
	p.sock = sock
	p.ownsSock = true
	p.port = sock.ln.Addr().(*net.TCPAddr).Port
	p.portStr = strconv.Itoa(p.port)
	p.mu.Unlock()
	if p.up.Scheme == "http" && p.cfg.Credentials != nil && !isLoopbackHost(p.up.Hostname()) {
		p.log.Warn("the upstream URL is plain http: credentials travel unencrypted", "upstream", redactURL(p.up))
	}
	// From here on every request reaches p (on an inherited socket, the
	// predecessor gets none).
	sock.current.Store(p)
	if p.inherit == nil {
		sock.serve()
	}
	p.setState(StateRunning, "")
	p.log.Info("proxy started", "addr", p.Addr(), "upstream", redactURL(p.up))
	p.logPeerCheck()
	p.startProbe()
	go p.janitor(p.baseCtx)
	return nil
}

// janitor forgets, every few minutes, sessions that clients left behind.
func (p *Proxy) janitor(ctx context.Context) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, s := range p.sessions.sweep(now) {
				p.endSession(s, "forgotten (idle)")
			}
		}
	}
}

// Addr is the listening address, 127.0.0.1:PORT.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
}

// Port is the listening port (the configured one before Start).
func (p *Proxy) Port() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.port
}

// URL is the MCP endpoint clients connect to, http://127.0.0.1:PORT/mcp.
func (p *Proxy) URL() string { return "http://" + p.Addr() + "/mcp" }

// Shutdown stops the proxy: it stops accepting, ends standalone SSE (GET)
// streams, gives in-flight requests until ctx is done (at most 5 s), then
// cancels what remains, and closes the audit log.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	sock := p.sock
	if sock == nil || p.stopping {
		p.mu.Unlock()
		if sock == nil {
			p.setState(StateStopped, "")
		}
		return nil
	}
	p.stopping = true
	owner := p.ownsSock
	streams := make([]context.CancelFunc, 0, len(p.streams))
	for c := range p.streams {
		streams = append(streams, *c)
	}
	p.mu.Unlock()
	endStreams := func() {
		for _, c := range streams {
			c()
		}
	}
	grace, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var err error
	if owner {
		err = sock.shutdown(grace, endStreams)
	} else {
		// Replaced by a successor that already serves the socket: finish
		// this configuration's own requests (its streams end now, and their
		// clients reconnect to the successor).
		endStreams()
		err = waitFor(grace, &p.handlers)
	}
	if err != nil {
		p.log.Info("cancelling requests still running after the grace period")
		err = nil
	}
	p.cancel()
	if owner {
		_ = sock.srv.Close()
		<-sock.done
	}
	after, cancelAfter := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelAfter()
	if waitFor(after, &p.handlers) != nil {
		p.log.Warn("some requests did not end after cancellation")
	}
	p.tr.CloseIdleConnections()
	if owner {
		// (A replaced proxy's sessions live on in its successor.)
		for _, s := range p.sessions.all() {
			p.endSession(s, "proxy stopped")
		}
	}
	if p.audit != nil {
		if aerr := p.audit.Close(); aerr != nil {
			p.log.Warn("audit log", "err", aerr)
		}
	}
	p.setState(StateStopped, "")
	p.log.Info("proxy stopped")
	return err
}

// waitFor waits for wg until ctx is done.
func waitFor(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status returns a snapshot of the proxy.
func (p *Proxy) Status() Status {
	p.mu.Lock()
	st := Status{
		Name:      p.name,
		State:     p.state,
		Port:      p.port,
		Upstream:  redactURL(p.up),
		LastError: p.lastErr,
		Since:     p.since,
	}
	aw := p.audit
	p.mu.Unlock()
	if st.State != StateStopped && st.Port != 0 {
		st.URL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(st.Port)) + "/mcp"
	}
	st.Counters = Counters{
		Requests:   p.requests.Load(),
		Errors:     p.errs.Load(),
		Denials:    p.denials.Load(),
		BytesIn:    p.bytesIn.Load(),
		BytesOut:   p.bytesOut.Load(),
		Sessions:   int64(p.sessions.len()),
		Streams:    p.streamsOpen.Load(),
		AuditDrops: int64(aw.Drops()),

		ForeignPeers: p.peers.refused.Load(),
		Redactions:   p.redactions.Load(),
	}
	st.Latency = p.lat.median()
	return st
}

// setState records a state change and notifies at once.
func (p *Proxy) setState(s State, errText string) {
	p.mu.Lock()
	changed := p.state != s || (errText != "" && errText != p.lastErr)
	if p.state != s {
		p.since = time.Now()
	}
	p.state = s
	if errText != "" {
		p.lastErr = errText
	}
	p.mu.Unlock()
	if changed {
		p.changed(true)
	}
}

// changed tells the Manager something worth showing changed.
func (p *Proxy) changed(immediate bool) {
	if f := p.notify.Load(); f != nil {
		(*f)(immediate)
	}
}

// upstreamOK records that the upstream answered.
func (p *Proxy) upstreamOK() {
	p.mu.Lock()
	unreachable := p.state == StateUnreachable
	p.mu.Unlock()
	if unreachable {
		p.setState(StateRunning, "")
		p.log.Info("upstream reachable again")
	}
}

// upstreamDown records that the upstream could not be reached.
func (p *Proxy) upstreamDown(why string) {
	p.mu.Lock()
	running := p.state == StateRunning || p.state == StateUnreachable
	p.mu.Unlock()
	if !running {
		return
	}
	p.setState(StateUnreachable, fmt.Sprintf("%s unreachable: %s", p.name, why))
	p.startProbe()
}

// startProbe checks in the background whether the upstream answers, and
// keeps checking while it does not, so the status recovers without traffic.
func (p *Proxy) startProbe() {
	p.mu.Lock()
	if p.probing || p.stopping || p.baseCtx == nil {
		p.mu.Unlock()
		return
	}
	p.probing = true
	ctx := p.baseCtx
	p.mu.Unlock()
	go func() {
		defer func() { p.mu.Lock(); p.probing = false; p.mu.Unlock() }()
		delay := time.Second
		for {
			err := p.probe(ctx)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				p.upstreamOK()
				return
			}
			p.upstreamDown(reason(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(delay*2, 30*time.Second)
		}
	}()
}

// probe sends a HEAD request without credentials: any HTTP answer means the
// server is reachable (DNS, TCP and TLS work).
func (p *Proxy) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, p.up.String(), nil)
	if err != nil {
		return err
	}
	resp, err := p.tr.RoundTrip(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// latencyRing keeps recent round-trip times.
type latencyRing struct {
	mu  sync.Mutex
	buf [128]time.Duration
	n   int
	i   int
}

func (l *latencyRing) add(d time.Duration) {
	l.mu.Lock()
	l.buf[l.i] = d
	l.i = (l.i + 1) % len(l.buf)
	if l.n < len(l.buf) {
		l.n++
	}
	l.mu.Unlock()
}

func (l *latencyRing) median() time.Duration {
	l.mu.Lock()
	s := slices.Clone(l.buf[:l.n])
	l.mu.Unlock()
	if len(s) == 0 {
		return 0
	}
	slices.Sort(s)
	return s[len(s)/2]
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
