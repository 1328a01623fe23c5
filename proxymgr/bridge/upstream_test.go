package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// upstreamOptions configure a test MCP server.
type upstreamOptions struct {
	stateless    bool   // StreamableHTTPOptions.Stateless (needed for 2026-07-28)
	jsonResponse bool   // answer with application/json instead of event streams
	version      string // serverInfo.version; "" means "1.0.0"
	eventStore   bool   // resumable streams (Last-Event-ID)
}

// upstream is a real go-sdk MCP server over streamable HTTP on a fixed
// loopback address, so it can be stopped and started again (a restart).
type upstream struct {
	t    *testing.T
	opts upstreamOptions
	addr string

	mu       sync.Mutex
	srv      *http.Server
	server   *mcp.Server
	requests []recorded // every HTTP request, in order
	// cancelled receives the name of a tool whose context was cancelled.
	cancelled chan string
	// started receives the name of a slow tool when it starts.
	started chan string
	// hungUp receives the Mcp-Name of a POST whose client closed the
	// connection before the response was complete.
	hungUp chan string
	// subscribed collects the URIs clients subscribed to.
	subscribed []string
	// releaseSlow, when closed, lets slow tools finish.
	releaseSlow chan struct{}
}

// recorded is one HTTP request the upstream received.
type recorded struct {
	method  string
	header  http.Header
	session string
}

func startUpstream(t *testing.T, opts upstreamOptions) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{t: t, opts: opts, addr: ln.Addr().String(),
		cancelled: make(chan string, 16), started: make(chan string, 16), hungUp: make(chan string, 16), releaseSlow: make(chan struct{})}
	u.serve(ln)
	t.Cleanup(u.stop)
	return u
}

func (u *upstream) url() string { return "http://" + u.addr + "/mcp" }

// serve starts a fresh MCP server (no sessions) on ln.
func (u *upstream) serve(ln net.Listener) {
	server := u.newServer()
	var store mcp.EventStore
	if u.opts.eventStore {
		store = mcp.NewMemoryEventStore(nil)
	}
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: u.opts.stateless, JSONResponse: u.opts.jsonResponse, EventStore: store})
	mux := http.NewServeMux()
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.requests = append(u.requests, recorded{r.Method, r.Header.Clone(), r.Header.Get("Mcp-Session-Id")})
		u.mu.Unlock()
		served := make(chan struct{})
		defer close(served)
		if name := r.Header.Get("Mcp-Name"); name != "" {
			go func() {
				select {
				case <-r.Context().Done():
					select {
					case <-served: // the context ends after every response
					default:
						u.hungUp <- name
					}
				case <-served:
				}
			}()
		}
		handler.ServeHTTP(w, r)
	}))
	srv := &http.Server{Handler: mux}
	u.mu.Lock()
	u.srv, u.server = srv, server
	u.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop shuts the server down, dropping every connection (like a crash).
func (u *upstream) stop() {
	u.mu.Lock()
	srv := u.srv
	u.srv = nil
	u.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// start serves again on the same address with a new server (no sessions
// survive, as after a process restart).
func (u *upstream) start() {
	u.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", u.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		u.t.Fatalf("restart upstream on %s: %v", u.addr, err)
	}
	u.serve(ln)
}

func (u *upstream) restart(version string) {
	u.stop()
	u.mu.Lock()
	u.opts.version = version
	u.mu.Unlock()
	u.start()
}

func (u *upstream) mcpServer() *mcp.Server {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.server
}

// seen returns the recorded requests with the given HTTP method.
func (u *upstream) seen(method string) []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []recorded
	for _, r := range u.requests {
		if r.method == method {
			out = append(out, r)
		}
	}
	return out
}

// postsFor returns the headers of the POSTs carrying the JSON-RPC method.
func (u *upstream) postsFor(method string) []http.Header {
	var out []http.Header
	for _, r := range u.seen(http.MethodPost) {
		if r.header.Get("Mcp-Method") == method {
			out = append(out, r.header)
		}
	}
	return out
}

type echoArgs struct {
	Text string `json:"text"`
}

type regionArgs struct {
	Region string `json:"region"`
	Query  string `json:"query"`
}

