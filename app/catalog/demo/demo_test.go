package demo

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/catalog"
	"keyport/app/internal/apptest"
	"keyport/app/secrets"
)

const testToken = "kpdemo_test-token-0123456789"

// bearer adds an Authorization header, as Keyport's proxy does.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func startDemo(t *testing.T) string {
	t.Helper()
	u, stop, err := Start(context.Background(), testToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return u
}

// connect opens a real go-sdk client session; token "" sends none.
func connect(t *testing.T, endpoint, token string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: http.DefaultTransport}
	if token != "" {
		hc.Transport = bearer{token, http.DefaultTransport}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "demo-test", Version: "1"}, opts)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t *testing.T, cs *mcp.ClientSession, params *mcp.CallToolParams) (*mcp.CallToolResult, string) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), params)
	if err != nil {
		t.Fatalf("call %s: %v", params.Name, err)
	}
	var texts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			texts = append(texts, tc.Text)
		}
	}
	return res, strings.Join(texts, "\n")
}

func TestStartListensOnLoopback(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(startDemo(t))
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "127.0.0.1" || u.Path != Path || u.Scheme != "http" {
		t.Fatalf("URL = %s, want http://127.0.0.1:PORT/mcp", u)
	}
}

func TestTools(t *testing.T) {
	t.Parallel()
	cs := connect(t, startDemo(t), testToken, nil)
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"add", "echo", "slow", "whoami"}) {
		t.Fatalf("tools = %q", names)
	}

	res, txt := call(t, cs, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "héllo ✓"}})
	if res.IsError || txt != "héllo ✓" {
		t.Fatalf("echo = %q (error %v)", txt, res.IsError)
	}
	res, txt = call(t, cs, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": 2, "b": 3.5}})
	if res.IsError || txt != "5.5" {
		t.Fatalf("add = %q", txt)
	}
	if sc, ok := res.StructuredContent.(map[string]any); !ok || sc["sum"] != 5.5 {
		t.Fatalf("add structured = %#v", res.StructuredContent)
	}
	// Bad arguments are a tool error, not a crash.
	res, _ = call(t, cs, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": "two"}})
	if !res.IsError {
		t.Fatal("add with a string argument succeeded")
	}
}

func TestSlowSendsProgress(t *testing.T) {
	t.Parallel()
	progress := make(chan mcp.ProgressNotificationParams, 10)
	cs := connect(t, startDemo(t), "", &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			progress <- *r.Params
		},
	})
	params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"steps": 3, "delay_ms": 1}}
	params.SetProgressToken("p-1")
	res, txt := call(t, cs, params)
	if res.IsError || txt != "done after 3 steps" {
		t.Fatalf("slow = %q", txt)
	}
	// Handlers run concurrently with the result: collect the three.
	var got []mcp.ProgressNotificationParams
	for len(got) < 3 {
		select {
		case p := <-progress:
			got = append(got, p)
		case <-time.After(20 * time.Second):
			t.Fatalf("got %d progress notifications, want 3: %+v", len(got), got)
		}
	}
	slices.SortFunc(got, func(a, b mcp.ProgressNotificationParams) int { return int(a.Progress - b.Progress) })
	for i, p := range got {
		if p.ProgressToken != "p-1" || p.Progress != float64(i+1) || p.Total != 3 || p.Message == "" {
			t.Errorf("notification %d = %+v", i, p)
		}
	}
	// Without a progress token: the same result, and no notification
	// (one would arrive before the result of the echo call that follows).
	if _, txt := call(t, cs, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"steps": 2, "delay_ms": 1}}); txt != "done after 2 steps" {
		t.Fatalf("slow without token = %q", txt)
	}
	call(t, cs, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}})
	select {
	case p := <-progress:
		t.Fatalf("progress without a token: %+v", p)
	default:
	}
	res, _ = call(t, cs, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"steps": 1000}})
	if !res.IsError {
		t.Fatal("slow accepted 1000 steps")
	}
}

