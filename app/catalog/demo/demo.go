// Package demo is Keyport's built-in demo MCP server: an in-process go-sdk
// server on 127.0.0.1 that a new user can proxy and wire into a client
// within a minute, with no account anywhere.
//
// Its tools:
//
//   - echo: returns the text it is given;
//   - add: adds two numbers;
//   - slow: works for a few steps, sending a progress notification for
//     each (when the caller asked for progress), and honours cancellation;
//   - whoami: requires the demo's bearer token and says whether the request
//     carried it. Called directly it reports that no token came; called
//     through Keyport's proxy (which injects the token from the keychain)
//     it confirms the token arrived. The token itself is never echoed.
//
// The app shows the demo (as the catalog server "demo", auth bearer) when
// the catalog is empty and the user has not hidden it; see Visible.
package demo

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/catalog"
	"keyport/app/secrets"
)

// Name is the demo's catalog name.
const Name = "demo"

// Path is the MCP endpoint's path on the demo server.
const Path = "/mcp"

// Slow tool bounds.
const (
	maxSteps     = 60
	maxStepDelay = 5 * time.Second
)

// EchoArgs are echo's arguments.
type EchoArgs struct {
	Text string `json:"text" jsonschema:"the text to send back"`
}

// EchoResult is echo's structured result.
type EchoResult struct {
	Text string `json:"text"`
}

// AddArgs are add's arguments.
type AddArgs struct {
	A float64 `json:"a" jsonschema:"the first number"`
	B float64 `json:"b" jsonschema:"the second number"`
}

// AddResult is add's structured result.
type AddResult struct {
	Sum float64 `json:"sum"`
}

// SlowArgs are slow's arguments.
type SlowArgs struct {
	Steps   int `json:"steps,omitempty" jsonschema:"how many steps (1-60, default 5)"`
	DelayMS int `json:"delay_ms,omitempty" jsonschema:"milliseconds per step (0-5000, default 500)"`
}

// SlowResult is slow's structured result.
type SlowResult struct {
	Steps int `json:"steps"`
}

// WhoamiResult is whoami's structured result.
type WhoamiResult struct {
	// Authenticated is true when the request carried the demo's token.
	Authenticated bool `json:"authenticated"`
	// Token is "missing", "wrong" or "ok".
	Token string `json:"token"`
}

// NewServer returns the demo MCP server; token is the bearer token whoami
// expects.
func NewServer(token string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "keyport-demo", Title: "Keyport demo", Version: "1.0.0"}, &mcp.ServerOptions{
		Instructions: "Keyport's built-in demo server. Try echo, add, slow (progress) and whoami (needs the bearer token Keyport's proxy injects).",
	})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Returns the text you send."},
		func(ctx context.Context, req *mcp.CallToolRequest, in EchoArgs) (*mcp.CallToolResult, EchoResult, error) {
			return text(in.Text), EchoResult{Text: in.Text}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "add", Description: "Adds two numbers."},
		func(ctx context.Context, req *mcp.CallToolRequest, in AddArgs) (*mcp.CallToolResult, AddResult, error) {
			sum := in.A + in.B
			return text(fmt.Sprint(sum)), AddResult{Sum: sum}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "Works for a few steps, reporting progress after each (pass a progress token to see it)."},
		slow)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Says whether the request carried the demo's bearer token (Keyport's proxy adds it)."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, WhoamiResult, error) {
			return whoami(req, token)
		})
	return s
}

