package catalog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func tempFile(t *testing.T, content string) *File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keyport", FileName)
	if content != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f := NewFile(p)
	f.SetManagedPath("") // never the machine's own managed file
	return f
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConfigDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvConfigDir, dir)
	got, err := ConfigDir()
	if err != nil || got != dir {
		t.Fatalf("ConfigDir = %q, %v; want %q", got, err, dir)
	}
	p, _ := DefaultPath()
	if p != filepath.Join(dir, "servers.yaml") {
		t.Fatalf("DefaultPath = %q", p)
	}
	t.Setenv(EnvConfigDir, "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg"))
	if got, _ := ConfigDir(); got != filepath.Join(dir, "xdg", "keyport") {
		t.Fatalf("ConfigDir without override = %q", got)
	}
}

func TestInitWritesExampleOnce(t *testing.T) {
	t.Parallel()
	f := tempFile(t, "")
	created, err := f.Init()
	if err != nil || !created {
		t.Fatalf("Init = %v, %v", created, err)
	}
	if got := read(t, f.Path()); got != exampleFile {
		t.Fatal("Init wrote something else than the example")
	}
	fi, _ := os.Stat(f.Path())
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode())
	}
	c, err := f.Load()
	if err != nil || !c.Empty() {
		t.Fatalf("the example loads as %v, %v; want an empty catalog", c, err)
	}
	if err := os.WriteFile(f.Path(), []byte("servers: []\n# mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if created, err := f.Init(); err != nil || created {
		t.Fatalf("second Init = %v, %v", created, err)
	}
	if got := read(t, f.Path()); got != "servers: []\n# mine\n" {
		t.Fatal("Init overwrote an existing file")
	}
}

func TestLoadMissingIsEmpty(t *testing.T) {
	t.Parallel()
	c, err := tempFile(t, "").Load()
	if err != nil || !c.Empty() {
		t.Fatalf("Load = %v, %v", c, err)
	}
}

func TestAddToExampleGolden(t *testing.T) {
	t.Parallel()
	f := tempFile(t, "")
	if _, err := f.Init(); err != nil {
		t.Fatal(err)
	}
	servers := []Server{
		{Name: "github", Description: "GitHub", URL: "https://api.githubcopilot.com/mcp/",
			Labels: map[string]string{"team": "platform", "env": "prod"}, Auth: Auth{Type: AuthBearer},
			Tools: Tools{Allow: []string{"get_*", "search_code"}, Deny: []string{"^delete_.*$"}}},
		{Name: "analytics", URL: "https://analytics.example.com/mcp", Headers: map[string]string{"X-Client": "keyport"},
			Auth: Auth{SecretHeaders: []string{"X-API-Key"}}, Audit: Audit{Params: AuditNone},
			Source: &Source{Registry: OfficialRegistryURL, Name: "com.example/acme-analytics", Version: "2.0.0"}},
		{Name: "notes", URL: "https://notes.example.com/mcp", Auth: Auth{Type: AuthOAuth, Scopes: []string{"notes.read"}, CallbackPort: 33418}},
	}
	for _, s := range servers {
		if err := f.Add(s); err != nil {
			t.Fatalf("Add %s: %v", s.Name, err)
		}
	}
	got := read(t, f.Path())
	if !strings.HasPrefix(got, exampleFile[:strings.Index(exampleFile, "servers: []")]) {
		t.Fatal("the example's comments were not kept")
	}
	golden(t, "edit-add.golden.yaml", []byte(got))
	c, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Names(), ",") != "github,analytics,notes" {
		t.Fatalf("names = %q", c.Names())
	}
	for _, want := range servers {
		_ = want.Check()
		got, _ := c.Lookup(want.Name)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", want.Name, got, want)
		}
	}
}

