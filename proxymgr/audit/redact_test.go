package audit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func runtimeGosched() { runtime.Gosched() }

func TestRedactorScrubsSecrets(t *testing.T) {
	t.Parallel()
	r := NewRedactor("Bearer sk-live-123456", "api-key-value-9", "ab", `quo"te-secret`)
	tests := []struct{ in, want string }{
		{"token sk-live-123456 here", "token [REDACTED] here"},
		{"Authorization: Bearer sk-live-123456", "Authorization: [REDACTED]"},
		{`{"h":"api-key-value-9"}`, `{"h":"[REDACTED]"}`},
		{`{"s":"quo\"te-secret"}`, `{"s":"[REDACTED]"}`},
		{"ab stays (too short to be a secret)", "ab stays (too short to be a secret)"},
		{"unknown bearer abcdef.ghij is scrubbed", "unknown bearer [REDACTED] is scrubbed"},
		{"https://x/mcp?access_token=zzz&x=1", "https://x/mcp?access_token=[REDACTED]&x=1"},
		{"nothing secret", "nothing secret"},
	}
	for _, tc := range tests {
		if got := r.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var nilR *Redactor
	if got := nilR.Redact("Bearer abc123"); got != "Bearer [REDACTED]" {
		t.Errorf("nil Redactor: %q", got)
	}
}

// TestRedactLeavesWordsAndMarkers: words after "bearer" in a sentence are
// not credentials, and redacting an already redacted line changes nothing
// (it used to give "[REDACTED]]").
func TestRedactLeavesWordsAndMarkers(t *testing.T) {
	t.Parallel()
	r := NewRedactor("Bearer sk-live-123456789")
	tests := []struct{ in, want string }{
		{"no bearer credential for nocred in the OS keychain", "no bearer credential for nocred in the OS keychain"},
		{"no bearer token for nocred", "no bearer token for nocred"},
		{"the Bearer token expired.", "the Bearer token expired."},
		{"upstream said: invalid bearer eyJhbGciOi.J9.sig", "upstream said: invalid bearer [REDACTED]"},
		{"Authorization: Bearer abcdef", "Authorization: [REDACTED]"},
		{"map[Authorization:[Bearer abcdef]]", "map[Authorization:[[REDACTED]]]"},
		{`{"authorization":"token abcdef"}`, `{"authorization":"[REDACTED]"}`},
		{"got sk-live-123456789%2F and sk-live-12345678\u0039", "got [REDACTED]%2F and [REDACTED]"},
	}
	for _, tc := range tests {
		got := r.Redact(tc.in)
		if got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if again := r.Redact(got); again != got {
			t.Errorf("Redact is not idempotent: %q -> %q", got, again)
		}
	}
	for _, line := range []string{
		`{"params":{"password":"[REDACTED]","api_key":"[REDACTED]"},"error":"Authorization: [REDACTED]"}`,
		`https://x/?password=[REDACTED]&token=[REDACTED]`,
		`"authorization":"[REDACTED]", map[Authorization:[[REDACTED]]]`,
	} {
		if got := r.Redact(line); got != line {
			t.Errorf("Redact(%q) = %q: an already redacted line changed", line, got)
		}
	}
}

func TestRedactParams(t *testing.T) {
	t.Parallel()
	in := `{"name":"login","arguments":{"user":"bob","Password":"hunter22","api_key":"k1","nested":[{"x-api-key":"k2","ok":1}],"github_token":"t","tokens":5,"n":12345678901234567890}}`
	out := string(RedactParams(json.RawMessage(in)))
	for _, secret := range []string{"hunter22", `"k1"`, `"k2"`, `"t"`} {
		if strings.Contains(out, secret) {
			t.Errorf("RedactParams kept %s: %s", secret, out)
		}
	}
	for _, keep := range []string{`"bob"`, `"login"`, `"ok":1`, `"tokens":5`, `12345678901234567890`} {
		if !strings.Contains(out, keep) {
			t.Errorf("RedactParams lost %s: %s", keep, out)
		}
	}
	if got := string(RedactParams(json.RawMessage(`{bad`))); got != `"[unparsable params]"` {
		t.Errorf("bad JSON: %s", got)
	}
	if RedactParams(nil) != nil {
		t.Error("nil params must stay nil")
	}
}

// TestNoSecretReachesTheFile logs events full of a registered secret in every
// field (params in full mode included) and checks the file never holds it.
func TestNoSecretReachesTheFile(t *testing.T) {
	t.Parallel()
	const secret = "ghp_S3cr3tT0kenValue"
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := Open(Config{File: path, Params: ParamsFull, Redactor: NewRedactor("extra-secret")}, NewRedactor("Bearer "+secret))
	if err != nil {
		t.Fatal(err)
	}
	w.Log(Event{
		Type: TypeRequest, Server: "gh", Method: "tools/call", Tool: secret,
		ID:     json.RawMessage(`"` + secret + `"`),
		Params: json.RawMessage(`{"arguments":{"q":"` + secret + `","z":"extra-secret"}}`),
		Error:  "upstream said: Bearer " + secret,
	})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) || strings.Contains(string(b), "extra-secret") {
		t.Fatalf("secret reached the audit file: %s", b)
	}
	if !strings.Contains(string(b), Redacted) {
		t.Fatalf("nothing was redacted: %s", b)
	}
}

func FuzzRedact(f *testing.F) {
	f.Add("Bearer abcdef", "abcdef")
	f.Add(`{"password":"x"}`, "longsecret")
	f.Fuzz(func(t *testing.T, text, secret string) {
		r := NewRedactor(secret)
		out := r.Redact(text + secret + text)
		s := strings.TrimSpace(secret)
		alnum := strings.IndexFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		}) < 0
		// Only alphanumeric secrets: others can be rebuilt from the marker's brackets.
		if alnum && len(s) >= minSecretLen && !strings.Contains(Redacted, s) && strings.Contains(out, s) {
			t.Fatalf("secret %q survived: %q", s, out)
		}
		_ = RedactParams(json.RawMessage(text))
	})
}
