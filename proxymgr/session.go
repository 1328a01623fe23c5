package proxymgr

import (
	"bytes"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// pendingReq is a client request forwarded upstream and not yet answered.
type pendingReq struct {
	method     string
	tool       string
	id         []byte // raw id, for the audit log
	start      time.Time
	filter     bool   // a tools/list whose result the policy or pinning filters
	cursor     string // the page a filtered tools/list asks for (pinning)
	paramsSize int
	params     []byte // kept only when the audit log wants params
	session    string
	client     clientInfo
}

// maxPending bounds a tracker: requests beyond it are forwarded but not
// tracked (their responses pass unfiltered only if they are not tools/list:
// see track).
const maxPending = 4096

// pendingTTL is how long an unanswered request of a session is remembered
// (its response may arrive on a later stream).
const pendingTTL = 30 * time.Minute

// tracker matches responses to the requests they answer, by id.
type tracker struct {
	mu      sync.Mutex
	pending map[string]*pendingReq
	filters atomic.Int32 // pending requests with filter set
}

// add records r under key. It reports false when the tracker is full.
func (t *tracker) add(key string, r *pendingReq) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending = make(map[string]*pendingReq)
	}
	if len(t.pending) >= maxPending {
		return false
	}
	if old, ok := t.pending[key]; ok && old.filter {
		t.filters.Add(-1)
	}
	t.pending[key] = r
	if r.filter {
		t.filters.Add(1)
	}
	return true
}

// take removes and returns the request answered by a response with key.
func (t *tracker) take(key string) *pendingReq {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.pending[key]
	if r != nil {
		delete(t.pending, key)
		if r.filter {
			t.filters.Add(-1)
		}
	}
	return r
}

// peekFilter reports whether key is a pending filtered request.
func (t *tracker) peekFilter(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.pending[key]
	return r != nil && r.filter
}

func (t *tracker) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// expire removes requests older than the TTL (and all when ttl is 0) and
// returns them.
func (t *tracker) expire(now time.Time, ttl time.Duration) []*pendingReq {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*pendingReq
	for k, r := range t.pending {
		if ttl == 0 || now.Sub(r.start) > ttl {
			out = append(out, r)
			delete(t.pending, k)
			if r.filter {
				t.filters.Add(-1)
			}
		}
	}
	return out
}

type clientInfo struct {
	name, version string
	via           string // how the request came (via.go)
}

// session is a 2025-era MCP session the proxy saw being created. Clients
// know it by the id the upstream first gave; after an upstream restart the
// proxy maps that id to the upstream's new one.
type session struct {
	id string // the id the client uses

	mu         sync.Mutex
	upstreamID string
	lastSeen   time.Time

	// What re-initializing the upstream needs: the client's own initialize.
	initBody   []byte
	initHeader http.Header
	client     clientInfo
	protocol   string
	started    time.Time

	// What the client set on the session, replayed after a re-initialization
	// (under mu): the params of its last logging/setLevel, and of each
	// resources/subscribe not unsubscribed since, by URI.
	logLevel []byte
	subs     map[string][]byte

	reinitMu sync.Mutex // one re-initialization at a time
	tr       tracker
	streams  atomic.Int32 // open GET streams
}

// maxReplayedSubs bounds the subscriptions a session remembers for replay.
const maxReplayedSubs = 1024

// remember notes a client request that sets session state the upstream
// loses when it restarts.
func (s *session) remember(m *message) {
	switch m.method {
	case "logging/setLevel", "resources/subscribe", "resources/unsubscribe":
	default:
		return
	}
	params := bytes.Clone(m.params)
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.method == "logging/setLevel" {
		s.logLevel = params
		return
	}
	uri, ok := paramString(m.params, "uri")
	if !ok {
		return
	}
	if m.method == "resources/unsubscribe" {
		delete(s.subs, uri)
		return
	}
	if s.subs == nil {
		s.subs = map[string][]byte{}
	}
	if _, known := s.subs[uri]; known || len(s.subs) < maxReplayedSubs {
		s.subs[uri] = params
	}
}

