package secrets

import (
	"strings"
	"sync"
	"testing"
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
