package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// server is a real go-sdk MCP server on a fixed loopback port behind a
// real Keyport proxy (policy, audit log): one member of a profile. It can
// be restarted (a new process of the server: sessions forgotten) and its
// proxy stopped and started again on the same port.
type server struct {
	t     testing.TB
	name  string
	setup func(*mcp.Server)
	opts  *mcp.ServerOptions
	http  mcp.StreamableHTTPOptions
	addr  string
	cfg   proxymgr.Config

	mu     sync.Mutex
	srv    *http.Server
	mcp    *mcp.Server
	calls  []string // tools the server ran
	leaked bool     // a request carried the gateway's Keyport-Profile header
	proxy  *proxymgr.Proxy
	// intercept, when set, answers the server's requests instead of it.
	intercept http.HandlerFunc
}

// newServer starts name's server (setup adds its features) and its proxy.
func newServer(t testing.TB, name string, opts *mcp.ServerOptions, setup func(s *server, m *mcp.Server)) *server {
	t.Helper()
	s := &server{t: t, name: name, opts: opts}
	s.setup = func(m *mcp.Server) { setup(s, m) }
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	s.cfg = proxymgr.Config{Name: name, Upstream: "http://" + s.addr + "/mcp", Logger: testLogger(t)}
	s.startProxy()
	t.Cleanup(func() {
		s.stopProxy()
		s.mu.Lock()
		srv := s.srv
		s.mu.Unlock()
		if srv != nil {
			srv.Close()
		}
	})
	return s
}

func (s *server) serve(ln net.Listener) {
	m := mcp.NewServer(&mcp.Implementation{Name: s.name, Version: "1"}, s.opts)
	s.setup(m)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return m }, &s.http)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if r.Header.Get("Keyport-Profile") != "" {
			s.leaked = true
		}
		intercept := s.intercept
		s.mu.Unlock()
		if intercept != nil {
			intercept(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})}
	s.mu.Lock()
	s.srv, s.mcp = srv, m
	s.mu.Unlock()
	go srv.Serve(ln)
}

// restart replaces the server by a fresh process of it on the same port.
func (s *server) restart() {
	s.t.Helper()
	s.mu.Lock()
	old := s.srv
	s.mu.Unlock()
	old.Close()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if ln, err = net.Listen("tcp4", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("restart %s: %v", s.name, err)
	}
	s.serve(ln)
}

func (s *server) startProxy() {
	s.t.Helper()
	var p *proxymgr.Proxy
	var err error
	for i := 0; i < 100; i++ {
		if p, err = proxymgr.New(s.cfg); err == nil {
			if err = p.Start(context.Background()); err == nil {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("proxy of %s: %v", s.name, err)
	}
	s.cfg.Port = p.Port()
	s.mu.Lock()
	s.proxy = p
	s.mu.Unlock()
}

func (s *server) stopProxy() {
	s.mu.Lock()
	p := s.proxy
	s.proxy = nil
	s.mu.Unlock()
	if p != nil {
		_ = p.Shutdown(context.Background())
	}
}

func (s *server) member() Member {
	return Member{Server: s.name, URL: "http://127.0.0.1:" + strconv.Itoa(s.cfg.Port) + "/mcp"}
}

func (s *server) ran(tool string) {
	s.mu.Lock()
	s.calls = append(s.calls, tool)
	s.mu.Unlock()
}

func (s *server) ranTools() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

type textIn struct {
	Text string `json:"text,omitempty"`
}

// addEcho adds tools that answer "SERVER/TOOL:text" and record the call.
func addEcho(s *server, m *mcp.Server, names ...string) {
	for _, name := range names {
		mcp.AddTool(m, &mcp.Tool{Name: name, Description: name + " of " + s.name}, func(_ context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			s.ran(name)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s.name + "/" + name + ":" + in.Text}}}, nil, nil
		})
	}
}

// startGateway starts a gateway over members until the test ends.
func startGateway(t testing.TB, cfg Config) *Gateway {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return g
}

// connect opens a 2025-era client session to the gateway with opts.
func connect(t testing.TB, g *Gateway, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, opts)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: g.URL()}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect to the profile: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func toolNames(t testing.TB, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var out []string
	for _, tl := range res.Tools {
		out = append(out, tl.Name)
	}
	slices.Sort(out)
	return out
}

func callText(t testing.TB, cs *mcp.ClientSession, name, text string) (string, error) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: map[string]any{"text": text}})
	if err != nil {
		return "", err
	}
	if len(res.Content) == 0 {
		return "", nil
	}
	tc, _ := res.Content[0].(*mcp.TextContent)
	if tc == nil {
		return "", nil
	}
	return tc.Text, nil
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
