package proxymgr

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestHostAndOriginAttacks(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url(), AllowedOrigins: []string{"https://app.example.com"}})
	port := p.Addr()[len("127.0.0.1:"):]
	tests := []struct {
		name   string
		host   string
		origin string
		want   int
	}{
		{"loopback ip", "127.0.0.1:" + port, "", 200},
		{"localhost", "localhost:" + port, "", 200},
		{"ipv6 loopback", "[::1]:" + port, "", 200},
		{"rebinding name", "evil.example.com:" + port, "", 403},
		{"rebinding no port", "evil.example.com", "", 403},
		{"wrong port", "127.0.0.1:1", "", 403},
		{"missing port", "localhost", "", 403},
		{"loopback origin", "127.0.0.1:" + port, "http://localhost:6274", 200},
		{"allowed origin", "127.0.0.1:" + port, "https://app.example.com", 200},
		{"foreign origin", "127.0.0.1:" + port, "https://evil.example.com", 403},
		{"null origin", "127.0.0.1:" + port, "null", 403},
		{"lookalike origin", "127.0.0.1:" + port, "http://localhost.evil.com", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := len(up.recorded())
			code, hdr, body := rawPost(t, p.URL(), map[string]string{"Host": tc.host, "Origin": tc.origin}, initBody)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			if tc.want == 403 {
				if !strings.Contains(body, `"code":-32600`) || !strings.Contains(body, "forbidden") || hdr.Get("Content-Type") != "application/json" {
					t.Errorf("403 body %q is not a JSON-RPC error saying why", body)
				}
				if len(up.recorded()) != before {
					// Other subtests run in parallel: check no request with this host reached the upstream instead.
					for _, r := range up.recorded() {
						if r.Header.Get("Origin") == tc.origin && tc.origin != "" {
							t.Errorf("a forbidden request reached the upstream")
						}
					}
				}
			}
			if tc.origin != "" && tc.want == 200 && hdr.Get("Access-Control-Allow-Origin") != tc.origin {
				t.Errorf("allowed origin got no CORS header: %v", hdr)
			}
		})
	}
	// Go's client sets Host from the URL; the rebinding cases above use a raw Host header.
	for _, r := range up.recorded() {
		if r.Header.Get("Origin") != "" {
			t.Errorf("the client's Origin %q reached the upstream", r.Header.Get("Origin"))
		}
	}
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url(), LocalToken: "tok-1234567890"})
	req, _ := http.NewRequest(http.MethodOptions, p.URL(), nil)
	req.Header.Set("Origin", "http://localhost:6274")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type, mcp-session-id, authorization")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:6274" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "mcp-session-id") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	req.Header.Set("Origin", "https://evil.example.com")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("preflight from a foreign origin: %d", resp.StatusCode)
	}
}

func TestLocalToken(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	const token = "local-Tok3n-abcdef"
	p := startProxy(t, Config{Upstream: up.url(), LocalToken: token})
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + token + "x", token, "bearer  " + token} {
		code, _, body := rawPost(t, p.URL(), map[string]string{"Authorization": auth}, initBody)
		if code != http.StatusForbidden || !strings.Contains(body, "local access token") {
			t.Errorf("Authorization %q: %d %s; want 403 naming the local token", auth, code, body)
		}
	}
	if n := len(up.recorded()); n != 0 {
		t.Fatalf("%d unauthenticated requests reached the upstream", n)
	}
	// A real client with the token works, and the token never reaches the upstream.
	hc := &http.Client{Transport: headerRT{"Authorization", "Bearer " + token}}
	c := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil)
	cs, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{Endpoint: p.URL(), HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range up.recorded() {
		if strings.Contains(r.Header.Get("Authorization"), token) {
			t.Fatal("the local token reached the upstream")
		}
	}
}

type headerRT struct{ k, v string }

func (h headerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.k, h.v)
	return http.DefaultTransport.RoundTrip(r)
}

