package oauth

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/oauth/oauthtest"
)

// quietLogger discards logs unless -v.
func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// env is one test's servers, keychain and browser.
type env struct {
	as      *oauthtest.Server
	mcp     *oauthtest.MCP
	store   TokenStore
	browser *oauthtest.Browser
	lockDir string
}

func newEnv(t *testing.T, asOpts oauthtest.Options, mcpOpts oauthtest.MCPOptions) *env {
	t.Helper()
	as := oauthtest.New(t, asOpts)
	return &env{
		as:      as,
		mcp:     oauthtest.NewMCP(t, as, mcpOpts),
		store:   NewMemoryStore(),
		browser: oauthtest.NewBrowser(),
		lockDir: t.TempDir(),
	}
}

func (e *env) loginConfig(t *testing.T) LoginConfig {
	return LoginConfig{
		Server:      "demo",
		ResourceURL: e.mcp.Endpoint,
		OpenBrowser: e.browser.Open,
		Store:       e.store,
		Logger:      quietLogger(t),
		LockDir:     e.lockDir,
		Timeout:     20 * time.Second,
	}
}

func (e *env) credentials(t *testing.T, mod func(*CredentialsConfig)) *Credentials {
	t.Helper()
	cfg := CredentialsConfig{
		Server:      "demo",
		ResourceURL: e.mcp.Endpoint,
		Store:       e.store,
		LockDir:     e.lockDir,
		Logger:      quietLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewCredentials(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// credTransport injects the Credentials' header, as proxymgr does.
type credTransport struct {
	c    *Credentials
	base http.RoundTripper
}

func (t credTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h, err := t.c.Header(r.Context())
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", h.Get("Authorization"))
	return t.base.RoundTrip(r)
}

// callEcho connects a real go-sdk client through c and calls the echo tool.
func callEcho(ctx context.Context, endpoint string, c *Credentials) (*mcp.CallToolResult, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             endpoint,
		HTTPClient:           &http.Client{Transport: credTransport{c: c, base: http.DefaultTransport}},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		return nil, err
	}
	defer session.Close()
	return session.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
}
