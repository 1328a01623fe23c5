package redact

import (
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a Set: a value is kept for a day after it was last added,
// and the eight values added most recently are kept whatever their age, so
// a token refreshed away is still caught when a server echoes it later (a
// cached answer, a log it returns).
const (
	DefaultRetain = 24 * time.Hour
	DefaultKeep   = 8
)

// Set is the live set of secrets a proxy injected. Add is called with
// every header value the proxy sends (so on every request); values already
// known cost a map lookup. It is safe for concurrent use and is a Source.
type Set struct {
	retain time.Duration
	keep   int
	now    func() time.Time

	mu   sync.Mutex
	vals map[string]*entry // by the value as added
	snap atomic.Pointer[snapshot]
}

type entry struct {
	forms []string     // what is matched (see Forms)
	last  atomic.Int64 // when last added, Unix seconds
}

type snapshot struct {
	m     *Matcher
	known map[string]*entry // read-only copy of Set.vals
}

// NewSet returns an empty Set with the default retention.
func NewSet() *Set {
	return &Set{retain: DefaultRetain, keep: DefaultKeep, now: time.Now, vals: map[string]*entry{}}
}

// Matcher is the current Matcher (nil while no secret is known).
func (s *Set) Matcher() *Matcher {
	if sn := s.snap.Load(); sn != nil {
		return sn.m
	}
	return nil
}

// Add registers values the proxy injected (header values: "Bearer
// TOKEN", an API key) with the parts of them that are secret on their own
// (see Forms). It reports whether the set changed.
func (s *Set) Add(values ...string) bool {
	now := s.now().Unix()
	var fresh []string
	sn := s.snap.Load()
	for _, v := range values {
		if sn != nil {
			if e, ok := sn.known[v]; ok {
				if e.last.Load() != now {
					e.last.Store(now)
				}
				continue
			}
		}
		fresh = append(fresh, v)
	}
	if len(fresh) == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, v := range fresh {
		if e, ok := s.vals[v]; ok {
			e.last.Store(now)
			continue
		}
		// A value with nothing long enough to match is kept too (without
		// forms), so adding it again takes the fast path.
		e := &entry{forms: slices.DeleteFunc(Forms(v), func(f string) bool { return len(f) < MinLen })}
		e.last.Store(now)
		s.vals[v] = e
		changed = true
	}
	if changed {
		s.expireLocked(now)
		s.rebuildLocked()
	}
	return changed
}

// Inherit adds the values of old (a proxy's predecessor on its socket)
// with the times they were last added.
func (s *Set) Inherit(old *Set) {
	if old == nil || old == s {
		return
	}
	old.mu.Lock()
	type kv struct {
		v     string
		forms []string
		last  int64
	}
	var all []kv
	for v, e := range old.vals {
		all = append(all, kv{v, e.forms, e.last.Load()})
	}
	old.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range all {
		if e, ok := s.vals[x.v]; ok {
			if e.last.Load() < x.last {
				e.last.Store(x.last)
			}
			continue
		}
		e := &entry{forms: x.forms}
		e.last.Store(x.last)
		s.vals[x.v] = e
	}
	s.expireLocked(s.now().Unix())
	s.rebuildLocked()
}

// Len is the number of values registered.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.vals)
}

// expireLocked drops values not added for longer than retain, except the
// keep added last.
func (s *Set) expireLocked(now int64) {
	if len(s.vals) <= s.keep {
		return
	}
	type vl struct {
		v    string
		last int64
	}
	all := make([]vl, 0, len(s.vals))
	for v, e := range s.vals {
		all = append(all, vl{v, e.last.Load()})
	}
	slices.SortFunc(all, func(a, b vl) int { return int(b.last - a.last) })
	cutoff := now - int64(s.retain/time.Second)
	for _, x := range all[s.keep:] {
		if x.last < cutoff {
			delete(s.vals, x.v)
		}
	}
}

func (s *Set) rebuildLocked() {
	var forms []string
	known := make(map[string]*entry, len(s.vals))
	for v, e := range s.vals {
		forms = append(forms, e.forms...)
		known[v] = e
	}
	s.snap.Store(&snapshot{m: Compile(forms...), known: known})
}

// Forms returns what of an injected header value must never reach a
// client: the value itself; after an auth scheme ("Bearer x", "token x"),
// the credential alone; for Basic, also the decoded "user:password" and
// the password. (Compile ignores those shorter than MinLen.)
func Forms(v string) []string {
	v = strings.TrimSpace(v)
	forms := []string{v}
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok || !isSchemeName(scheme) {
		return forms
	}
	cred = strings.TrimSpace(cred)
	forms = append(forms, cred)
	if strings.EqualFold(scheme, "Basic") {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(cred); err == nil {
				forms = append(forms, string(b))
				if _, pass, ok := strings.Cut(string(b), ":"); ok {
					forms = append(forms, pass)
				}
				break
			}
		}
	}
	return forms
}

// isSchemeName reports whether s is an HTTP auth scheme name (a token).
func isSchemeName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+.^_`|~-", c) >= 0) {
			return false
		}
	}
	return true
}
