package secrets

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"keyport/proxymgr/audit"
)

func TestRedactPatterns(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Authorization: Bearer abc.def-ghi", "Authorization: [REDACTED]"},
		{"authorization=Basic dXNlcjpwYXNz", "authorization=[REDACTED]"},
		{`{"Authorization":"token ghp_x1","Accept":"*/*"}`, `{"Authorization":"[REDACTED]","Accept":"*/*"}`},
		{"map[Accept:[*/*] Authorization:[Bearer xyz123]]", "map[Accept:[*/*] Authorization:[[REDACTED]]]"},
		{"Proxy-Authorization: Basic Zm9vOmJhcg==\r\nHost: x", "Proxy-Authorization: [REDACTED]\r\nHost: x"},
		{"upstream said: invalid bearer eyJhbGciOi.J9.sig", "upstream said: invalid bearer [REDACTED]"},
		{`{"access_token":"at-1","token_type":"Bearer"}`, `{"access_token":"[REDACTED]","token_type":"Bearer"}`},
		{"code=abc&client_secret=s3&state=q", "code=abc&client_secret=[REDACTED]&state=q"},
		{"X-API-Key: k-123", "X-API-Key: [REDACTED]"},
		{"api_key=k-123 other=1", "api_key=[REDACTED] other=1"},
		{`password: "hunter22"`, `password: "[REDACTED]"`},
		// Nothing secret: unchanged.
		{"tools/call echo {\"text\":\"hello\"}", "tools/call echo {\"text\":\"hello\"}"},
		{"the bearer of bad news", "the bearer of bad news"},
		// Words after "bearer" in a sentence are not credentials.
		{"no bearer credential for nocred in the OS keychain", "no bearer credential for nocred in the OS keychain"},
		{"the Bearer token expired.", "the Bearer token expired."},
		// Already redacted text stays as it is (it became "[REDACTED]]").
		{`{"password":"[REDACTED]","access_token":"[REDACTED]"}`, `{"password":"[REDACTED]","access_token":"[REDACTED]"}`},
		{`{"Authorization":"[REDACTED]"} Authorization: [REDACTED]`, `{"Authorization":"[REDACTED]"} Authorization: [REDACTED]`},
		{"password: [REDACTED] map[Authorization:[[REDACTED]]]", "password: [REDACTED] map[Authorization:[[REDACTED]]]"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactorKnownValues(t *testing.T) {
	t.Parallel()
	r := NewRedactor()
	r.Add("tok-abc", "tok-abcdef", "a\"b\\c-secret", "p@ss w/rd", "abc") // "abc" is too short to register
	tests := []struct{ in, want string }{
		{"got tok-abc", "got [REDACTED]"},
		{"got tok-abcdef!", "got [REDACTED]!"}, // the longer value wins, no "[REDACTED]def"
		{`{"v":"a\"b\\c-secret"}`, `{"v":"[REDACTED]"}`},
		{"q=p%40ss+w%2Frd", "q=[REDACTED]"},
		{"/path/p@ss%20w%2Frd", "/path/[REDACTED]"},
		{"abc stays", "abc stays"},
		{"Authorization: Bearer unknown-but-caught", "Authorization: [REDACTED]"},
	}
	for _, tt := range tests {
		if got := r.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	r.Forget("tok-abc")
	if got := r.Redact("got tok-abc"); got != "got tok-abc" {
		t.Errorf("after Forget: %q", got)
	}
	var nilR *Redactor
	if got := nilR.Redact("Authorization: Bearer x1234"); got != "Authorization: [REDACTED]" {
		t.Errorf("nil Redactor: %q", got)
	}
}

func TestRedactorConcurrent(t *testing.T) {
	t.Parallel()
	r := NewRedactor()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				v := string(rune('a'+i)) + "-secret-" + string(rune('a'+j%26))
				r.Add(v)
				if got := r.Redact("x " + v + " y"); got != "x [REDACTED] y" {
					t.Errorf("Redact = %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzRedactor(f *testing.F) {
	f.Add("s3cret-value", "prefix s3cret-value suffix")
	f.Add("a\"b", `{"k":"a\"b"}`)
	f.Fuzz(func(t *testing.T, secret, text string) {
		if len(secret) < MinRedactLen || strings.ContainsAny(secret, "[]REDACT") {
			t.Skip("too short to register, or could overlap the marker")
		}
		r := NewRedactor()
		r.Add(secret)
		if out := r.Redact(text + secret + text); strings.Contains(out, secret) {
			t.Fatalf("secret %q survived in %q", secret, out)
		}
	})
}

// TestAuditLineThroughKeychainRedactor: an audit line goes through the
// audit log's own redaction, then the keychain's (the app wires it so).
// The result is redacted once: no "[REDACTED]]", and the text of an error
// about a missing credential stays readable.
func TestAuditLineThroughKeychainRedactor(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := audit.Open(audit.Config{File: path, Params: audit.ParamsRedacted, Redactor: NewRedactor()}, audit.NewRedactor())
	if err != nil {
		t.Fatal(err)
	}
	msg := "no bearer credential for nocred in the OS keychain: set it in Keyport or run 'keyport secret set nocred bearer'"
	w.Log(audit.Event{Type: audit.TypeRequest, Server: "nocred", Method: "tools/call",
		Params: json.RawMessage(`{"arguments":{"password":"hunter22","user":"bob"}}`), Outcome: audit.OutcomeRejected, Error: msg})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := string(b)
	if !strings.Contains(line, `"password":"[REDACTED]"`) || strings.Contains(line, "]]") || strings.Contains(line, "hunter22") {
		t.Errorf("params not redacted exactly once: %s", line)
	}
	if !strings.Contains(line, msg) {
		t.Errorf("the error text was changed: %s", line)
	}
}
