package oauth

import (
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func sleepBriefly() { time.Sleep(10 * time.Millisecond) }

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseChallenge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers []string
		want    Challenge
		wantErr string
	}{
		{name: "none", want: Challenge{}},
		{name: "metadata and scope", headers: []string{`Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource", scope="files:read files:write"`},
			want: Challenge{ResourceMetadata: "https://mcp.example.com/.well-known/oauth-protected-resource", Scopes: []string{"files:read", "files:write"}}},
		{name: "insufficient scope", headers: []string{`Bearer error="insufficient_scope", scope="a b", error_description="need b"`},
			want: Challenge{Error: "insufficient_scope", Scopes: []string{"a", "b"}, ErrorDescription: "need b"}},
		{name: "bearer after basic", headers: []string{`Basic realm="x", Bearer scope="s"`},
			want: Challenge{Scopes: []string{"s"}}},
		{name: "two headers", headers: []string{`DPoP algs="ES256"`, `Bearer error=invalid_token`},
			want: Challenge{Error: "invalid_token"}},
		{name: "bare scheme", headers: []string{`Bearer`}, want: Challenge{}},
		{name: "unterminated quote", headers: []string{`Bearer scope="a`}, wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for _, v := range tt.headers {
				h.Add("WWW-Authenticate", v)
			}
			got, err := ParseChallenge(h)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ResourceMetadata != tt.want.ResourceMetadata || got.Error != tt.want.Error ||
				got.ErrorDescription != tt.want.ErrorDescription || !slices.Equal(got.Scopes, tt.want.Scopes) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseTokenResponse(t *testing.T) {
	t.Parallel()
	const ep = "https://as.example/token"
	tests := []struct {
		name    string
		status  int
		ctype   string
		body    string
		want    tokenResponse
		wantErr string
		grant   bool // the error rejects the grant for good
	}{
		{name: "json", status: 200, ctype: "application/json", body: `{"access_token":"A","token_type":"Bearer","expires_in":3600,"refresh_token":"R","scope":"a b"}`,
			want: tokenResponse{AccessToken: "A", TokenType: "Bearer", ExpiresIn: 3600, RefreshToken: "R", Scope: "a b"}},
		{name: "lowercase bearer, string expiry", status: 200, ctype: "application/json; charset=utf-8", body: `{"access_token":"A","token_type":"bearer","expires_in":"60"}`,
			want: tokenResponse{AccessToken: "A", TokenType: "bearer", ExpiresIn: 60}},
		{name: "form encoded", status: 200, ctype: "application/x-www-form-urlencoded", body: `access_token=A&token_type=bearer&scope=repo`,
			want: tokenResponse{AccessToken: "A", TokenType: "bearer", Scope: "repo"}},
		{name: "huge expiry capped", status: 200, ctype: "application/json", body: `{"access_token":"A","expires_in":1e300}`,
			want: tokenResponse{AccessToken: "A", ExpiresIn: maxLifetime}},
		{name: "invalid grant", status: 400, ctype: "application/json", body: `{"error":"invalid_grant","error_description":"expired"}`,
			wantErr: ep + " answered 400 invalid_grant (expired)", grant: true},
		{name: "server error", status: 503, ctype: "text/html", body: `<html>down</html>`, wantErr: "answered 503"},
		{name: "error in 200", status: 200, ctype: "application/json", body: `{"error":"invalid_client"}`, wantErr: "invalid_client", grant: true},
		{name: "no access token", status: 200, ctype: "application/json", body: `{"token_type":"Bearer"}`, wantErr: "without an access_token"},
		{name: "dpop", status: 200, ctype: "application/json", body: `{"access_token":"SECRET","token_type":"DPoP"}`, wantErr: `"DPoP" token`},
		{name: "negative expiry", status: 200, ctype: "application/json", body: `{"access_token":"SECRET","expires_in":-5}`, wantErr: "invalid expires_in"},
		{name: "not json", status: 200, ctype: "application/json", body: `SECRET`, wantErr: "unreadable body"},
		{name: "description sanitized", status: 400, ctype: "application/json", body: `{"error":"invalid_request","error_description":"bad\u0000\nthing"}`,
			wantErr: "(bad  thing)", grant: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseTokenResponse(ep, tt.status, tt.ctype, []byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("error %q quotes the body", err)
				}
				var te *TokenError
				if isTE := errors.As(err, &te); tt.grant != (isTE && te.rejectsGrant()) {
					t.Errorf("rejectsGrant = %v, want %v", isTE && te.rejectsGrant(), tt.grant)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestResourceCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		resource, server string
		want             bool
	}{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp", true},
		{"https://mcp.example.com", "https://mcp.example.com/mcp", true},
		{"https://mcp.example.com/", "https://mcp.example.com/mcp", true},
		{"https://mcp.example.com/mcp/", "https://mcp.example.com/mcp", true},
		{"HTTPS://MCP.Example.com/mcp", "https://mcp.example.com/mcp", true},
		{"https://mcp.example.com:443/mcp", "https://mcp.example.com/mcp", true},
		{"https://mcp.example.com/public", "https://mcp.example.com/public/mcp", true},
		{"https://mcp.example.com/pub", "https://mcp.example.com/public/mcp", false},
		{"https://mcp.example.com/other", "https://mcp.example.com/mcp", false},
		{"https://evil.example.com/mcp", "https://mcp.example.com/mcp", false},
		{"http://mcp.example.com/mcp", "https://mcp.example.com/mcp", false},
		{"https://mcp.example.com:8443/mcp", "https://mcp.example.com/mcp", false},
		{"https://mcp.example.com/mcp#frag", "https://mcp.example.com/mcp", false},
		{"https://mcp.example.com/mcp?t=1", "https://mcp.example.com/mcp", false},
		{"https://user@mcp.example.com/mcp", "https://mcp.example.com/mcp", false},
		{"mcp.example.com", "https://mcp.example.com/mcp", false},
		{"", "https://mcp.example.com/mcp", false},
	}
	for _, tt := range tests {
		if got := resourceCovers(tt.resource, tt.server); got != tt.want {
			t.Errorf("resourceCovers(%q, %q) = %v, want %v", tt.resource, tt.server, got, tt.want)
		}
	}
}

func TestPRMCandidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		challenge, server string
		want              []string
	}{
		{"", "https://example.com/public/mcp", []string{
			"https://example.com/.well-known/oauth-protected-resource/public/mcp",
			"https://example.com/.well-known/oauth-protected-resource"}},
		{"https://example.com/prm", "https://example.com/", []string{
			"https://example.com/prm", "https://example.com/.well-known/oauth-protected-resource"}},
		{"", "https://example.com", []string{"https://example.com/.well-known/oauth-protected-resource"}},
	}
	for _, tt := range tests {
		if got := prmCandidates(tt.challenge, tt.server); !slices.Equal(got, tt.want) {
			t.Errorf("prmCandidates(%q, %q) = %q, want %q", tt.challenge, tt.server, got, tt.want)
		}
	}
}

func TestCheckIssuer(t *testing.T) {
	t.Parallel()
	const iss = "https://as.example"
	tests := []struct {
		query      string
		advertised bool
		wantErr    bool
	}{
		{"iss=https%3A%2F%2Fas.example", true, false},
		{"", true, true},
		{"", false, false},
		{"iss=https%3A%2F%2Fas.example", false, false},
		{"iss=https%3A%2F%2Fas.example%2F", true, true}, // no normalization
		{"iss=https%3A%2F%2Fevil.example", false, true},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		if err := checkIssuer(q, iss, tt.advertised); (err != nil) != tt.wantErr {
			t.Errorf("checkIssuer(%q, advertised=%v) = %v, want error %v", tt.query, tt.advertised, err, tt.wantErr)
		}
	}
}

func TestSecretAuthMethod(t *testing.T) {
	t.Parallel()
	tests := []struct {
		secret    string
		supported []string
		want      string
	}{
		{"", []string{"client_secret_basic"}, "none"},
		{"s", nil, "client_secret_basic"},
		{"s", []string{"client_secret_post", "client_secret_basic"}, "client_secret_basic"},
		{"s", []string{"client_secret_post"}, "client_secret_post"},
		{"s", []string{"private_key_jwt"}, "client_secret_basic"},
	}
	for _, tt := range tests {
		if got := secretAuthMethod(tt.secret, tt.supported); got != tt.want {
			t.Errorf("secretAuthMethod(%q, %q) = %q, want %q", tt.secret, tt.supported, got, tt.want)
		}
	}
}

func TestPKCE(t *testing.T) {
	t.Parallel()
	v1, c1 := newPKCE()
	v2, _ := newPKCE()
	if len(v1) != 43 || len(c1) != 43 || v1 == v2 {
		t.Errorf("verifier %d chars, challenge %d chars, distinct %v; want 43, 43, true", len(v1), len(c1), v1 != v2)
	}
	// RFC 7636 appendix B.
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	if _, c := pkceChallenge(verifier); c != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Errorf("S256(%s) = %s", verifier, c)
	}
}

func TestLockFileName(t *testing.T) {
	t.Parallel()
	a, b := lockFileName("my server/1"), lockFileName("my_server_1")
	if a == b || strings.ContainsAny(a, "/ ") || !strings.HasSuffix(a, ".lock") {
		t.Errorf("lock names %q and %q must differ and be plain file names", a, b)
	}
	if long := lockFileName(strings.Repeat("x", 500)); len(long) > 100 {
		t.Errorf("lock name of a long server name is %d bytes", len(long))
	}
}

func TestUnionScopes(t *testing.T) {
	t.Parallel()
	if got := unionScopes([]string{"b", "a", ""}, []string{"a", "c", "b ", "c"}); !slices.Equal(got, []string{"b", "a", "c"}) {
		t.Errorf("unionScopes = %q", got)
	}
}

func TestBrowserOpener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := filepath.Join(dir, "browser.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" >> "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		browser string
		want    string
	}{
		{script, "https://as.example/authorize?x=1\n"},
		{script + " --new-window %s", "--new-window\nhttps://as.example/authorize?x=1\n"},
		{"/nonexistent/browser:" + script, "https://as.example/authorize?x=1\n"},
	}
	for _, tt := range tests {
		os.Remove(log)
		open := BrowserOpener(func(k string) string {
			if k == "BROWSER" {
				return tt.browser
			}
			return ""
		})
		if err := open("https://as.example/authorize?x=1"); err != nil {
			t.Fatalf("BROWSER=%q: %v", tt.browser, err)
		}
		var got []byte
		for range 200 {
			if got, _ = os.ReadFile(log); len(got) > 0 {
				break
			}
			sleepBriefly()
		}
		if string(got) != tt.want {
			t.Errorf("BROWSER=%q ran with %q, want %q", tt.browser, got, tt.want)
		}
	}
	open := BrowserOpener(func(string) string { return "/nonexistent/browser" })
	if err := open("https://x"); err == nil || !strings.Contains(err.Error(), "BROWSER") {
		t.Errorf("missing browser: %v, want an error naming BROWSER", err)
	}
}

func TestPagesGolden(t *testing.T) {
	t.Parallel()
	for name, outcome := range map[string]error{
		"page-success.golden": nil,
		"page-failure.golden": errors.New(`the authorization server of demo refused the sign-in: access_denied (<script>alert(1)</script>)`),
	} {
		rec := httptest.NewRecorder()
		writePage(rec, 200, "demo", outcome)
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, rec.Body.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run Golden -update)", err)
		}
		if got := rec.Body.String(); got != string(want) {
			t.Errorf("%s differs:\n%s", name, got)
		}
		if strings.Contains(rec.Body.String(), "<script>") {
			t.Errorf("%s: the error text is not escaped", name)
		}
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	got := sanitize("a\x00b\x1b[31mc"+strings.Repeat("é", 300), 10)
	if !utf8.ValidString(got) || strings.ContainsAny(got, "\x00\x1b") || utf8.RuneCountInString(got) > 11 {
		t.Errorf("sanitize = %q", got)
	}
}