func slow(ctx context.Context, req *mcp.CallToolRequest, in SlowArgs) (*mcp.CallToolResult, SlowResult, error) {
	steps, delay := in.Steps, time.Duration(in.DelayMS)*time.Millisecond
	if steps == 0 {
		steps = 5
	}
	if in.DelayMS == 0 {
		delay = 500 * time.Millisecond
	}
	if steps < 1 || steps > maxSteps || delay < 0 || delay > maxStepDelay {
		return nil, SlowResult{}, fmt.Errorf("steps must be 1-%d and delay_ms 0-%d", maxSteps, maxStepDelay.Milliseconds())
	}
	token := req.Params.GetProgressToken()
	for i := 1; i <= steps; i++ {
		select {
		case <-ctx.Done():
			return nil, SlowResult{}, fmt.Errorf("cancelled after %d of %d steps", i-1, steps)
		case <-time.After(delay):
		}
		if token != nil {
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token, Progress: float64(i), Total: float64(steps),
				Message: fmt.Sprintf("step %d of %d", i, steps),
			})
			if err != nil && ctx.Err() == nil {
				return nil, SlowResult{}, fmt.Errorf("send progress: %w", err)
			}
		}
	}
	return text(fmt.Sprintf("done after %d steps", steps)), SlowResult{Steps: steps}, nil
}

func whoami(req *mcp.CallToolRequest, token string) (*mcp.CallToolResult, WhoamiResult, error) {
	var h http.Header
	if req.Extra != nil {
		h = req.Extra.Header
	}
	got, isBearer := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	switch {
	case !isBearer || got == "":
		r := text("No bearer token arrived. Turn on Keyport's proxy for \"demo\" and connect through it: the proxy adds the token from your OS keychain.")
		r.IsError = true
		return r, WhoamiResult{Token: "missing"}, nil
	case token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1:
		r := text("A bearer token arrived, but not the demo's. Reset it with: keyport secret rm demo bearer (Keyport creates a new one).")
		r.IsError = true
		return r, WhoamiResult{Token: "wrong"}, nil
	}
	return text("Authenticated: the demo's bearer token arrived (Keyport's proxy injected it from your OS keychain)."),
		WhoamiResult{Authenticated: true, Token: "ok"}, nil
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// Start serves the demo on a free port of 127.0.0.1 and returns its MCP
// endpoint URL and a stop function (idempotent; it ends open streams and
// waits for handlers until ctx ends). The server also stops when ctx ends.
func Start(ctx context.Context, token string) (url string, stop func(context.Context) error, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo server: listen on 127.0.0.1: %w", err)
	}
	server := NewServer(token)
	mux := http.NewServeMux()
	mux.Handle(Path, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	base, cancelBase := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var once sync.Once
	var stopErr error
	stop = func(sctx context.Context) error {
		once.Do(func() {
			cancelBase() // ends long-lived SSE streams
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close()
				stopErr = fmt.Errorf("demo server: stop: %w", err)
			}
			if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) && stopErr == nil {
				stopErr = fmt.Errorf("demo server: %w", err)
			}
		})
		return stopErr
	}
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = stop(sctx)
		case <-base.Done():
		}
	}()
	return "http://" + ln.Addr().String() + Path, stop, nil
}

// CatalogServer is the demo's catalog entry for the server at url.
func CatalogServer(url string) catalog.Server {
	s := catalog.Server{
		Name:        Name,
		Description: "Keyport's built-in demo: echo, add, slow (progress) and whoami (checks the bearer token the proxy injects). Hide it once you add your own servers.",
		URL:         url,
		Labels:      map[string]string{"builtin": "demo"},
		Auth:        catalog.Auth{Type: catalog.AuthBearer},
	}
	_ = s.Check() // fills defaults; the entry is valid by construction
	return s
}

// Visible reports whether the app lists the demo: only while the catalog
// is empty and the user has not hidden it.
func Visible(c *catalog.Catalog, hidden bool) bool { return c.Empty() && !hidden }

// EnsureToken returns the demo's bearer token from the keychain, creating
// a random one on first use.
func EnsureToken(store *secrets.Store) (string, error) {
	tok, err := store.Get(Name, secrets.KindBearer)
	if err == nil {
		return tok, nil
	}
	if !errors.Is(err, secrets.ErrNotFound) {
		return "", fmt.Errorf("demo token: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("demo token: %w", err)
	}
	tok = "kpdemo_" + base64.RawURLEncoding.EncodeToString(b)
	if err := store.Set(Name, secrets.KindBearer, tok); err != nil {
		return "", fmt.Errorf("demo token: %w", err)
	}
	return tok, nil
}
