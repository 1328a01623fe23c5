package catalog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// next waits for the next Update. The timeout only guards against a hang;
// speed is measured by BenchmarkWatchLatency.
func next(t *testing.T, w *Watcher) Update {
	t.Helper()
	select {
	case u, ok := <-w.Updates():
		if !ok {
			t.Fatal("Updates closed")
		}
		return u
	case <-time.After(20 * time.Second):
		t.Fatal("no update after 20s")
	}
	return Update{}
}

func serversYAML(servers ...string) string {
	var b strings.Builder
	b.WriteString("# test catalog\nservers:\n")
	for _, s := range servers {
		name, url, _ := strings.Cut(s, "=")
		if url == "" {
			url = "https://" + name + ".example.com/mcp"
		}
		fmt.Fprintf(&b, "  - name: %s\n    url: %s\n", name, url)
	}
	return b.String()
}

func writeInPlace(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// renameOver saves as many editors do: a temp file renamed over the original.
func renameOver(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".servers.yaml.swp")
	writeInPlace(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func startWatch(t *testing.T, content string) (*File, *Watcher) {
	t.Helper()
	f := tempFile(t, content)
	w, err := f.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return f, w
}

func checkUpdate(t *testing.T, u Update, names string, d Diff, errText string) {
	t.Helper()
	if got := strings.Join(u.Catalog.Names(), ","); got != names {
		t.Errorf("catalog = %q, want %q", got, names)
	}
	if !slices.Equal(u.Diff.Added, d.Added) || !slices.Equal(u.Diff.Changed, d.Changed) || !slices.Equal(u.Diff.Removed, d.Removed) {
		t.Errorf("diff = %+v, want %+v", u.Diff, d)
	}
	gotErr := ""
	if u.Err != nil {
		gotErr = u.Err.Error()
	}
	if gotErr != errText {
		t.Errorf("err = %q, want %q", gotErr, errText)
	}
}

func TestWatchEdits(t *testing.T) {
	t.Parallel()
	f, w := startWatch(t, serversYAML("a"))
	if c, err := w.Current(); err != nil || strings.Join(c.Names(), ",") != "a" {
		t.Fatalf("Current = %v, %v", c, err)
	}
	p := f.Path()

	writeInPlace(t, p, serversYAML("a", "b"))
	checkUpdate(t, next(t, w), "a,b", Diff{Added: []string{"b"}}, "")

	renameOver(t, p, serversYAML("a=https://a2.example.com/mcp", "b"))
	checkUpdate(t, next(t, w), "a,b", Diff{Changed: []string{"a"}}, "")

	// An invalid edit keeps the last good catalog and reports the error.
	writeInPlace(t, p, serversYAML("a=http://a.example.com/mcp", "b"))
	u := next(t, w)
	checkUpdate(t, u, "a,b", Diff{}, p+":4: servers[0].url: plain http is allowed only for localhost; use https (or set insecure: true if you really mean it)")
	if c, err := w.Current(); err == nil || strings.Join(c.Names(), ",") != "a,b" || c.Servers[0].URL != "https://a2.example.com/mcp" {
		t.Fatalf("Current after a bad edit = %v, %v; want the last good catalog and the error", c, err)
	}

	// Fixing it removes a and b, adds c: the diff is from the last good one.
	writeInPlace(t, p, serversYAML("c"))
	checkUpdate(t, next(t, w), "c", Diff{Added: []string{"c"}, Removed: []string{"a", "b"}}, "")

	// Delete and re-create.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	checkUpdate(t, next(t, w), "c", Diff{}, p+" was removed; keeping the last good catalog (re-create the file to change it)")
	writeInPlace(t, p, serversYAML("c", "d"))
	checkUpdate(t, next(t, w), "c,d", Diff{Added: []string{"d"}}, "")

	// Vim: the original is renamed to a backup, then a new file is written.
	if err := os.Rename(p, p+"~"); err != nil {
		t.Fatal(err)
	}
	writeInPlace(t, p, serversYAML("d"))
	for {
		u := next(t, w)
		if u.Err == nil {
			checkUpdate(t, u, "d", Diff{Removed: []string{"c"}}, "")
			break
		}
		// The moment between the rename and the write may be seen as a removal.
	}

	// Keyport's own edits arrive the same way.
	if err := f.Add(Server{Name: "e", URL: "https://e.example.com/mcp"}); err != nil {
		t.Fatal(err)
	}
	checkUpdate(t, next(t, w), "d,e", Diff{Added: []string{"e"}}, "")
}

// TestWatchIgnoresOtherFiles: other files in the config dir (state.json,
// the lock, temp files) and no-op saves send nothing.
func TestWatchIgnoresOtherFiles(t *testing.T) {
	t.Parallel()
	f, w := startWatch(t, serversYAML("a"))
	dir := filepath.Dir(f.Path())
	writeInPlace(t, filepath.Join(dir, "state.json"), "{}")
	writeInPlace(t, filepath.Join(dir, "servers.yaml.bak"), "x")
	writeInPlace(t, f.Path(), serversYAML("a")+"# a comment changes nothing\n")
	time.Sleep(3 * Debounce) // let any (wrong) reload happen first
	writeInPlace(t, f.Path(), serversYAML("a", "z"))
	checkUpdate(t, next(t, w), "a,z", Diff{Added: []string{"z"}}, "")
}

func TestWatchCoalesces(t *testing.T) {
	t.Parallel()
	f, w := startWatch(t, serversYAML("a"))
	for i := range 20 {
		writeInPlace(t, f.Path(), serversYAML("a", fmt.Sprintf("n%d", i)))
	}
	// However the writes were grouped, the last update holds the last file,
	// and its diff is from what this receiver saw before.
	for {
		u := next(t, w)
		if strings.Join(u.Catalog.Names(), ",") == "a,n19" {
			if len(u.Diff.Added) != 1 || u.Diff.Added[0] != "n19" {
				t.Fatalf("diff = %+v", u.Diff)
			}
			return
		}
	}
}

func TestWatchBadInitialFile(t *testing.T) {
	t.Parallel()
	f, w := startWatch(t, "servers: {\n")
	c, err := w.Current()
	if err == nil || !c.Empty() {
		t.Fatalf("Current = %v, %v; want empty and an error", c, err)
	}
	writeInPlace(t, f.Path(), serversYAML("a"))
	checkUpdate(t, next(t, w), "a", Diff{Added: []string{"a"}}, "")
}

func TestWatchSymlinkedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "dotfiles", "keyport.yaml")
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		t.Fatal(err)
	}
	writeInPlace(t, target, serversYAML("a"))
	link := filepath.Join(dir, "config", "servers.yaml")
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symlinks: %v", err)
	}
	w, err := NewFile(link).Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	writeInPlace(t, target, serversYAML("a", "b"))
	checkUpdate(t, next(t, w), "a,b", Diff{Added: []string{"b"}}, "")
}

func TestWatchConfigDirRecreated(t *testing.T) {
	t.Parallel()
	f, w := startWatch(t, serversYAML("a"))
	dir := filepath.Dir(f.Path())
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	u := next(t, w)
	if u.Err == nil || strings.Join(u.Catalog.Names(), ",") != "a" {
		t.Fatalf("after removing the dir: %v, %v", u.Catalog.Names(), u.Err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The watch on the new dir may be set up after the first write: write
	// until an update arrives with the new content.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		writeInPlace(t, f.Path(), serversYAML("a", "b"))
		select {
		case u := <-w.Updates():
			if u.Err == nil {
				checkUpdate(t, u, "a,b", Diff{Added: []string{"b"}}, "")
				return
			}
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Fatal("no update after the config dir was re-created")
}

func TestWatchClose(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := tempFile(t, serversYAML("a")).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, ok := <-w.Updates(); ok {
		t.Fatal("Updates not closed after ctx ended")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