func textResult(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func (u *upstream) newServer() *mcp.Server {
	version := u.opts.version
	if version == "" {
		version = "1.0.0"
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: version}, &mcp.ServerOptions{
		SubscribeHandler: func(_ context.Context, req *mcp.SubscribeRequest) error {
			u.mu.Lock()
			u.subscribed = append(u.subscribed, req.Params.URI)
			u.mu.Unlock()
			return nil
		},
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
		Capabilities: &mcp.ServerCapabilities{
			Tools:     &mcp.ToolCapabilities{ListChanged: true},
			Logging:   &mcp.LoggingCapabilities{},
			Resources: &mcp.ResourceCapabilities{Subscribe: true, ListChanged: true},
			Prompts:   &mcp.PromptCapabilities{ListChanged: true},
		},
	})
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "echoes text"},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return textResult("echo: " + in.Text), nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "progress", Description: "reports progress three times"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			token := req.Params.GetProgressToken()
			for i := range 3 {
				if token != nil {
					if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
						ProgressToken: token, Progress: float64(i + 1), Total: 3, Message: fmt.Sprintf("step %d", i+1),
					}); err != nil {
						return nil, nil, err
					}
				}
			}
			return textResult("done"), nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "slow", Description: "waits until cancelled or released"},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			u.started <- "slow"
			select {
			case <-ctx.Done():
				u.cancelled <- "slow"
				return nil, nil, ctx.Err()
			case <-u.releaseSlow:
				return textResult("released"), nil, nil
			case <-time.After(30 * time.Second):
				return textResult("timed out"), nil, nil
			}
		})
	mcp.AddTool(server, &mcp.Tool{Name: "log", Description: "logs at every level"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			for _, level := range []mcp.LoggingLevel{"debug", "info", "warning", "error"} {
				if err := req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: level, Logger: "upstream", Data: "at " + string(level)}); err != nil {
					return nil, nil, err
				}
			}
			return textResult("logged"), nil, nil
		})
	if !u.opts.stateless {
		mcp.AddTool(server, &mcp.Tool{Name: "sample", Description: "asks the client's model"},
			func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
				res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
					MaxTokens: 10,
					Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello?"}}},
				})
				if err != nil {
					return nil, nil, err
				}
				return textResult("model said: " + res.Content.(*mcp.TextContent).Text), nil, nil
			})
		mcp.AddTool(server, &mcp.Tool{Name: "elicit", Description: "asks the user"},
			func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
				res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
					Message: "your name?",
					RequestedSchema: map[string]any{"type": "object",
						"properties": map[string]any{"name": map[string]any{"type": "string"}}},
				})
				if err != nil {
					return nil, nil, err
				}
				return textResult(fmt.Sprintf("%s: %v", res.Action, res.Content["name"])), nil, nil
			})
		mcp.AddTool(server, &mcp.Tool{Name: "roots", Description: "lists the client's roots"},
			func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
				res, err := req.Session.ListRoots(ctx, nil)
				if err != nil {
					return nil, nil, err
				}
				var uris []string
				for _, r := range res.Roots {
					uris = append(uris, r.URI)
				}
				return textResult(strings.Join(uris, ",")), nil, nil
			})
	}
	// A tool whose region argument is mirrored into Mcp-Param-Region
	// (SEP-2243, 2026-07-28).
	server.AddTool(&mcp.Tool{Name: "regional", Description: "x-mcp-header", InputSchema: map[string]any{
		"type": "object",
		"properties": map[string]any{
			"region": map[string]any{"type": "string", "x-mcp-header": "Region"},
			"query":  map[string]any{"type": "string"},
		},
	}}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return textResult("regional ok"), nil
	})
	// A tool that closes its response stream before answering (SEP-1699),
	// so the client must resume it with Last-Event-ID after the retry delay.
	mcp.AddTool(server, &mcp.Tool{Name: "interrupt", Description: "drops its stream, then answers"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			if req.Extra == nil || req.Extra.CloseSSEStream == nil {
				return textResult("no stream to close"), nil, nil
			}
			req.Extra.CloseSSEStream(mcp.CloseSSEStreamArgs{RetryAfter: 50 * time.Millisecond})
			time.Sleep(100 * time.Millisecond)
			return textResult("answered after the break"), nil, nil
		})
	server.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "who"}}},
		func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{
				{Role: "user", Content: &mcp.TextContent{Text: "hello " + req.Params.Arguments["who"]}},
			}}, nil
		})
	server.AddResource(&mcp.Resource{URI: "file:///notes.txt", Name: "notes", MIMEType: "text/plain"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{
				{URI: req.Params.URI, MIMEType: "text/plain", Text: "the notes"},
			}}, nil
		})
	return server
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receive waits for a value on ch.
func receive[T any](t *testing.T, what string, ch <-chan T, d time.Duration) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

var errNoText = errors.New("no text content")

// resultText returns the text of a tool result.
func resultText(res *mcp.CallToolResult) (string, error) {
	if res == nil || len(res.Content) == 0 {
		return "", errNoText
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		return "", errNoText
	}
	return tc.Text, nil
}
