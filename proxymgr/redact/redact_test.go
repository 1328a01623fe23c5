package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const tok = "ghp_S3cr3t/T0ken+Value=" // has bytes encoders escape: / + =

func TestReplaceSpellings(t *testing.T) {
	t.Parallel()
	m := Compile(tok, "pässwört-secret", "emoji-😀-secret")
	tests := []struct{ name, in, want string }{
		{"raw", "saw Bearer " + tok + " here", "saw Bearer [REDACTED] here"},
		{"json std", `{"h":"Bearer ghp_S3cr3t/T0ken+Value="}`, `{"h":"Bearer [REDACTED]"}`},
		{"json slash", `{"h":"ghp_S3cr3t\/T0ken+Value="}`, `{"h":"[REDACTED]"}`},
		{"json u lower", `"ghp_S3cr3t\u002fT0ken\u002bValue\u003d"`, `"[REDACTED]"`},
		{"json u upper", `"ghp_S3cr3t\u002FT0ken\u002BValue\u003D"`, `"[REDACTED]"`},
		{"json every byte", `"` + uEscapeAll(tok) + `"`, `"[REDACTED]"`},
		{"percent query", "?t=" + url.QueryEscape(tok) + "&x=1", "?t=[REDACTED]&x=1"},
		{"percent lower", "ghp_S3cr3t%2fT0ken%2bValue%3d", "[REDACTED]"},
		{"percent every byte", pctAll(tok), "[REDACTED]"},
		{"mixed", `ghp_S3cr3t\/T0ken%2BValue\u003d`, "[REDACTED]"},
		{"json in json", `{"text":"{\"h\":\"ghp_S3cr3t\\/T0ken+Value\\u003d\"}"}`, `{"text":"{\"h\":\"[REDACTED]\"}"}`},
		{"json in json, u", `"\\u0067hp_S3cr3t\\u002FT0ken+Value="`, `"[REDACTED]"`},
		{"backslash pair, then /", `"ghp_S3cr3t\\/T0ken+Value="`, `"[REDACTED]"`},
		{"non-ascii raw", "pässwört-secret", "[REDACTED]"},
		{"non-ascii u", `"p\u00e4ssw\u00F6rt-secret"`, `"[REDACTED]"`},
		{"non-ascii pct", url.PathEscape("pässwört-secret"), "[REDACTED]"},
		{"surrogates", `"emoji-\ud83d\ude00-secret"`, `"[REDACTED]"`},
		{"twice", tok + tok, "[REDACTED][REDACTED]"},
		{"prefix only", "ghp_S3cr3t/T0ken+Valu", "ghp_S3cr3t/T0ken+Valu"},
		{"escape broken", `ghp_S3cr3t\u002gT0ken+Value=`, `ghp_S3cr3t\u002gT0ken+Value=`},
		{"nothing", "hello world", "hello world"},
	}
	for _, tc := range tests {
		got, _ := m.Replace([]byte(tc.in))
		want := tc.want
		if string(got) != want {
			t.Errorf("%s: Replace(%q)\n got %q\nwant %q", tc.name, tc.in, got, want)
		}
	}
}

func TestMarkerKeepsEscapesWhole(t *testing.T) {
	t.Parallel()
	m := Compile("u0041BCDEFGH", "ABCDEFGH")
	// JSON text \\u0041BCDEFGH is a literal backslash and "u0041BCDEFGH":
	// redacted, the backslash pair must stay a pair.
	for _, in := range []string{`["\\u0041BCDEFGH"]`, `["\u0041BCDEFGH"]`, `["x\\\u0041BCDEFGH"]`, `["\\\\ABCDEFGH"]`} {
		out, n := m.Replace([]byte(in))
		if n != 1 {
			t.Errorf("%s: %d replacements, want 1: %s", in, n, out)
		}
		var v []string
		if err := json.Unmarshal(out, &v); err != nil {
			t.Errorf("%s -> %s: invalid JSON: %v", in, out, err)
		}
	}
}

func TestLongestWinsAndShortIgnored(t *testing.T) {
	t.Parallel()
	m := Compile("abcdefgh", "abcdefghijkl", "short")
	if m.Len() != 2 {
		t.Fatalf("Len = %d, want 2 (short is below MinLen)", m.Len())
	}
	got, n := m.Replace([]byte("abcdefghijkl abcdefghij short"))
	if string(got) != "[REDACTED] [REDACTED]ij short" || n != 2 {
		t.Errorf("got %q (%d)", got, n)
	}
	if Compile("short", "a\nlong-value") != nil {
		t.Error("a set of unusable values should compile to nil")
	}
	var nilM *Matcher
	if out, n := nilM.Replace([]byte("x")); string(out) != "x" || n != 0 {
		t.Error("a nil Matcher must pass input through")
	}
}