func TestSlowHonoursCancellation(t *testing.T) {
	t.Parallel()
	cs := connect(t, startDemo(t), "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"steps": 60, "delay_ms": 5000}})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled call succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the cancelled call did not return")
	}
	// The session still works.
	if _, txt := call(t, cs, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "still here"}}); txt != "still here" {
		t.Fatalf("echo after cancel = %q", txt)
	}
}

func TestWhoami(t *testing.T) {
	t.Parallel()
	endpoint := startDemo(t)
	tests := []struct {
		name, token string
		isError     bool
		state       string
		text        string
	}{
		{"right token", testToken, false, "ok", "Authenticated: the demo's bearer token arrived"},
		{"no token", "", true, "missing", "No bearer token arrived. Turn on Keyport's proxy"},
		{"wrong token", "kpdemo_not-the-one", true, "wrong", "A bearer token arrived, but not the demo's."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, txt := call(t, connect(t, endpoint, tt.token, nil), &mcp.CallToolParams{Name: "whoami"})
			if res.IsError != tt.isError || !strings.HasPrefix(txt, tt.text) {
				t.Fatalf("whoami = %q (error %v)", txt, res.IsError)
			}
			sc, _ := res.StructuredContent.(map[string]any)
			if sc["token"] != tt.state || sc["authenticated"] != !tt.isError {
				t.Fatalf("structured = %#v", res.StructuredContent)
			}
			if strings.Contains(txt, testToken) || (tt.token != "" && strings.Contains(txt, tt.token)) {
				t.Fatal("whoami echoed a token")
			}
		})
	}
}

// TestRejectsForeignHost: go-sdk's DNS-rebinding protection is on.
func TestRejectsForeignHost(t *testing.T) {
	t.Parallel()
	endpoint := startDemo(t)
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Host = "evil.example:80"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status = %d, want 403", resp.StatusCode)
	}
}

func TestStopAndContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	endpoint, stop, err := Start(ctx, testToken)
	if err != nil {
		t.Fatal(err)
	}
	cs := connect(t, endpoint, "", nil) // holds an open SSE stream
	_ = cs
	cancel() // ending ctx stops the server
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := stop(sctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := stop(sctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	_, err = fresh.Post(endpoint, "application/json", strings.NewReader("{}"))
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("after stop: %v, want connection refused", err)
	}
}

func TestCatalogEntryAndVisibility(t *testing.T) {
	t.Parallel()
	s := CatalogServer("http://127.0.0.1:4321/mcp")
	if err := s.Check(); err != nil {
		t.Fatalf("the demo entry is invalid: %v", err)
	}
	if s.Name != "demo" || s.Auth.Type != catalog.AuthBearer || !slices.Equal(s.SecretKinds(), []string{"bearer"}) {
		t.Fatalf("entry = %+v", s)
	}
	empty := &catalog.Catalog{}
	full := &catalog.Catalog{Servers: []catalog.Server{s}}
	if !Visible(empty, false) || Visible(empty, true) || Visible(full, false) || !Visible(nil, false) {
		t.Fatal("Visible: shown only for an empty catalog that the user did not hide")
	}
}

func TestEnsureToken(t *testing.T) {
	t.Parallel()
	kc := &apptest.MemKeychain{}
	store := secrets.New(secrets.Options{Backend: kc, Service: "keyport-test"})
	tok, err := EnsureToken(store)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "kpdemo_") || len(tok) < 40 {
		t.Fatalf("token %q is too weak", tok)
	}
	if v, _ := kc.Get("keyport-test", "demo/bearer"); v != tok {
		t.Fatal("the token is not in the keychain under demo/bearer")
	}
	again, err := EnsureToken(store)
	if err != nil || again != tok {
		t.Fatalf("second EnsureToken = %q, %v; want the same token", again, err)
	}
	// A broken keychain is an error, never a token that lives nowhere.
	broken := secrets.New(secrets.Options{Backend: failing{}, Service: "keyport-test"})
	if _, err := EnsureToken(broken); !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("EnsureToken on a broken keychain: %v", err)
	}
}

type failing struct{}

func (failing) Set(string, string, string) error   { return errors.New("dbus: no service") }
func (failing) Get(string, string) (string, error) { return "", errors.New("dbus: no service") }
func (failing) Delete(string, string) error        { return errors.New("dbus: no service") }
