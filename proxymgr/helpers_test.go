package proxymgr

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// testLogger logs to the test output only with -v, so runs stay readable.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// recorded is one request the upstream received.
type recorded struct {
	Method string
	Header http.Header
	Body   []byte
}

// upstream is a real go-sdk MCP server on a loopback port that tests can
// stop, restart (losing its sessions) and inspect.
type upstream struct {
	t    testing.TB
	opts mcp.StreamableHTTPOptions
	addr string

	mu       sync.Mutex
	srv      *http.Server
	handler  http.Handler
	srvMCP   *mcp.Server
	requests []recorded
	calls    map[string]int // tool calls that reached the server, by tool

	wrap atomic.Pointer[func(http.Handler) http.Handler] // optional middleware
}

type echoIn struct {
	Text string `json:"text,omitempty"`
}

type countIn struct {
	N     int `json:"n,omitempty"`
	Delay int `json:"delay_ms,omitempty"`
}

type sizeIn struct {
	Bytes int `json:"bytes,omitempty"`
}

func newMCPServer(u *upstream) *mcp.Server {
	count := func(name string) {
		u.mu.Lock()
		u.calls[name]++
		u.mu.Unlock()
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "test-upstream", Version: "1.0.0"}, &mcp.ServerOptions{
		SubscribeHandler: func(_ context.Context, req *mcp.SubscribeRequest) error {
			count("subscribe " + req.Params.URI)
			return nil
		},
		UnsubscribeHandler: func(_ context.Context, req *mcp.UnsubscribeRequest) error {
			count("unsubscribe " + req.Params.URI)
			return nil
		},
	})
	for _, uri := range []string{"test://a", "test://b"} {
		s.AddResource(&mcp.Resource{URI: uri, Name: uri[len("test://"):], MIMEType: "text/plain"},
			func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
				return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "content of " + req.Params.URI}}}, nil
			})
	}
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes text"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		count("echo")
		return text(in.Text), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "delete_repo", Description: "dangerous"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		count("delete_repo")
		return text("deleted " + in.Text), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "github_search", Description: "search"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		count("github_search")
		return text("found " + in.Text), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "progress", Description: "reports progress n times"}, func(ctx context.Context, req *mcp.CallToolRequest, in countIn) (*mcp.CallToolResult, any, error) {
		count("progress")
		tok := req.Params.GetProgressToken()
		for i := range in.N {
			if in.Delay > 0 {
				select {
				case <-ctx.Done():
					return nil, nil, ctx.Err()
				case <-time.After(time.Duration(in.Delay) * time.Millisecond):
				}
			}
			if tok != nil {
				if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i + 1), Total: float64(in.N)}); err != nil {
					return nil, nil, err
				}
			}
		}
		return text(fmt.Sprintf("done %d", in.N)), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "big", Description: "returns a large text"}, func(ctx context.Context, req *mcp.CallToolRequest, in sizeIn) (*mcp.CallToolResult, any, error) {
		count("big")
		return text(strings.Repeat("x", in.Bytes)), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "block", Description: "blocks until cancelled"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		count("block")
		u.mu.Lock()
		u.calls["block.started"]++
		u.mu.Unlock()
		<-ctx.Done()
		u.mu.Lock()
		u.calls["block.cancelled"]++
		u.mu.Unlock()
		return nil, nil, ctx.Err()
	})
	return s
}

// newUpstream starts a go-sdk server (stateful or stateless) on a free port.
func newUpstream(t testing.TB, stateless bool) *upstream {
	t.Helper()
	return newUpstreamWith(t, mcp.StreamableHTTPOptions{Stateless: stateless})
}

// newUpstreamWith starts a go-sdk server with opts on a free port.
func newUpstreamWith(t testing.TB, opts mcp.StreamableHTTPOptions) *upstream {
	t.Helper()
	u := &upstream{t: t, opts: opts, calls: map[string]int{}}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	u.reset()
	u.serve(ln)
	t.Cleanup(u.stop)
	return u
}

// reset replaces the MCP handler: the server "restarts" and forgets sessions.
func (u *upstream) reset() {
	opts := u.opts
	srv := newMCPServer(u)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &opts)
	u.mu.Lock()
	u.handler = h
	u.srvMCP = srv
	u.mu.Unlock()
}

func (u *upstream) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(u.ServeHTTP)}
	u.mu.Lock()
	u.srv = srv
	u.mu.Unlock()
	go srv.Serve(ln)
}

// stop closes the server (connections included): the upstream is down.
func (u *upstream) stop() {
	u.mu.Lock()
	srv := u.srv
	u.srv = nil
	u.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// start brings a stopped upstream back on the same address, with fresh sessions.
func (u *upstream) start() {
	u.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp4", u.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		u.t.Fatalf("restart upstream on %s: %v", u.addr, err)
	}
	u.reset()
	u.serve(ln)
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead { // the proxy's reachability probe
		u.mu.Lock()
		u.requests = append(u.requests, recorded{Method: r.Method, Header: r.Header.Clone()})
		u.mu.Unlock()
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	u.mu.Lock()
	u.requests = append(u.requests, recorded{Method: r.Method, Header: r.Header.Clone(), Body: body})
	h := u.handler
	u.mu.Unlock()
	if wr := u.wrap.Load(); wr != nil {
		h = (*wr)(h)
	}
	h.ServeHTTP(w, r)
}

// server is the current go-sdk server.
func (u *upstream) server() *mcp.Server {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.srvMCP
}

func (u *upstream) url() string { return "http://" + u.addr + "/mcp" }

func (u *upstream) callCount(tool string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[tool]
}

// recorded returns the MCP requests the upstream received (not the proxy's
// HEAD reachability probes).
func (u *upstream) recorded() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []recorded
	for _, r := range u.requests {
		if r.Method != http.MethodHead {
			out = append(out, r)
		}
	}
	return out
}

// startProxy starts a proxy for cfg (Upstream and Name defaulted) and stops
// it when the test ends.
func startProxy(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "testsrv"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

// connect opens a go-sdk client session to url.
func connect(t testing.TB, url string, opts *mcp.ClientOptions, proto string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "0.1"}, opts)
	var so *mcp.ClientSessionOptions
	if proto != "" {
		so = &mcp.ClientSessionOptions{ProtocolVersion: proto}
	}
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, MaxRetries: 3}, so)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func toolNames(res *mcp.ListToolsResult) []string {
	var out []string
	for _, tl := range res.Tools {
		out = append(out, tl.Name)
	}
	return out
}

func resultText(t testing.TB, res *mcp.CallToolResult) string {
	t.Helper()
	if len(res.Content) == 0 {
		t.Fatalf("empty tool result")
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content %T, want text", res.Content[0])
	}
	return tc.Text
}

// rawPost sends a raw POST to the proxy and returns status, headers, body.
func rawPost(t testing.TB, url string, hdr map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
