// Package apptest holds test helpers shared by app and app/cli tests: an
// in-memory keychain, a real go-sdk upstream that requires a bearer token,
// a client helper and a scan for leaked secrets.
package apptest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/zalando/go-keyring"

	"keyport/app/secrets"
)

// MemKeychain is an in-memory secrets.Backend for tests that do not run
// under scripts/session.sh. Tests prefer the real Secret Service when it
// is there (see testKeychain).
type MemKeychain struct {
	mu sync.Mutex
	m  map[string]string
}

func (k *MemKeychain) Set(service, user, v string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]string{}
	}
	k.m[service+"\x00"+user] = v
	return nil
}

func (k *MemKeychain) Get(service, user string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[service+"\x00"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (k *MemKeychain) Delete(service, user string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[service+"\x00"+user]; !ok {
		return keyring.ErrNotFound
	}
	delete(k.m, service+"\x00"+user)
	return nil
}

// Keychain returns the real OS keychain under scripts/session.sh (with
// a service name of the test's own), else an in-memory one.
func Keychain(t *testing.T) (secrets.Backend, string) {
	t.Helper()
	service := "keyport-test-" + strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	if os.Getenv("KEYPORT_TEST_KEYRING") == "1" {
		return secrets.OSKeychain(), service
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI runs app tests under scripts/session.sh (make test), against the real keychain")
	}
	return &MemKeychain{}, service
}

// Upstream is a real go-sdk MCP server that requires a bearer token and
// records the Authorization header of every MCP request (HEAD probes aside).
type Upstream struct {
	URL   string
	token string
	mu    sync.Mutex
	auths []string
	calls []string
}

func NewUpstream(t *testing.T, token string) *Upstream {
	t.Helper()
	return NewUpstreamWith(t, token, "search", "delete_all")
}

// NewUpstreamWith is NewUpstream with tools of these names (each answers
// "NAME:text").
func NewUpstreamWith(t *testing.T, token string, tools ...string) *Upstream {
	t.Helper()
	u := &Upstream{token: token}
	srv := mcp.NewServer(&mcp.Implementation{Name: "acme-upstream", Version: "1.0.0"}, nil)
	type echoIn struct {
		Text string `json:"text"`
	}
	for _, name := range tools {
		mcp.AddTool(srv, &mcp.Tool{Name: name, Description: name + " things"},
			func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
				u.mu.Lock()
				u.calls = append(u.calls, name)
				u.mu.Unlock()
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + ":" + in.Text}}}, nil, nil
			})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("Authorization")
		if r.Method != http.MethodHead { // a proxy's reachability probe carries no credential
			u.mu.Lock()
			u.auths = append(u.auths, got)
			u.mu.Unlock()
		}
		if got != "Bearer "+u.token {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	u.URL = ts.URL + "/mcp"
	return u
}

func (u *Upstream) SawOnly(auth string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.auths) == 0 {
		return false
	}
	for _, a := range u.auths {
		if a != auth {
			return false
		}
	}
	return true
}

func (u *Upstream) Called() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.calls...)
}

// Connect opens a go-sdk client session to a local proxy URL.
func Connect(t *testing.T, url string) *mcp.ClientSession {
	t.Helper()
	s, _ := ConnectRecording(t, url)
	return s
}

// ConnectRecording opens a go-sdk client session to a local proxy URL and
// keeps every byte the client reads (see Leak).
func ConnectRecording(t *testing.T, url string) (*mcp.ClientSession, *Recorder) {
	t.Helper()
	rec := &Recorder{}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, nil)
	s, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: rec}}, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

func ToolNames(t *testing.T, s *mcp.ClientSession) []string {
	t.Helper()
	res, err := s.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// ScanForSecret fails the test if secret appears in any file under roots.
func ScanForSecret(t *testing.T, secret string, roots ...string) {
	t.Helper()
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err == nil && strings.Contains(string(b), secret) {
				t.Errorf("secret found in %s", p)
			}
			return nil
		})
	}
}

// Auths are the Authorization headers the upstream saw, in order.
func (u *Upstream) Auths() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.auths...)
}

// TryToolNames connects to url and lists its tools, returning an error
// instead of failing (for polling while a proxy restarts).
func TryToolNames(url string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, nil)
	s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	res, err := s.ListTools(ctx, nil)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names, nil
}
