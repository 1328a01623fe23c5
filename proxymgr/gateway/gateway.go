package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr"
	"keyport/proxymgr/peercred"
)

// ErrPortInUse is wrapped by Start's error when another program holds the
// configured port.
var ErrPortInUse = errors.New("port in use")

// Version is the version the gateway reports as its serverInfo.
var Version = "1"

// HealthPath answers GET with 200, the profile's name in
// HealthProfileHeader (so a CLI can tell Keyport's endpoint for a profile
// from another program on its port) and a Health body. Like every path of
// the endpoint, only this OS user's programs reach it.
const HealthPath = "/.keyport/health"

// HealthProfileHeader carries the profile name in health answers.
const HealthProfileHeader = "Keyport-Profile"

// sessionTimeout ends client sessions idle this long (their member
// sessions hold a stream each on the members' proxies).
const sessionTimeout = 2 * time.Hour

// Gateway is one profile endpoint. Create it with New, then Start; stop it
// with Shutdown.
type Gateway struct {
	log    *slog.Logger
	sdkLog *slog.Logger // the go-sdk's own logs: warnings and errors only

	cfgMu sync.RWMutex
	cfg   Config

	// legacy serves 2025-era sessions (initialize, Mcp-Session-Id); modern
	// serves 2026-07-28 stateless requests. Each is a go-sdk server whose
	// receiving middleware forwards to the members.
	legacy, modern         *mcp.Server
	legacyHTTP, modernHTTP http.Handler
	sendLegacy, sendModern atomic.Pointer[mcp.MethodHandler] // their sending handlers

	httpClient *http.Client

	mu       sync.Mutex
	sessions map[*mcp.ServerSession]*clientSession
	bySID    map[string]*clientSession // the same, by Mcp-Session-Id
	pool     *memberSet                // member sessions of stateless requests
	lastCaps *mcp.ServerCapabilities   // the members' capabilities, last known
	progress map[string]*call          // progress token sent to a member -> the call
	closed   bool

	tokens atomic.Int64

	// The tools/call pass-through (passthrough.go).
	passOff        atomic.Bool  // tests: every call takes the go-sdk path
	passed         atomic.Int64 // tool calls passed through
	resumed        atomic.Int64 // passed calls' streams resumed by their client
	sessionTimeout time.Duration

	mirrorMu sync.Mutex
	mirrored map[string]string // tools with Mcp-Param headers on the stateless server (headers.go)

	peers peerGate // peer.go

	subsMu   sync.Mutex
	poolSubs map[string]int // stateless listeners per resource URI

	srv     *http.Server
	ln      net.Listener
	port    int
	portStr string
	done    chan struct{}
}

// New validates cfg and returns a gateway ready to Start.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	g := &Gateway{
		log:            cfg.Logger.With("profile", cfg.Name),
		cfg:            cfg,
		sessions:       map[*mcp.ServerSession]*clientSession{},
		bySID:          map[string]*clientSession{},
		progress:       map[string]*call{},
		sessionTimeout: sessionTimeout,
	}
	g.httpClient = cfg.HTTPClient
	if g.httpClient == nil {
		// Members whose proxy runs in this process are reached in process
		// (proxymgr.LocalTransport: every stage of the proxy still runs),
		// the others over loopback.
		g.httpClient = &http.Client{Transport: proxymgr.LocalTransport(&http.Transport{
			Proxy:               nil, // members are loopback proxies
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		})}
	}
	g.httpClient = &http.Client{Transport: &memberTransport{g: g, base: transportOf(g.httpClient)}, Timeout: g.httpClient.Timeout}
	g.sdkLog = slog.New(quieter{g.log.Handler()})
	g.legacy = g.newServer(&g.sendLegacy, false)
	g.modern = g.newServer(&g.sendModern, true)
	// No SessionTimeout: the gateway times sessions out itself (session.go).
	g.legacyHTTP = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return g.legacy },
		&mcp.StreamableHTTPOptions{Logger: g.sdkLog})
	g.modernHTTP = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return g.modern },
		&mcp.StreamableHTTPOptions{Stateless: true, Logger: g.sdkLog, PropagateRequestCancellation: true})
	g.pool = newMemberSet(g, nil)
	g.pool.reconcile(cfg.Members) // connects on first use
	return g, nil
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

// fullCaps is what the gateway advertises before it knows its members.
func fullCaps() *mcp.ServerCapabilities {
	return &mcp.ServerCapabilities{
		Tools:       &mcp.ToolCapabilities{ListChanged: true},
		Prompts:     &mcp.PromptCapabilities{ListChanged: true},
		Resources:   &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
		Logging:     &mcp.LoggingCapabilities{},
		Completions: &mcp.CompletionCapabilities{},
	}
}

