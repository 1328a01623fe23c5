package secrets

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"keyport/proxymgr/redact"
)

// redacted replaces every secret in a redacted string.
const redacted = "[REDACTED]"

// MinRedactLen is the shortest value a Redactor replaces: shorter values
// would match ordinary text everywhere. (Credentials that short are still
// caught by the Authorization/Bearer patterns.)
const MinRedactLen = 4

// pattern is a secret-finding regular expression and the lowercase words
// one of which a string must contain for it to match (a cheap pre-check:
// most log lines contain none, and then no regular expression runs).
type pattern struct {
	re    *regexp.Regexp
	gates []string
	only  func(value string) bool // if set, a value is redacted only when it says so
}

// Each pattern's value is its second group. A value that is already the
// marker matches whole (the first alternative, tried before an optional
// bracket or quote is taken as the value's opening), so redacting twice
// changes nothing: a value class stopping at "]" used to turn
// "password":"[REDACTED]" into "[REDACTED]]".
var patterns = []pattern{
	// Authorization: Bearer x / "authorization":"token x" / map[Authorization:[Basic x]]
	{re: regexp.MustCompile(`(?i)(\b(?:proxy-)?authorization\b["']?\s*[:=]\s*\[??["']??)(\[REDACTED\]|[^"'\[\]\r\n,;&]+)`), gates: []string{"authorization"}},
	// a bare "Bearer x" or "Basic x" anywhere else, when x looks like a
	// credential: not in "no bearer credential for x"
	{re: regexp.MustCompile(`(?i)(\b(?:bearer|basic)\s+)([A-Za-z0-9\-._~+/]{4,}=*)`), gates: []string{"bearer", "basic"}, only: redact.LooksLikeToken},
	// well-known secret fields in JSON, YAML, forms and query strings
	{re: regexp.MustCompile(`(?i)(\b(?:access_token|refresh_token|id_token|client_secret|api[_-]?key|x-api-key|password|passwd|secret)\b["']?\s*[:=]\s*["']??)(\[REDACTED\]|[^"'\s,;&\[\]}]+)`),
		gates: []string{"token", "secret", "key", "passw"}},
}

// Redact replaces bearer tokens, Authorization values and well-known secret
// fields (access_token, client_secret, api_key, password...) in s. It knows no
// specific values; use a [Redactor] for those.
func Redact(s string) string {
	var lower string
	for _, p := range patterns {
		if lower == "" {
			lower = strings.ToLower(s)
		}
		hit := false
		for _, g := range p.gates {
			if strings.Contains(lower, g) {
				hit = true
				break
			}
		}
		if hit {
			s = p.replace(s)
			lower = "" // s may have changed
		}
	}
	return s
}

// replace redacts the values (second groups) of p's matches in s.
func (p pattern) replace(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range p.re.FindAllStringSubmatchIndex(s, -1) {
		v := s[m[4]:m[5]]
		if v == redacted || p.only != nil && !p.only(v) {
			continue
		}
		b.WriteString(s[last:m[4]])
		b.WriteString(redacted)
		last = m[5]
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// Redactor replaces known secret values, plus everything [Redact] catches, in
// any string. Register values with Add (a Store does it for every value it
// handles). It is safe for concurrent use; the zero value is not usable, call
// NewRedactor.
type Redactor struct {
	mu     sync.RWMutex
	values map[string]struct{}
	repl   *strings.Replacer // rebuilt after a change; nil when dirty
}

// NewRedactor returns a Redactor that knows no values yet.
func NewRedactor() *Redactor { return &Redactor{values: map[string]struct{}{}} }

// Add registers secret values, with their JSON-escaped and URL-encoded forms
// (as they appear in logged requests). Values shorter than MinRedactLen are
// ignored.
func (r *Redactor) Add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		for _, form := range forms(v) {
			if len(form) >= MinRedactLen {
				if _, ok := r.values[form]; !ok {
					r.values[form] = struct{}{}
					r.repl = nil
				}
			}
		}
	}
}

// Forget unregisters values (e.g. a rotated token).
func (r *Redactor) Forget(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		for _, form := range forms(v) {
			if _, ok := r.values[form]; ok {
				delete(r.values, form)
				r.repl = nil
			}
		}
	}
}

// Redact returns s with every known value and every pattern [Redact] knows
// replaced by "[REDACTED]".
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return Redact(s)
	}
	if repl := r.replacer(); repl != nil {
		s = repl.Replace(s)
	}
	return Redact(s)
}

func (r *Redactor) replacer() *strings.Replacer {
	r.mu.RLock()
	repl, n := r.repl, len(r.values)
	r.mu.RUnlock()
	if repl != nil || n == 0 {
		return repl
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.repl == nil && len(r.values) > 0 {
		vals := make([]string, 0, len(r.values))
		for v := range r.values {
			vals = append(vals, v)
		}
		// Longest first: at one position the first listed match wins, so a
		// value containing another is replaced whole.
		slices.SortFunc(vals, func(a, b string) int {
			if len(a) != len(b) {
				return len(b) - len(a)
			}
			return strings.Compare(a, b)
		})
		args := make([]string, 0, 2*len(vals))
		for _, v := range vals {
			args = append(args, v, redacted)
		}
		r.repl = strings.NewReplacer(args...)
	}
	return r.repl
}

// forms are the spellings of v that may appear in logs: as is, JSON-escaped
// and URL-encoded.
func forms(v string) []string {
	out := []string{v}
	if b, err := json.Marshal(v); err == nil {
		if j := string(b[1 : len(b)-1]); j != v {
			out = append(out, j)
		}
	}
	if q := url.QueryEscape(v); q != v {
		out = append(out, q)
	}
	if p := url.PathEscape(v); p != v && !slices.Contains(out, p) {
		out = append(out, p)
	}
	return out
}
