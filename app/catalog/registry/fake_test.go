package registry

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fixtures is the shared registry test data (see its README).
var fixtures = filepath.Join("..", "..", "..", "testdata", "registry")

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeRegistry is an MCP Registry v0.1 over the fixture entries, behaving
// like the real one (internal/database/postgres.go): entries sorted by
// (name, version), search as a case-insensitive substring of the name or
// the description, cursor "name:version" of the last row, nextCursor set
// when a page is full. It records the requests it served.
type fakeRegistry struct {
	entries []json.RawMessage
	keys    []string // "name:version", parallel to entries
	descs   []string

	mu       sync.Mutex
	requests []*http.Request
}

func newFakeRegistry(t testing.TB) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{}
	type row struct {
		raw                 json.RawMessage
		name, version, desc string
	}
	var rows []row
	for _, file := range []string{"page1.json", "page2.json"} {
		var l struct {
			Servers []json.RawMessage `json:"servers"`
		}
		if err := json.Unmarshal(readFixture(t, file), &l); err != nil {
			t.Fatal(err)
		}
		for _, raw := range l.Servers {
			var e Entry
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, row{raw, e.Server.Name, e.Server.Version, e.Server.Description})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.version, b.version)) })
	for _, r := range rows {
		f.entries = append(f.entries, r.raw)
		f.keys = append(f.keys, r.name+":"+r.version)
		f.descs = append(f.descs, r.desc)
	}
	return f
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.mu.Unlock()
	path := r.URL.EscapedPath()
	switch {
	case path == "/v0.1/servers":
		f.list(w, r.URL.Query())
	case strings.HasPrefix(path, "/v0.1/servers/") && strings.HasSuffix(path, "/versions/latest"):
		escaped := strings.TrimSuffix(strings.TrimPrefix(path, "/v0.1/servers/"), "/versions/latest")
		if strings.Contains(escaped, "/") { // the name's "/" must arrive as %2F
			writeJSON(w, http.StatusNotFound, `{"error":"Not Found"}`)
			return
		}
		name, _ := url.PathUnescape(escaped)
		for i, k := range f.keys {
			var e Entry
			_ = json.Unmarshal(f.entries[i], &e)
			if strings.HasPrefix(k, name+":") && e.Meta.Official.IsLatest {
				writeJSON(w, http.StatusOK, string(f.entries[i]))
				return
			}
		}
		writeJSON(w, http.StatusNotFound, `{"error": "Server not found"}`)
	default:
		writeJSON(w, http.StatusNotFound, `{"error":"Not Found"}`)
	}
}

func (f *fakeRegistry) list(w http.ResponseWriter, q url.Values) {
	limit := 30
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			writeJSON(w, http.StatusUnprocessableEntity, `{"title":"Unprocessable Entity","detail":"limit must be 1-100"}`)
			return
		}
		limit = n
	}
	search := strings.ToLower(q.Get("search"))
	var page []json.RawMessage
	last := ""
	for i, k := range f.keys {
		if c := q.Get("cursor"); c != "" && k <= c {
			continue
		}
		name, _, _ := strings.Cut(k, ":")
		if search != "" && !strings.Contains(strings.ToLower(name), search) && !strings.Contains(strings.ToLower(f.descs[i]), search) {
			continue
		}
		if len(page) == limit {
			break
		}
		page = append(page, f.entries[i])
		last = k
	}
	body := map[string]any{"servers": page, "metadata": map[string]any{"count": len(page)}}
	if page == nil {
		body["servers"] = []json.RawMessage{}
	}
	if len(page) >= limit {
		body["metadata"].(map[string]any)["nextCursor"] = last
	}
	b, _ := json.Marshal(body)
	writeJSON(w, http.StatusOK, string(b))
}

func (f *fakeRegistry) lastQuery() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1].URL.Query()
}

func writeJSON(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

func startFake(t *testing.T) (*fakeRegistry, *Client) {
	t.Helper()
	f := newFakeRegistry(t)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func names(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Server.Name+"@"+e.Server.Version)
	}
	return out
}