// TestWriterHoldsOnlyAPossiblePrefix: bytes pass at once unless they may
// begin a secret; nothing is held after a line break.
func TestWriterHoldsOnlyAPossiblePrefix(t *testing.T) {
	t.Parallel()
	m := Compile(tok)
	var out bytes.Buffer
	w := NewWriter(&out, m)
	steps := []struct {
		in       string
		wantOut  string
		wantHeld int
	}{
		{"data: {\"x\":\"no secret here\"}", "data: {\"x\":\"no secret here\"}", 0},
		{" tail gh", " tail ", 2},
		{"p_S3", "", 6},
		{"cr3t/T0ken+Value=!", "[REDACTED]!", 0},
		{"\n\n", "\n\n", 0},
		{"data: ghp_S3cr3t%2", "data: ", 12},
		{"FT0ken", "", 18},
		{"\n", "ghp_S3cr3t%2FT0ken\n", 0}, // not the secret: released
		{`x\`, "x", 1},
		{`u00`, "", 4},
		{`67`, "", 6}, // \u0067 is g: may begin the secret
		{`z`, `\u0067z`, 0},
		{"end ghp_S3cr3t/T0k", "end ", 14},
	}
	for i, s := range steps {
		out.Reset()
		if _, err := w.Write([]byte(s.in)); err != nil {
			t.Fatal(err)
		}
		if out.String() != s.wantOut || w.Held() != s.wantHeld {
			t.Fatalf("step %d: write %q: out %q held %d; want %q held %d", i, s.in, out.String(), w.Held(), s.wantOut, s.wantHeld)
		}
	}
	out.Reset()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "ghp_S3cr3t/T0k" || w.Found() != 1 {
		t.Fatalf("close: out %q found %d", out.String(), w.Found())
	}
}

// TestEventEndHoldsNothing: whatever the secrets, a chunk ending in a line
// break leaves nothing held (an SSE event is never delayed).
func TestEventEndHoldsNothing(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		secrets := []string{randSecret(r), randSecret(r), `\%` + randSecret(r)}
		m := Compile(secrets...)
		w := NewWriter(io.Discard, m)
		in := randText(r, secrets, 200)
		in = append(in, "\n\n"...)
		w.Write(in)
		if w.Held() != 0 {
			t.Fatalf("held %d bytes after %q", w.Held(), in)
		}
	}
}

func TestSetRetention(t *testing.T) {
	t.Parallel()
	s := NewSet()
	now := time.Unix(1_000_000, 0)
	s.now = func() time.Time { return now }
	if s.Matcher() != nil {
		t.Fatal("empty set has a matcher")
	}
	if !s.Add("Bearer token-generation-0") || s.Add("Bearer token-generation-0") {
		t.Fatal("Add should report a new value once")
	}
	for i := 1; i <= 20; i++ {
		now = now.Add(time.Hour)
		s.Add(fmt.Sprintf("Bearer token-generation-%d", i))
	}
	// 20 hours: everything is within the retention.
	if out, _ := s.Matcher().Replace([]byte("token-generation-0")); string(out) != Marker {
		t.Fatalf("an old token within the retention was forgotten: %q", out)
	}
	now = now.Add(30 * time.Hour)
	s.Add("Bearer token-generation-21")
	if s.Len() != DefaultKeep {
		t.Fatalf("after the retention: %d values, want the %d newest", s.Len(), DefaultKeep)
	}
	for i, want := range map[int]string{0: "token-generation-0", 13: "token-generation-13", 14: Marker, 21: Marker} {
		if out, _ := s.Matcher().Replace(fmt.Appendf(nil, "token-generation-%d", i)); string(out) != want {
			t.Errorf("generation %d: %q, want %q", i, out, want)
		}
	}
	// A successor inherits the values.
	s2 := NewSet()
	s2.Inherit(s)
	if out, _ := s2.Matcher().Replace([]byte("x token-generation-20")); string(out) != "x "+Marker {
		t.Errorf("inherited: %q", out)
	}
}

func TestForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"Bearer abc.def", []string{"Bearer abc.def", "abc.def"}},
		{"plain-api-key", []string{"plain-api-key"}},
		{"Basic dXNlcjpwYXNzd29yZC0x", []string{"Basic dXNlcjpwYXNzd29yZC0x", "dXNlcjpwYXNzd29yZC0x", "user:password-1", "password-1"}},
		{"key=value with spaces", []string{"key=value with spaces"}},
	}
	for _, tc := range tests {
		if got := Forms(tc.in); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Forms(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzWriter: for any input, secrets and split points, the streamed output
// equals the one-shot replacement, and no secret survives in it.
func FuzzWriter(f *testing.F) {
	f.Add([]byte("hello ghp_S3cr3t/T0ken+Value= world"), "ghp_S3cr3t/T0ken+Value=", "second-secret", uint64(1))
	f.Add([]byte(`{"a":"ghp_S3cr3t\/T0ken%2BValue\u003d"}`), "ghp_S3cr3t/T0ken+Value=", "ghp_S3cr3t", uint64(2))
	f.Add([]byte(`%%%\\\\\u00`), `\%abcdefgh`, "%41%42%43%44", uint64(3))
	f.Add([]byte("data: x\n\ndata: y"), "pässwört-secret", "emoji-😀-secret", uint64(4))
	f.Fuzz(func(t *testing.T, text []byte, s1, s2 string, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		secrets := []string{s1, s2}
		// Put the secrets into the text in several spellings.
		in := append([]byte(nil), text...)
		for _, s := range secrets {
			for _, enc := range spellings(s) {
				at := 0
				if len(in) > 0 {
					at = r.IntN(len(in) + 1)
				}
				in = append(in[:at], append([]byte(enc), in[at:]...)...)
			}
		}
		m := Compile(secrets...)
		want, _ := m.Replace(in)
		got := writeInPieces(t, m, in, r)
		if !bytes.Equal(got, want) {
			t.Fatalf("streamed output differs from one-shot\nin   %q\ngot  %q\nwant %q", in, got, want)
		}
		if again, n := m.Replace(got); n != 0 && !overlapsMarker(secrets) {
			t.Fatalf("a secret survived: %q -> %q", got, again)
		}
		for _, s := range secrets {
			if len(s) < MinLen || overlapsMarker([]string{s}) || strings.ContainsAny(s, "\r\n") {
				continue
			}
			for _, enc := range spellings(s) {
				if bytes.Contains(got, []byte(enc)) {
					t.Fatalf("secret %q survived as %q in %q", s, enc, got)
				}
			}
		}
	})
}

// FuzzJSONStaysValid: a JSON document holding secrets, escaped by
// different encoders and streamed in random pieces, stays valid JSON and
// holds no secret once decoded.
func FuzzJSONStaysValid(f *testing.F) {
	f.Add("ghp_S3cr3t/T0ken+Value=", "some text", uint64(1))
	f.Add("pässwört-secret", `quote " and \ back`, uint64(2))
	f.Fuzz(func(t *testing.T, secret, text string, seed uint64) {
		if len(secret) < MinLen || !utf8.ValidString(secret) || strings.ContainsAny(secret, "\"\\\r\n") || overlapsMarker([]string{secret}) {
			return
		}
		r := rand.New(rand.NewPCG(seed, 7))
		vals := []string{secret, text + secret, secret + text, text, strings.Repeat(secret, 2)}
		var doc bytes.Buffer
		doc.WriteByte('[')
		for i, v := range vals {
			if i > 0 {
				doc.WriteByte(',')
			}
			switch i % 3 {
			case 0:
				b, _ := json.Marshal(v) // Go: <>& escaped
				doc.Write(b)
			case 1:
				enc := json.NewEncoder(&doc)
				enc.SetEscapeHTML(false)
				enc.Encode(v)
			default:
				b, _ := json.Marshal(v)
				doc.WriteString(`"` + uEscapeAll(string(b[1:len(b)-1])) + `"`)
			}
		}
		doc.WriteByte(']')
		m := Compile(secret)
		out := writeInPieces(t, m, doc.Bytes(), r)
		var got []string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("invalid JSON after redaction: %v\nin  %s\nout %s", err, doc.Bytes(), out)
		}
		for _, g := range got {
			if strings.Contains(g, secret) {
				t.Fatalf("secret survived in %q", g)
			}
		}
	})
}

func writeInPieces(t *testing.T, m *Matcher, in []byte, r *rand.Rand) []byte {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, m)
	for rest := in; len(rest) > 0; {
		n := 1 + r.IntN(min(len(rest), 1+r.IntN(40)))
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// spellings are ways a server may write s. (JSON cannot hold bytes that
// are not UTF-8: encoders replace them, and the secret is gone.)
func spellings(s string) []string {
	if !utf8.ValidString(s) {
		return []string{s, url.QueryEscape(s), url.PathEscape(s), pctAll(s)}
	}
	b, _ := json.Marshal(s)
	j := string(b[1 : len(b)-1])
	out := []string{s, j, strings.ReplaceAll(j, "/", `\/`), uEscapeAll(s), url.QueryEscape(s), url.PathEscape(s), pctAll(s)}
	if !strings.ContainsFunc(s, func(r rune) bool { return r == '\\' || r < ' ' }) {
		// JSON text inside a JSON string: escapes escaped once more.
		for _, inner := range []string{strings.ReplaceAll(j, "/", `\/`), uEscapeAll(s)} {
			b2, _ := json.Marshal(inner)
			out = append(out, string(b2[1:len(b2)-1]))
		}
	}
	return out
}

// uEscapeAll writes every rune of s as \uXXXX (surrogate pairs above the
// BMP), keeping existing escapes of s whole.
func uEscapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '\\' && i+1 < len(s) { // an escape already: keep it
			n := 2
			if s[i+1] == 'u' {
				n = 6
			}
			b.WriteString(s[i:min(len(s), i+n)])
			i += n
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		i += w
		if r >= 0x10000 {
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04X`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
			continue
		}
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

func pctAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// overlapsMarker: a secret sharing bytes with the marker can be rebuilt
// from the marker and the text next to it, so "no secret in the output"
// is checked only for the others.
func overlapsMarker(secrets []string) bool {
	for _, s := range secrets {
		if strings.ContainsAny(s, `[]REDACT\`) {
			return true
		}
	}
	return false
}

func randSecret(r *rand.Rand) string {
	const alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/=%\\\"ä"
	n := MinLen + r.IntN(12)
	b := make([]byte, 0, n)
	for len(b) < n {
		b = append(b, alpha[r.IntN(len(alpha))])
	}
	return string(b)
}

func randText(r *rand.Rand, secrets []string, n int) []byte {
	var b []byte
	for len(b) < n {
		switch r.IntN(6) {
		case 0:
			s := secrets[r.IntN(len(secrets))]
			sp := spellings(s)
			enc := sp[r.IntN(len(sp))]
			b = append(b, enc[:r.IntN(len(enc)+1)]...) // a prefix, maybe whole
		case 1:
			b = append(b, `\u00`[:r.IntN(5)]...)
		case 2:
			b = append(b, '%', '\\')
		default:
			b = append(b, "data: {\"x\":1}\n"[r.IntN(10):]...)
		}
	}
	return b
}

// TestManyBackslashesStayCheap: a secret of backslashes can be read in
// exponentially many ways (each `\` literal or half of `\\`); failed
// readings are remembered, so a near miss stays cheap.
func TestManyBackslashesStayCheap(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat(`\`, 60) + "x"
	m := Compile(secret, strings.Repeat("%", 60)+"y")
	in := strings.Repeat(`\`, 130) + "y" + strings.Repeat("%25", 70) + "x"
	// Without the memo this does not end (about 2^60 readings).
	{
		if _, n := m.Replace([]byte(in)); n != 0 {
			t.Errorf("%d replacements, want 0", n)
		}
		out, n := m.Replace([]byte(strings.Repeat(`\\`, 60) + "x"))
		if n != 1 || string(out) != Marker {
			t.Errorf("escaped backslashes: %q (%d)", out, n)
		}
	}
}

func TestLooksLikeToken(t *testing.T) {
	t.Parallel()
	for w, want := range map[string]bool{
		"credential": false, "token": false, "Token": false, "authentication": false, "token.": false, "required,": false,
		"abcdef.ghij": true, "xyz123": true, "eyJhbGciOi": true, "ghp_x1": true, "dXNlcjpwYXNz": true, "Zm9vOmJhcg==": true,
		"abcdefghijklmnopqrst": true, "[REDACTED]": true, "ab1": false,
	} {
		if got := LooksLikeToken(w); got != want {
			t.Errorf("LooksLikeToken(%q) = %v, want %v", w, got, want)
		}
	}
}
