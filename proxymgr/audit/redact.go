package audit

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"keyport/proxymgr/redact"
)

// Redacted replaces every secret in the audit log.
const Redacted = "[REDACTED]"

// minSecretLen is the shortest value the Redactor scrubs: shorter values
// would match ordinary text everywhere and carry little secret anyway.
const minSecretLen = 4

// Redactor scrubs known secret values (the credentials a proxy injected,
// its local token) and anything that looks like a bearer token from text.
// It is safe for concurrent use.
type Redactor struct {
	mu     sync.Mutex
	values map[string]struct{}
	rep    atomic.Pointer[strings.Replacer] // short values and their JSON forms
	m      atomic.Pointer[redact.Matcher]   // values of redact.MinLen bytes or more, in every spelling
}

// NewRedactor returns a Redactor that scrubs values.
func NewRedactor(values ...string) *Redactor {
	r := &Redactor{values: map[string]struct{}{}}
	r.Add(values...)
	return r
}

// Add registers secret values. A value like "Bearer abc" also registers
// "abc". Values shorter than 4 bytes are ignored.
func (r *Redactor) Add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, v := range values {
		if _, ok := r.values[strings.TrimSpace(v)]; ok {
			continue // known: proxies add their credentials on every request
		}
		for _, f := range secretForms(v) {
			if len(f) < minSecretLen {
				continue
			}
			if _, ok := r.values[f]; !ok {
				r.values[f] = struct{}{}
				changed = true
			}
		}
	}
	if !changed {
		return
	}
	// Longest first, so a value that contains another is replaced whole.
	all := make([]string, 0, len(r.values))
	for v := range r.values {
		all = append(all, v)
	}
	sort.Slice(all, func(i, j int) bool {
		if len(all[i]) != len(all[j]) {
			return len(all[i]) > len(all[j])
		}
		return all[i] < all[j]
	})
	pairs := make([]string, 0, 2*len(all))
	for _, v := range all {
		pairs = append(pairs, v, Redacted)
	}
	r.rep.Store(strings.NewReplacer(pairs...))
	r.m.Store(redact.Compile(all...))
}

// secretForms is v, its credential after an auth scheme, and their JSON
// string encodings (as they appear inside a logged JSON line).
func secretForms(v string) []string {
	v = strings.TrimSpace(v)
	forms := []string{v}
	if scheme, rest, ok := strings.Cut(v, " "); ok && scheme != "" && !strings.ContainsAny(scheme, "\"'=") {
		forms = append(forms, strings.TrimSpace(rest))
	}
	for _, f := range forms[:len(forms):len(forms)] {
		b, _ := json.Marshal(f)
		if enc := string(b[1 : len(b)-1]); enc != f {
			forms = append(forms, enc)
		}
	}
	return forms
}

// The patterns below find credentials Keyport does not know. A value that
// is already the marker is matched whole (the first alternative), so
// redacting twice changes nothing: a value class stopping at "]" used to
// turn "[REDACTED]" into "[REDACTED]]".
var (
	// Authorization: Bearer x / "authorization":"token x": whatever follows.
	authRE = regexp.MustCompile(`(?i)\b(?:proxy-)?authorization\b["']?\s*[:=]\s*\[??["']??(\[REDACTED\]|[^"'\[\]\r\n,;&\\]+)`)
	// "Bearer x" in free text: x only when it looks like a credential
	// (redact.LooksLikeToken), not in "no bearer credential for x".
	bearerRE = regexp.MustCompile(`(?i)\b(?:bearer|basic)(?:\s+|%20)([A-Za-z0-9\-._~+/=%]{4,})`)
	queryRE  = regexp.MustCompile(`(?i)\b((?:access_|refresh_|id_)?token|api[_-]?key|client_secret|secret|password|sig|signature)=(\[REDACTED\]|[^&\s"\\]+)`)
)

// Redact returns s with every registered value (in any spelling: raw,
// JSON-escaped, percent-encoded), Authorization value, bearer credential
// and token-looking URL query value replaced by [REDACTED].
func (r *Redactor) Redact(s string) string {
	if r != nil {
		if m := r.m.Load(); m != nil {
			if b, n := m.Replace([]byte(s)); n > 0 {
				s = string(b)
			}
		}
		if rep := r.rep.Load(); rep != nil {
			s = rep.Replace(s)
		}
	}
	if containsFold(s, "authorization") {
		s = replaceGroup(authRE, s, func(v string) bool { return v != Redacted })
	}
	if strings.Contains(s, "earer") || strings.Contains(s, "EARER") || strings.Contains(s, "asic") || strings.Contains(s, "ASIC") {
		s = replaceGroup(bearerRE, s, redact.LooksLikeToken)
	}
	if strings.IndexByte(s, '=') >= 0 {
		s = queryRE.ReplaceAllString(s, "${1}="+Redacted)
	}
	return s
}

// replaceGroup replaces the first group of re's matches in s by Redacted
// where redactIf accepts it.
func replaceGroup(re *regexp.Regexp, s string, redactIf func(string) bool) string {
	var b strings.Builder
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
		v := s[m[2]:m[3]]
		if !redactIf(v) {
			continue
		}
		b.WriteString(s[last:m[2]])
		b.WriteString(Redacted)
		last = m[3]
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func containsFold(s, word string) bool {
	return strings.Contains(strings.ToLower(s), word)
}

// sensitiveKeys are object keys (compared case-insensitively, ignoring - and
// _) whose values RedactParams replaces.
var sensitiveKeys = []string{
	"authorization", "proxyauthorization", "cookie", "setcookie",
	"password", "passwd", "passphrase", "secret", "clientsecret",
	"token", "accesstoken", "refreshtoken", "idtoken", "apikey", "xapikey",
	"privatekey", "credential", "credentials", "sessiontoken", "bearer",
}

var keyNormalizer = strings.NewReplacer("-", "", "_", "", " ", "")

func sensitiveKey(k string) bool {
	k = strings.ToLower(keyNormalizer.Replace(k))
	for _, s := range sensitiveKeys {
		if k == s {
			return true
		}
	}
	return strings.HasSuffix(k, "token") || strings.HasSuffix(k, "secret") ||
		strings.HasSuffix(k, "password") || strings.HasSuffix(k, "apikey")
}

// RedactParams returns params (a JSON value) with the values of
// secret-looking keys (password, token, api_key, authorization, ...)
// replaced by "[REDACTED]". Invalid JSON yields a JSON string saying so.
// Known secret values are scrubbed later, from the whole line.
func RedactParams(params json.RawMessage) json.RawMessage {
	if len(params) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return json.RawMessage(`"[unparsable params]"`)
	}
	out, err := json.Marshal(redactValue(v))
	if err != nil {
		return json.RawMessage(`"[unparsable params]"`)
	}
	return out
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if sensitiveKey(k) {
				if val != nil {
					t[k] = Redacted
				}
				continue
			}
			t[k] = redactValue(val)
		}
		return t
	case []any:
		for i := range t {
			t[i] = redactValue(t[i])
		}
		return t
	default:
		return v
	}
}