func TestCredentialsInjection(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	var calls int
	p := startProxy(t, Config{
		Upstream: up.url(),
		Headers:  map[string]string{"X-Tenant": "acme"},
		Credentials: func(ctx context.Context) (http.Header, error) {
			calls++
			return http.Header{"Authorization": {"Bearer server-secret-1"}, "x-api-key": {"k-123456"}}, nil
		},
	})
	hc := &http.Client{Transport: headerRT{"Authorization", "Bearer client-own-token"}}
	c := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil)
	cs, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{Endpoint: p.URL(), HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	reqs := up.recorded()
	if len(reqs) < 2 || calls < len(reqs)-1 {
		t.Fatalf("%d upstream requests, %d credential calls: credentials must be asked per request", len(reqs), calls)
	}
	for _, r := range reqs {
		if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer server-secret-1" {
			t.Errorf("upstream saw Authorization %q, want only the server's", got)
		}
		if r.Header.Get("X-Api-Key") != "k-123456" || r.Header.Get("X-Tenant") != "acme" {
			t.Errorf("upstream headers %v lack the injected ones", r.Header)
		}
	}
}

func TestNoCredential503(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url(), Credentials: func(context.Context) (http.Header, error) {
		return nil, errors.New("sign in to testsrv in Keyport (keyport login testsrv)")
	}})
	code, hdr, body := rawPost(t, p.URL(), nil, initBody)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"id":1`) || !strings.Contains(body, "keyport login testsrv") {
		t.Fatalf("no credential: %d %s", code, body)
	}
	if hdr.Get("Www-Authenticate") != "" {
		t.Fatal("WWW-Authenticate must never reach a local client")
	}
	if len(up.recorded()) != 0 {
		t.Fatal("a request without credentials reached the upstream")
	}
	// go-sdk clients treat 503 as transient and do not read its body (TypeScript
	// clients include the body in the error they show); they still fail cleanly.
	c := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil)
	if _, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{Endpoint: p.URL(), MaxRetries: -1}, nil); err == nil || !strings.Contains(err.Error(), "Service Unavailable") {
		t.Fatalf("client error %v", err)
	}
}

// TestUpstream401Becomes503: a refused credential must not reach the client
// as 401 (it would start its own OAuth flow against localhost).
func TestUpstream401Becomes503(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	wr := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="https://auth.example.com/.well-known/oauth-protected-resource"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		})
	}
	up.wrap.Store(&wr)
	rejected := 0
	p := startProxy(t, Config{Upstream: up.url(), CredentialsRejected: func(_ context.Context, _, sent http.Header) error {
		if sent.Get("Authorization") != "Bearer expired-token" {
			t.Errorf("CredentialsRejected got %q, want the header that was refused", sent.Get("Authorization"))
		}
		rejected++
		return nil
	},
		Credentials: func(context.Context) (http.Header, error) {
			return http.Header{"Authorization": {"Bearer expired-token"}}, nil
		}})
	code, hdr, body := rawPost(t, p.URL(), nil, initBody)
	if code != http.StatusServiceUnavailable || hdr.Get("Www-Authenticate") != "" || !strings.Contains(body, "refused the credentials") || !strings.Contains(body, `"id":1`) {
		t.Fatalf("upstream 401: %d %v %s", code, hdr, body)
	}
	if rejected != 1 {
		t.Fatalf("CredentialsRejected called %d times", rejected)
	}
	if strings.Contains(body, "expired-token") {
		t.Fatal("the credential leaked into the error")
	}
}

// TestUpstream403Hooks: a 403 goes to CredentialsForbidden; its error turns
// the answer into a 503 with its text, nil passes the 403 through.
func TestUpstream403Hooks(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	wr := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin"`)
			http.Error(w, "forbidden", http.StatusForbidden)
		})
	}
	up.wrap.Store(&wr)
	for _, stepUp := range []bool{true, false} {
		p := startProxy(t, Config{Upstream: up.url(),
			Credentials: func(context.Context) (http.Header, error) {
				return http.Header{"Authorization": {"Bearer small-token"}}, nil
			},
			CredentialsForbidden: func(_ context.Context, h, sent http.Header) error {
				if !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") || sent.Get("Authorization") != "Bearer small-token" {
					t.Errorf("CredentialsForbidden got %v / %v", h, sent)
				}
				if stepUp {
					return errors.New("sign in to x in Keyport (keyport login x)")
				}
				return nil
			}})
		code, _, body := rawPost(t, p.URL(), nil, initBody)
		if stepUp && (code != http.StatusServiceUnavailable || !strings.Contains(body, "sign in to x in Keyport")) {
			t.Errorf("step-up: %d %s", code, body)
		}
		if !stepUp && code != http.StatusForbidden {
			t.Errorf("pass-through: %d %s", code, body)
		}
	}
}

