package registry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"keyport/app/catalog"
)

// TestFakeMatchesFixtures checks the fake registry against the recorded
// pages, so the other tests run against realistic behaviour.
func TestFakeMatchesFixtures(t *testing.T) {
	t.Parallel()
	_, c := startFake(t)
	for _, tc := range []struct {
		file string
		o    ListOptions
	}{
		{"page1.json", ListOptions{Limit: 14, All: true}},
		{"page2.json", ListOptions{Limit: 14, Cursor: "io.github.modelcontextprotocol/filesystem:1.0.2", All: true}},
		{"search-github.json", ListOptions{Search: "github", All: true}},
	} {
		want, err := DecodeList(readFixture(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		got, err := c.List(context.Background(), tc.o)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if !reflect.DeepEqual(got.Entries, want.Servers) || got.NextCursor != want.Metadata.NextCursor {
			t.Errorf("%s: the fake serves %q next %q; the fixture has %q next %q", tc.file,
				names(got.Entries), got.NextCursor, names(want.Servers), want.Metadata.NextCursor)
		}
	}
}

func TestListFiltersByDefault(t *testing.T) {
	t.Parallel()
	f, c := startFake(t)
	p, err := c.List(context.Background(), ListOptions{Limit: 14})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"com.example.email/email-integration-mcp@1.0.0", "com.example/acme-analytics@2.0.0"}
	if got := names(p.Entries); !slices.Equal(got, want) || p.Skipped != 12 {
		t.Fatalf("page = %q (skipped %d), want %q (skipped 12)", got, p.Skipped, want)
	}
	if p.NextCursor != "io.github.modelcontextprotocol/filesystem:1.0.2" {
		t.Fatalf("NextCursor = %q", p.NextCursor)
	}
	if q := f.lastQuery(); q.Get("limit") != "14" || q.Has("search") || q.Has("cursor") {
		t.Fatalf("query = %v", q)
	}
}

func TestSearchFollowsPages(t *testing.T) {
	t.Parallel()
	f, c := startFake(t)
	ctx := context.Background()
	all, err := c.Search(ctx, ListOptions{Limit: 5, All: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 26 || len(f.requests) != 6 {
		t.Fatalf("got %d entries in %d requests, want 26 in 6 pages of at most 5", len(all), len(f.requests))
	}
	streamable, err := c.Search(ctx, ListOptions{Limit: 4}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"com.example.email/email-integration-mcp@1.0.0", "com.example/acme-analytics@2.0.0",
		"io.github.user/remote-weather@2.1.0", "io.modelcontextprotocol.anonymous/hybrid-mcp@1.5.0",
		"io.modelcontextprotocol.anonymous/mcp-fs@2.0.0", "io.modelcontextprotocol.anonymous/multi-tenant-server@1.0.0",
	}
	if got := names(streamable); !slices.Equal(got, want) {
		t.Fatalf("importable = %q\nwant %q", got, want)
	}
	first3, err := c.Search(ctx, ListOptions{Limit: 2}, 3)
	if err != nil || !slices.Equal(names(first3), want[:3]) {
		t.Fatalf("max 3 = %q, %v", names(first3), err)
	}
	found, err := c.Search(ctx, ListOptions{Search: "GitHub"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(found); !slices.Equal(got, []string{"io.github.user/remote-weather@2.1.0"}) {
		t.Fatalf("search github = %q", got)
	}
	if q := f.lastQuery(); q.Get("search") != "GitHub" {
		t.Fatalf("search sent as %q", q.Get("search"))
	}
	everything, err := c.Search(ctx, ListOptions{Search: "github", All: true}, 0)
	if err != nil || len(everything) != 15 {
		t.Fatalf("search github, all = %d entries, %v; want the fixture's 15", len(everything), err)
	}
}

func TestLatest(t *testing.T) {
	t.Parallel()
	f, c := startFake(t)
	e, err := c.Latest(context.Background(), "io.modelcontextprotocol.anonymous/hybrid-mcp")
	if err != nil {
		t.Fatal(err)
	}
	want, err := DecodeEntry(readFixture(t, "server-latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("Latest = %+v\nwant %+v", e, want)
	}
	if got := f.requests[0].URL.EscapedPath(); got != "/v0.1/servers/io.modelcontextprotocol.anonymous%2Fhybrid-mcp/versions/latest" {
		t.Fatalf("path = %s", got)
	}
	// Two versions in the registry: the latest one is returned.
	if e, err := c.Latest(context.Background(), "io.github.domdomegg/airtable-mcp-server"); err != nil || e.Server.Version != "1.7.3" {
		t.Fatalf("airtable latest = %v, %v", e, err)
	}
	_, err = c.Latest(context.Background(), "io.example/nope")
	if !errors.Is(err, ErrNotFound) || err.Error() != `registry test: "io.example/nope": not found in the registry` {
		t.Fatalf("missing server: %v", err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	truncated := readFixture(t, "bad/truncated.json")
	wrongShape := readFixture(t, "bad/wrong-shape.json")
	html := readFixture(t, "bad/html-502.html")
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string // after "registry test: GET URL: "
	}{
		{"truncated", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, string(truncated)) },
			"invalid JSON: the response ends too early (truncated)"},
		{"wrong shape", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, string(wrongShape)) },
			"unexpected JSON shape: servers: want a list, got object"},
		{"html 502", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write(html)
		}, "HTTP 502 Bad Gateway (a text/html page, not the registry API: a proxy or gateway error?)"},
		{"500 with a JSON error", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 500, `{"error":"database unavailable"}`)
		}, "HTTP 500 Internal Server Error: database unavailable"},
		{"500 empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) },
			"HTTP 500 Internal Server Error"},
		{"422 problem", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(422)
			_, _ = w.Write([]byte(`{"title":"Unprocessable Entity","detail":"limit must be 1-100"}`))
		}, "HTTP 422 Unprocessable Entity: Unprocessable Entity: limit must be 1-100"},
		{"html 200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte("<html>login</html>"))
		}, "got text/html, not JSON: is this an MCP Registry v0.1 endpoint?"},
		{"not a registry", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `{"items":[]}`) },
			`unexpected JSON shape: no "servers" list (is this an MCP Registry v0.1 endpoint?)`},
		{"entry without name", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `{"servers":[{"server":{}}]}`) },
			`servers[0]: unexpected JSON shape: an entry has no "server.name"`},
		{"trailing garbage", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `{"servers":[]} x`) },
			"invalid JSON: trailing data after the response"},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, "no answer within 200ms (the registry is slow or unreachable; try again)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c, err := New(srv.URL+"/", Options{Name: "test", Timeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.List(context.Background(), ListOptions{})
			want := "registry test: GET " + srv.URL + "/v0.1/servers?limit=30: " + tt.want
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n got %v\nwant %s", err, want)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c, _ := New(base, Options{})
	_, err := c.List(context.Background(), ListOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "registry "+strings.TrimPrefix(base, "http://")+": GET "+base+"/v0.1/servers?limit=30: dial tcp ") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error = %v", err)
	}
}