func TestEditKeepsCommentsAndOrderGolden(t *testing.T) {
	t.Parallel()
	before, err := os.ReadFile(filepath.Join("testdata", "edit-before.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f := tempFile(t, string(before))
	c, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	gh, _ := c.Lookup("github")
	gh.Description = "GitHub (work)"
	gh.Tools.Deny = append(gh.Tools.Deny, "merge_*")
	gh.Labels = nil
	if err := f.Update(gh); err != nil {
		t.Fatalf("Update: %v", err)
	}
	tail, _ := c.Lookup("tail")
	tail.URL = "https://tail.example.com/v2/mcp"
	if err := f.Update(tail); err != nil {
		t.Fatalf("Update tail: %v", err)
	}
	if err := f.Remove("legacy"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := f.Add(Server{Name: "new", URL: "https://new.example.com/mcp"}); err != nil {
		t.Fatalf("Add: %v", err)
	}
	got := read(t, f.Path())
	golden(t, "edit-after.golden.yaml", []byte(got))
	for _, keep := range []string{"# My servers. Keep this comment.", "# Work", "# primary", "# never", "# keys in my order", "# Footer comment."} {
		if !strings.Contains(got, keep) {
			t.Errorf("lost comment %q", keep)
		}
	}
	if strings.Contains(got, "Old one") || strings.Contains(got, "legacy") {
		t.Error("the removed server (or its comment) is still there")
	}
}

func TestEditErrors(t *testing.T) {
	t.Parallel()
	const good = "servers:\n  - name: a\n    url: https://a.example\n"
	tests := []struct {
		name, content string
		edit          func(f *File) error
		want          string
		is            error
	}{
		{"add duplicate", good, func(f *File) error { return f.Add(Server{Name: "a", URL: "https://b.example"}) },
			`a server named "a" is already in PATH (line 2); choose another name or update it`, nil},
		{"add invalid", good, func(f *File) error { return f.Add(Server{Name: "B", URL: "http://b.example"}) },
			`server "B": name: "B" is not a valid name: use 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit; url: plain http is allowed only for localhost; use https (or set insecure: true if you really mean it)`, nil},
		{"update missing", good, func(f *File) error { return f.Update(Server{Name: "b", URL: "https://b.example"}) },
			`update "b": no such server in servers.yaml`, ErrNotFound},
		{"remove missing", good, func(f *File) error { return f.Remove("b") },
			`remove "b": no such server in servers.yaml`, ErrNotFound},
		{"syntax error", "servers:\n  - name: a\n   url: x\n", func(f *File) error { return f.Add(Server{Name: "b", URL: "https://b.example"}) },
			"PATH cannot be changed until it parses (Keyport never overwrites a file it cannot read); fix it first:\nPATH:1: YAML: did not find expected '-' indicator", nil},
		{"not a servers file", "- 1\n- 2\n", func(f *File) error { return f.Remove("a") },
			"PATH cannot be changed until it parses (Keyport never overwrites a file it cannot read); fix it first:\nPATH:1: the file must be a mapping with a \"servers\" list (servers: [...])", nil},
		{"duplicate keys", "servers: []\nservers: []\n", func(f *File) error { return f.Add(Server{Name: "b", URL: "https://b.example"}) },
			"PATH cannot be changed until it parses (Keyport never overwrites a file it cannot read); fix it first:\nPATH:2: servers: defined twice (first at line 1)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tempFile(t, tt.content)
			err := tt.edit(f)
			want := strings.ReplaceAll(tt.want, "PATH", f.Path())
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n got %v\nwant %s", err, want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("errors.Is(%v) = false", tt.is)
			}
			if got := read(t, f.Path()); got != tt.content {
				t.Fatalf("the file changed:\n%s", got)
			}
		})
	}
}

// TestEditDespiteOtherBadServer: a server with a bad value does not block
// removing it (or editing others); only unparseable files are refused.
func TestEditDespiteOtherBadServer(t *testing.T) {
	t.Parallel()
	f := tempFile(t, "servers:\n  - name: bad\n    url: http://insecure.example\n  - name: ok\n    url: https://ok.example\n")
	if _, err := f.Load(); err == nil {
		t.Fatal("the file should not load")
	}
	if err := f.Remove("bad"); err != nil {
		t.Fatalf("Remove bad: %v", err)
	}
	c, err := f.Load()
	if err != nil || strings.Join(c.Names(), ",") != "ok" {
		t.Fatalf("after removing the bad server: %v, %v", c, err)
	}
}

func TestEditThroughSymlinkKeepsModeAndLink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "dotfiles", "servers.yaml")
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte("servers: []\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config", "servers.yaml")
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symlinks: %v", err)
	}
	f := NewFile(link)
	if err := f.Add(Server{Name: "a", URL: "https://a.example"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v", err)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o640 {
		t.Fatalf("target mode = %v, want 0640 kept", fi.Mode())
	}
	if !strings.Contains(read(t, target), "name: a") {
		t.Fatal("the target was not edited")
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*", ".servers.yaml.tmp-*")); len(tmp) != 0 {
		t.Fatalf("temp files left: %q", tmp)
	}
}

func TestEditThroughDanglingSymlink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	link := filepath.Join(dir, "servers.yaml")
	if err := os.Symlink("elsewhere.yaml", link); err != nil {
		t.Skipf("no symlinks: %v", err)
	}
	if err := NewFile(link).Add(Server{Name: "a", URL: "https://a.example"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the dangling symlink was replaced by a file")
	}
	if !strings.Contains(read(t, filepath.Join(dir, "elsewhere.yaml")), "name: a") {
		t.Fatal("the link's target was not written")
	}
}

// TestConcurrentEdits: two File values (two processes) adding at once lose
// nothing, thanks to the lock.
func TestConcurrentEdits(t *testing.T) {
	t.Parallel()
	f := tempFile(t, "")
	other := NewFile(f.Path())
	var wg sync.WaitGroup
	for i := range 12 {
		file := f
		if i%2 == 1 {
			file = other
		}
		wg.Go(func() {
			if err := file.Add(Server{Name: fmt.Sprintf("s%d", i), URL: "https://x.example"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	c, err := f.Load()
	if err != nil || len(c.Servers) != 12 {
		t.Fatalf("after concurrent adds: %d servers, %v", len(c.Servers), err)
	}
}

func TestServerHelpers(t *testing.T) {
	t.Parallel()
	s := Server{Name: "a", URL: "https://a.example", Auth: Auth{Type: AuthBearer, SecretHeaders: []string{"x-api-key"}}, TLS: TLS{CAFile: "~/ca.pem"}}
	if got := strings.Join(s.SecretKinds(), ","); got != "bearer,header/X-Api-Key" {
		t.Errorf("SecretKinds = %q", got)
	}
	home, _ := os.UserHomeDir()
	if p, err := s.CAFilePath(); err != nil || p != filepath.Join(home, "ca.pem") {
		t.Errorf("CAFilePath = %q, %v", p, err)
	}
	for url, want := range map[string]bool{"http://localhost:1/": true, "http://127.0.0.2/": true, "http://[::1]:9/": true, "https://a.example": false} {
		if got := (&Server{URL: url}).Loopback(); got != want {
			t.Errorf("Loopback(%s) = %v", url, got)
		}
	}
}