func TestTLSUpstreamWithCAFile(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(up.ServeHTTP))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted attempt logs handshake errors
	ts.StartTLS()
	t.Cleanup(ts.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := ts.Certificate()
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	// Without the CA: the certificate is not trusted, and the client is told so.
	bad := startProxy(t, Config{Upstream: ts.URL + "/mcp"})
	code, _, body := rawPost(t, bad.URL(), nil, initBody)
	if code != http.StatusOK || !strings.Contains(body, "-32603") || !strings.Contains(body, "testsrv unreachable: TLS certificate not trusted") {
		t.Fatalf("untrusted TLS: %d %s", code, body)
	}
	// With the CA file: works (and connections are reused: one TLS handshake for many requests).
	good := startProxy(t, Config{Upstream: ts.URL + "/mcp", CAFile: caFile})
	cs := connect(t, good.URL(), nil, "2025-11-25")
	for range 5 {
		if _, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "tls"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(Config{Name: "x", Upstream: ts.URL, CAFile: filepath.Join(t.TempDir(), "missing.pem")}); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Fatalf("missing CA file: %v", err)
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Upstream: "http://x"}, "name is empty"},
		{Config{Name: "a"}, "no upstream URL"},
		{Config{Name: "a", Upstream: "ftp://x/"}, "scheme must be https or http"},
		{Config{Name: "a", Upstream: "https://user:pw@x/"}, "store credentials in Keyport"},
		{Config{Name: "a", Upstream: "https:///mcp"}, "no host"},
		{Config{Name: "a", Upstream: "https://x/", Port: 70000}, "port 70000"},
		{Config{Name: "a", Upstream: "https://x/", Policy: ToolPolicy{Deny: []string{"^(x$"}}}, `deny pattern 1 "^(x$"`},
		{Config{Name: "a", Upstream: "https://x/", Headers: map[string]string{"Bad Name": "v"}}, "not a valid HTTP header name"},
		{Config{Name: "a", Upstream: "https://x/", Headers: map[string]string{"Mcp-Session-Id": "v"}}, "managed by the proxy"},
		{Config{Name: "a", Upstream: "https://x/", AllowedOrigins: []string{"app.example.com"}}, "allowed origin"},
		{Config{Name: "a", Upstream: "https://x/", Audit: AuditConfig{Params: "all"}}, "params mode"},
		{Config{Name: "a", Upstream: "https://x/", MaxBodyBytes: 10}, "too small"},
	}
	for _, tc := range tests {
		err := tc.cfg.Check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%+v) = %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
	c := Config{Name: "a", Upstream: "https://x.example.com/mcp?key=SECRET"}
	if err := c.Check(); err != nil || c.MaxBodyBytes != DefaultMaxBodyBytes || c.Logger == nil {
		t.Fatalf("defaults: %v %+v", err, c)
	}
	p, _ := New(c)
	if st := p.Status(); strings.Contains(st.Upstream, "SECRET") || st.State != StateStopped {
		t.Fatalf("status of a new proxy: %+v", st)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Name: "gh", Upstream: up.url(), LocalToken: "tok-abcdef"})
	resp, err := http.Get("http://" + p.Addr() + HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(HealthServerHeader) != "gh" || !strings.Contains(string(b), `"state":"running"`) {
		t.Fatalf("health: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	code, _, _ := rawPost(t, "http://"+p.Addr()+HealthPath, map[string]string{"Host": "evil.example.com:" + p.Addr()[len("127.0.0.1:"):]}, "{}")
	if code != http.StatusForbidden {
		t.Fatalf("health with a foreign Host: %d", code)
	}
	if n := len(up.recorded()); n != 0 {
		t.Fatalf("health reached the upstream (%d requests)", n)
	}
}