func TestSearchStopsOnARepeatedCursor(t *testing.T) {
	t.Parallel()
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		writeJSON(w, 200, `{"servers":[],"metadata":{"nextCursor":"same"}}`)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, Options{})
	if _, err := c.Search(context.Background(), ListOptions{}, 0); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d requests, want 2 (stop when the cursor repeats)", n)
	}
}

func TestSearchAllKeepsGoodResults(t *testing.T) {
	t.Parallel()
	_, good := startFake(t)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer bad.Close()
	broken, _ := New(bad.URL, Options{Name: "corp"})
	res, err := SearchAll(context.Background(), []*Client{broken, good}, ListOptions{Search: "weather"}, 10)
	if len(res) != 1 || res[0].Registry != good || res[0].Entry.Server.Name != "io.github.user/remote-weather" {
		t.Fatalf("results = %+v", res)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "registry corp: GET ") || !strings.HasSuffix(err.Error(), "HTTP 503 Service Unavailable") {
		t.Fatalf("err = %v", err)
	}
}

func TestNewValidatesBase(t *testing.T) {
	t.Parallel()
	for base, want := range map[string]string{
		"http://registry.example.com":     `registry URL "http://registry.example.com": use https://host (http only for localhost)`,
		"registry.example.com":            `registry URL "registry.example.com": use https://host (http only for localhost)`,
		"https://r.example.com/?x=1":      `registry URL "https://r.example.com/?x=1": no query, fragment or credentials, just https://host[/path]`,
		"https://registry.example.com/":   "",
		"http://127.0.0.1:9999":           "",
		catalog.OfficialRegistryURL + "/": "",
	} {
		c, err := New(base, Options{})
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("New(%q) = %q, want %q", base, got, want)
		}
		if err == nil && strings.HasSuffix(c.Base(), "/") {
			t.Errorf("Base() = %q keeps a trailing slash", c.Base())
		}
	}
}

func TestNewFromCatalog(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Parse("s.yaml", []byte("registries:\n  - {name: corp, url: \"https://r.corp.example\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := NewFromCatalog(cat, Options{})
	if err != nil || len(cs) != 2 || cs[0].Name() != "official" || cs[0].Base() != catalog.OfficialRegistryURL || cs[1].Name() != "corp" {
		t.Fatalf("clients = %v, %v", cs, err)
	}
}