// newServer builds one of the gateway's go-sdk servers. Its features are
// the members': every request is answered by forward (forward.go), and the
// sending handler is kept in send so member messages can be relayed as they
// are.
func (g *Gateway) newServer(send *atomic.Pointer[mcp.MethodHandler], modern bool) *mcp.Server {
	opts := &mcp.ServerOptions{
		Capabilities:       fullCaps(),
		Logger:             g.sdkLog,
		SubscribeHandler:   g.subscribe,
		UnsubscribeHandler: g.unsubscribe,
		RootsListChangedHandler: func(ctx context.Context, req *mcp.RootsListChangedRequest) {
			g.rootsChanged(ctx, req.Session)
		},
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "keyport-profile-" + g.config().Name, Version: Version}, opts)
	s.AddSendingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		send.Store(&next)
		return next
	})
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			return g.forward(ctx, method, req, next, modern)
		}
	})
	return s
}

// config is the current configuration.
func (g *Gateway) config() Config {
	g.cfgMu.RLock()
	defer g.cfgMu.RUnlock()
	return g.cfg
}

// Name is the profile's name.
func (g *Gateway) Name() string { return g.config().Name }

// Start listens on 127.0.0.1 (Config.Port, or a free port) and serves in
// the background.
func (g *Gateway) Start(ctx context.Context) error {
	cfg := g.config()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("profile %s: port %d on 127.0.0.1 is in use by another program; free it or choose another port: %w", cfg.Name, cfg.Port, ErrPortInUse)
		}
		return fmt.Errorf("profile %s: listen on 127.0.0.1:%d: %w", cfg.Name, cfg.Port, err)
	}
	g.ln = ln
	g.port = ln.Addr().(*net.TCPAddr).Port
	g.portStr = strconv.Itoa(g.port)
	g.srv = &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		ConnContext:       withConnPeer, // peer.go
	}
	g.done = make(chan struct{})
	go func() {
		defer close(g.done)
		if err := g.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("the profile endpoint's listener failed", "err", err)
		}
	}()
	g.log.Info("profile endpoint started", "addr", ln.Addr().String(), "servers", len(cfg.Members))
	if s := peercred.Supported(); !s.Active {
		g.log.Warn("other users of this machine can use this profile endpoint: this system has no same-user check", "reason", s.Reason)
	}
	return nil
}

// Port is the listening port (0 before Start).
func (g *Gateway) Port() int { return g.port }

// URL is the MCP endpoint, http://127.0.0.1:PORT/mcp.
func (g *Gateway) URL() string { return "http://127.0.0.1:" + g.portStr + "/mcp" }

// Shutdown stops accepting, ends every client session and its member
// sessions, and waits for requests in flight until ctx is done.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	sessions := make([]*clientSession, 0, len(g.sessions))
	for _, cs := range g.sessions {
		sessions = append(sessions, cs)
	}
	g.mu.Unlock()
	var err error
	if g.srv != nil {
		// Session streams never end by themselves: close the sessions
		// first, then give requests until ctx.
		for _, cs := range sessions {
			cs.close()
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = g.srv.Shutdown(sctx)
		cancel()
		if err != nil {
			_ = g.srv.Close()
			err = nil
		}
		<-g.done
	}
	for _, cs := range sessions {
		cs.close()
	}
	g.pool.close()
	g.log.Info("profile endpoint stopped")
	return err
}

// ServeHTTP is the endpoint: the local checks, the health answer, then the
// go-sdk handler of the request's protocol era.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.checkPeer(w, r) {
		return
	}
	if !g.checkLocal(w, r) {
		return
	}
	switch r.URL.Path {
	case HealthPath:
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			w.Header().Set(HealthProfileHeader, g.config().Name)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_ = json.NewEncoder(w).Encode(g.Health())
			return
		}
	case "/", "/mcp":
		if modernRequest(r) {
			g.modernHTTP.ServeHTTP(w, r)
			return
		}
		if sid := r.Header.Get("Mcp-Session-Id"); sid != "" {
			if c := g.sessionByID(sid); c != nil {
				switch r.Method {
				case http.MethodPost:
					c.postStarted()
					defer c.postEnded()
					if g.passPOST(w, r, c) { // passthrough.go: tool calls as bytes
						return
					}
				case http.MethodGet:
					if g.passResume(w, r, c) {
						return
					}
				}
			}
		}
		g.legacyHTTP.ServeHTTP(w, r)
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("profile %s: no MCP endpoint at %s; use /mcp (or /)", g.config().Name, r.URL.Path))
}

// modernRequest reports whether r speaks the 2026-07-28 (stateless) era:
// its MCP-Protocol-Version header says so, and it is not part of a session.
func modernRequest(r *http.Request) bool {
	v := r.Header.Get("Mcp-Protocol-Version")
	return v >= "2026-07-28" && r.Header.Get("Mcp-Session-Id") == ""
}