// replayable is what remember kept, as method and params pairs, the log
// level first.
func (s *session) replayable() (methods []string, params [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logLevel != nil {
		methods, params = append(methods, "logging/setLevel"), append(params, s.logLevel)
	}
	uris := make([]string, 0, len(s.subs))
	for u := range s.subs {
		uris = append(uris, u)
	}
	slices.Sort(uris)
	for _, u := range uris {
		methods, params = append(methods, "resources/subscribe"), append(params, s.subs[u])
	}
	return methods, params
}

func (s *session) upstream() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.upstreamID
}

func (s *session) touch(now time.Time) {
	s.mu.Lock()
	s.lastSeen = now
	s.mu.Unlock()
}

// maxSessions bounds the session table; the least recently used session is
// forgotten beyond it (its upstream session stays usable, only automatic
// re-initialization is lost).
const maxSessions = 10000

// sessionIdle is how long a session with no request and no open stream is
// remembered (clients that quit without DELETE leave such sessions behind).
const sessionIdle = time.Hour

type sessionTable struct {
	mu sync.Mutex
	m  map[string]*session

	// loose are the trackers of the requests in flight without a session
	// (2026-07-28, or a server that gives none) that wait for a tools/list
	// answer: see lostListAnswer.
	looseMu sync.Mutex
	loose   map[*tracker]struct{}
	looseN  atomic.Int32 // len(loose), read on every event boundary
}

// addLoose registers the tracker of a POST without a session whose
// tools/list answers must be filtered wherever they arrive; the returned
// func unregisters it.
func (t *sessionTable) addLoose(tr *tracker) (remove func()) {
	t.looseMu.Lock()
	if t.loose == nil {
		t.loose = map[*tracker]struct{}{}
	}
	t.loose[tr] = struct{}{}
	t.looseN.Store(int32(len(t.loose)))
	t.looseMu.Unlock()
	return func() {
		t.looseMu.Lock()
		delete(t.loose, tr)
		t.looseN.Store(int32(len(t.loose)))
		t.looseMu.Unlock()
	}
}

// looseFilter reports whether key is a tools/list in flight without a
// session on a POST other than own's.
func (t *sessionTable) looseFilter(key string, own *tracker) bool {
	t.looseMu.Lock()
	defer t.looseMu.Unlock()
	for tr := range t.loose {
		if tr != own && tr.peekFilter(key) {
			return true
		}
	}
	return false
}

func (t *sessionTable) get(id string) *session {
	if id == "" {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

// put adds s and returns sessions evicted to make room or for idleness.
func (t *sessionTable) put(s *session, now time.Time) (evicted []*session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]*session)
	}
	if len(t.m) >= maxSessions/2 {
		evicted = t.sweepLocked(now)
	}
	if len(t.m) >= maxSessions {
		var oldest *session
		var oldestSeen time.Time
		for _, o := range t.m {
			o.mu.Lock()
			seen := o.lastSeen
			o.mu.Unlock()
			if oldest == nil || seen.Before(oldestSeen) {
				oldest, oldestSeen = o, seen
			}
		}
		delete(t.m, oldest.id)
		evicted = append(evicted, oldest)
	}
	t.m[s.id] = s
	return evicted
}

// sweep forgets sessions idle for sessionIdle with no open stream.
func (t *sessionTable) sweep(now time.Time) []*session {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sweepLocked(now)
}

func (t *sessionTable) sweepLocked(now time.Time) (evicted []*session) {
	for id, o := range t.m {
		o.mu.Lock()
		idle := now.Sub(o.lastSeen) > sessionIdle && o.streams.Load() == 0
		o.mu.Unlock()
		if idle {
			delete(t.m, id)
			evicted = append(evicted, o)
		}
	}
	return evicted
}

func (t *sessionTable) remove(id string) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[id]
	delete(t.m, id)
	return s
}

func (t *sessionTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func (t *sessionTable) all() []*session {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*session, 0, len(t.m))
	for _, s := range t.m {
		out = append(out, s)
	}
	return out
}
