package state

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestFreshState(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keyport")
	s, warn, err := Load(dir)
	if err != nil || warn != nil {
		t.Fatalf("Load of a missing file: warning %v, err %v", warn, err)
	}
	st := s.Get()
	if st.Version != Version || len(st.Proxies) != 0 || st.HideDemo {
		t.Fatalf("fresh state = %+v", st)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load wrote a file before any change: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("config dir mode = %v, %v; want 0700", fi.Mode(), err)
	}
}

func TestRoundTripGolden(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	steps := []error{
		s.SetProxy("github", Proxy{Enabled: true, Port: 8931}),
		s.SetProxy("demo", Proxy{Enabled: false, Port: 8932}),
		s.SetLocalToken("github", LocalToken{ID: "lt_3f9a", Created: created}),
		s.SetClient("claude-desktop", Client{Enabled: true, Servers: []string{"github", "demo"}}),
		s.SetClient("cursor", Client{Enabled: false, ConfigPath: "/home/u/.cursor/mcp.json"}),
		s.SetWindow(Window{Width: 900, Height: 600, Tab: "servers"}),
		s.SetHideDemo(true),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "state.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("state.json:\n%s\nwant (%s):\n%s", got, golden, want)
	}
	if fi, err := os.Stat(s.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state.json mode = %v, %v; want 0600", fi.Mode(), err)
	}
	again, warn, err := Load(dir)
	if err != nil || warn != nil {
		t.Fatalf("reload: %v, %v", warn, err)
	}
	if a, b := again.Get(), s.Get(); !reflect.DeepEqual(a, b) {
		t.Fatalf("reloaded state differs:\n%+v\n%+v", a, b)
	}
	if err := again.ForgetServer("github"); err != nil {
		t.Fatal(err)
	}
	st := again.Get()
	if _, ok := st.Proxies["github"]; ok {
		t.Error("ForgetServer kept the proxy")
	}
	if _, ok := st.LocalTokens["github"]; ok {
		t.Error("ForgetServer kept the local token id")
	}
	if c := st.Clients["claude-desktop"]; !reflect.DeepEqual(c.Servers, []string{"demo"}) {
		t.Errorf("ForgetServer left claude-desktop servers = %q", c.Servers)
	}
	// Get returns a copy: changing it changes nothing.
	st.Proxies["x"] = Proxy{Enabled: true}
	st.Clients["claude-desktop"].Servers[0] = "changed"
	if again.Get().Proxies["x"].Enabled || again.Get().Clients["claude-desktop"].Servers[0] != "demo" {
		t.Fatal("Get exposed the store's maps")
	}
}

func TestUnknownFieldsKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := `{"version": 2, "proxies": {"a": {"enabled": true, "port": 1234}}, "future_feature": {"x": [1, 2]}}`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	s, warn, err := Load(dir)
	if err != nil || warn != nil {
		t.Fatalf("Load: %v, %v", warn, err)
	}
	if err := s.SetHideDemo(true); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(s.Path())
	if !strings.Contains(string(b), `"future_feature": {`) || !strings.Contains(string(b), `"port": 1234`) {
		t.Fatalf("rewritten state lost fields:\n%s", b)
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content, reason string
	}{
		{"empty", "", "EOF"},
		{"truncated", `{"version": 1, "proxies": {"a": {"enab`, "unexpected EOF"},
		{"not json", "proxies: yes\n", "invalid character 'p' looking for beginning of value"},
		{"wrong type", `{"version": 1, "proxies": []}`, "json: cannot unmarshal array into Go struct field plain.proxies of type map[string]state.Proxy"},
		{"bad port", `{"version": 1, "proxies": {"a": {"enabled": true, "port": 70000}}}`, "proxies.a.port: 70000 is not a port (0-65535)"},
		{"trailing data", `{"version": 1} {"version": 1}`, "trailing data after the JSON object"},
		{"no version", `{"proxies": {}}`, "version 0 is not a Keyport state version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, warn, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if warn == nil {
				t.Fatal("no warning for a corrupt file")
			}
			asides, _ := filepath.Glob(path + ".corrupt-*")
			if len(asides) != 1 {
				t.Fatalf("moved-aside files = %q, want one", asides)
			}
			want := fmt.Sprintf("state: %s was corrupt (%s); moved it to %s and started with a fresh state (proxies are off)", path, tt.reason, filepath.Base(asides[0]))
			if warn.Error() != want {
				t.Fatalf("warning:\n %s\nwant\n %s", warn, want)
			}
			if b, _ := os.ReadFile(asides[0]); string(b) != tt.content {
				t.Fatalf("moved-aside content = %q, want the original", b)
			}
			if st := s.Get(); len(st.Proxies) != 0 || st.Version != Version {
				t.Fatalf("state after corruption = %+v, want fresh", st)
			}
			// The app goes on: the next change writes a good file.
			if err := s.SetProxy("a", Proxy{Enabled: true, Port: 9000}); err != nil {
				t.Fatal(err)
			}
			if _, warn, err := Load(dir); warn != nil || err != nil {
				t.Fatalf("Load after repair: %v, %v", warn, err)
			}
		})
	}
}

func TestUpdateFailureChangesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _, _ := Load(dir)
	if err := s.SetProxy("a", Proxy{Enabled: true, Port: 9000}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(s.Path())
	boom := errors.New("boom")
	if err := s.Update(func(st *State) error { st.HideDemo = true; return boom }); !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	err := s.SetProxy("b", Proxy{Port: -1})
	if want := "state: proxies.b.port: -1 is not a port (0-65535)"; err == nil || err.Error() != want {
		t.Fatalf("bad port: %v, want %q", err, want)
	}
	if err := s.SetProxy("", Proxy{}); err == nil || err.Error() != "state: empty server name" {
		t.Fatalf("empty name: %v", err)
	}
	after, _ := os.ReadFile(s.Path())
	if string(before) != string(after) || s.Get().HideDemo {
		t.Fatal("a failed Update changed the state")
	}
}

// TestTwoProcessesKeepEachOthersChanges uses two Stores on one dir, as the
// tray app and a CLI invocation would: neither loses the other's updates.
func TestTwoProcessesKeepEachOthersChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, _, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b, a, b} {
		wg.Go(func() {
			for j := range 15 {
				if err := s.SetProxy(fmt.Sprintf("s%d-%d", i, j), Proxy{Enabled: true, Port: 10000 + 100*i + j}); err != nil {
					t.Error(err)
					return
				}
				_ = s.Get()
			}
		})
	}
	wg.Wait()
	if err := a.SetHideDemo(true); err != nil { // a re-reads b's changes first
		t.Fatal(err)
	}
	final, _, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(final.Get().Proxies); n != 60 {
		t.Fatalf("final state has %d proxies, want 60 (lost updates)", n)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".state.json.tmp-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temp files left: %q", leftovers)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"version":1,"proxies":{"a":{"enabled":true,"port":8080}}}`))
	f.Add([]byte(`{"version":1,"window":{"width":-1}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, _, err := Load(dir)
		if err != nil {
			t.Fatalf("Load must recover from any content: %v", err)
		}
		if err := s.SetHideDemo(true); err != nil {
			t.Fatalf("state not writable after Load: %v", err)
		}
		if _, warn, err := Load(dir); warn != nil || err != nil {
			t.Fatalf("written state does not load cleanly: %v, %v", warn, err)
		}
	})
}

// TestBadSplitForgotten: a divider position outside 0–1 in state.json is a
// window preference gone wrong, not a corrupt state: it is forgotten and
// everything else (the proxies the user left on) is kept.
func TestBadSplitForgotten(t *testing.T) {
	dir := t.TempDir()
	body := `{"version": 1, "proxies": {"github": {"enabled": true, "port": 8931}}, "window": {"width": 1000, "height": 700, "split": 7}}`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s, warn, err := Load(dir)
	if err != nil || warn != nil {
		t.Fatalf("Load: %v, warning %v", err, warn)
	}
	st := s.Get()
	if st.Window.Split != 0 || st.Window.Width != 1000 || !st.Proxies["github"].Enabled {
		t.Errorf("state = %+v, want the split forgotten and the rest kept", st)
	}
}