// checkLocal is DNS-rebinding protection, as in Keyport's proxies: the Host
// must be this endpoint on a loopback name, and a browser Origin loopback.
func (g *Gateway) checkLocal(w http.ResponseWriter, r *http.Request) bool {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || port != g.portStr || !(strings.EqualFold(host, "localhost") || host == "127.0.0.1" || host == "::1" || host == "[::1]") {
		writeError(w, http.StatusForbidden, fmt.Sprintf("forbidden: Host %q is not this profile endpoint (127.0.0.1:%s); Keyport serves local clients only (DNS rebinding protection)", r.Host, g.portStr))
		return false
	}
	origins := r.Header.Values("Origin")
	if len(origins) > 1 {
		writeError(w, http.StatusForbidden, fmt.Sprintf("forbidden: the request has %d Origin headers; send at most one", len(origins)))
		return false
	}
	if len(origins) == 1 && !loopbackOrigin(origins[0]) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("forbidden: Origin %q may not use this profile endpoint; only loopback origins may", origins[0]))
		return false
	}
	return true
}

func loopbackOrigin(o string) bool {
	_, rest, ok := strings.Cut(o, "://")
	if !ok {
		return false
	}
	host := rest
	if h, _, err := net.SplitHostPort(rest); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	return strings.EqualFold(host, "localhost") || host == "127.0.0.1" || host == "::1"
}

// writeError answers with a JSON-RPC error the gateway produced itself.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":%q}}`+"\n", msg)
}

// Status is a snapshot of the gateway for the app.
type Status struct {
	Name     string
	Port     int
	Sessions int            // open client sessions (2025 era)
	Members  []MemberStatus // in profile order
}

// MemberStatus is how one member looks from the gateway's shared session.
type MemberStatus struct {
	Server string `json:"server"`
	Up     bool   `json:"up"`
	Error  string `json:"error,omitempty"` // why it is down, when it is
	// Idle: no client has used the member yet, so no connection was tried
	// (the shared session connects on first use); it is not known down.
	Idle bool `json:"idle,omitempty"`
}

// Health is the body of a HealthPath answer: the profile and, as Status
// has them, its sessions and members, for a CLI in another process.
type Health struct {
	Profile  string         `json:"profile"`
	Sessions int            `json:"sessions"`
	Members  []MemberStatus `json:"members"`
}

// Health returns the endpoint's Health answer.
func (g *Gateway) Health() Health {
	st := g.Status()
	return Health{Profile: st.Name, Sessions: st.Sessions, Members: st.Members}
}

// Status reports the gateway's sessions and, from its most recently
// active client session (or the shared session), whether each member is up.
func (g *Gateway) Status() Status {
	cfg := g.config()
	g.mu.Lock()
	st := Status{Name: cfg.Name, Port: g.port, Sessions: len(g.sessions)}
	var newest *clientSession
	for _, cs := range g.sessions {
		if newest == nil || cs.started.After(newest.started) {
			newest = cs
		}
	}
	g.mu.Unlock()
	set := g.pool
	if newest != nil {
		set = newest.set
	}
	for _, mc := range set.members() {
		up, why := mc.state()
		st.Members = append(st.Members, MemberStatus{Server: mc.m.Server, Up: up, Error: why, Idle: !mc.tried()})
	}
	return st
}

// Update applies a new configuration (a profile edited in servers.yaml, a
// member's proxy on a new port) to the running gateway: member sessions of
// added or changed members are (re)opened, removed ones closed, and every
// client hears list_changed. The name and port stay.
func (g *Gateway) Update(cfg Config) error {
	cur := g.config()
	cfg.Name, cfg.Port = cur.Name, cur.Port
	if cfg.Logger == nil {
		cfg.Logger = cur.Logger
	}
	if err := cfg.Check(); err != nil {
		return err
	}
	g.cfgMu.Lock()
	g.cfg = cfg
	g.cfgMu.Unlock()
	g.mu.Lock()
	sets := []*memberSet{g.pool}
	for _, cs := range g.sessions {
		sets = append(sets, cs.set)
	}
	g.mu.Unlock()
	for _, s := range sets {
		s.reconcile(cfg.Members)
	}
	g.log.Info("profile updated", "servers", len(cfg.Members))
	return nil
}

// quieter passes on warnings and errors only (the go-sdk logs every
// session at info level).
type quieter struct{ slog.Handler }

func (q quieter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && q.Handler.Enabled(ctx, l)
}

func (q quieter) WithAttrs(as []slog.Attr) slog.Handler { return quieter{q.Handler.WithAttrs(as)} }
func (q quieter) WithGroup(n string) slog.Handler       { return quieter{q.Handler.WithGroup(n)} }
