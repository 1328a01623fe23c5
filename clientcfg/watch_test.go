package clientcfg

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// waitTimeout bounds every wait for an event; generous, since a slow CI
// machine under -race must not fail the tests. No test asserts on timing.
const waitTimeout = 10 * time.Second

type watchRig struct {
	t     *testing.T
	home  string
	ed    *Editor
	w     *Watcher
	ch    <-chan Changed
	evals chan string
	wants func(Target) []Want
}

func newWatchRig(t *testing.T, targets ...Target) *watchRig {
	t.Helper()
	r := &watchRig{t: t, home: t.TempDir(), ed: newTestEditor(t)}
	r.wants = func(Target) []Want { return []Want{remoteWant("gh", "4100")} }
	w, err := NewWatcher(r.ed, WatchOptions{Wants: func(tg Target) []Want { return r.wants(tg) }, Debounce: 20 * time.Millisecond}, targets...)
	if err != nil {
		t.Fatal(err)
	}
	r.w = w
	r.evals = make(chan string, 1000)
	w.evaluated = r.evals
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		for range r.ch {
		}
	})
	r.ch = w.Watch(ctx)
	return r
}

// next returns the next event, failing the test after waitTimeout.
func (r *watchRig) next() Changed {
	r.t.Helper()
	select {
	case c, ok := <-r.ch:
		if !ok {
			r.t.Fatal("watcher channel closed")
		}
		return c
	case <-time.After(waitTimeout):
		r.t.Fatal("no event from the watcher")
	}
	return Changed{}
}

// until returns the first event for which ok is true, skipping others (a
// file written in place may be seen half-written first).
func (r *watchRig) until(what string, ok func(Changed) bool) Changed {
	r.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case c, open := <-r.ch:
			if !open {
				r.t.Fatal("watcher channel closed")
			}
			if ok(c) {
				return c
			}
		case <-deadline:
			r.t.Fatalf("no event %s", what)
		}
	}
}

func hasState(s State) func(Changed) bool {
	return func(c Changed) bool { return c.Err == nil && len(c.Status) > 0 && c.Status[0].State == s }
}

// settle waits until the watcher has evaluated path (after our own write,
// which must not produce an event).
func (r *watchRig) settle(path string) {
	r.t.Helper()
	key := targetKey(path)
	deadline := time.After(waitTimeout)
	for {
		select {
		case k := <-r.evals:
			if k == key {
				return
			}
		case <-deadline:
			r.t.Fatalf("the watcher never evaluated %s", path)
		}
	}
}

// saveByRename writes content the way editors do: a temp file renamed over
// the target.
func saveByRename(t *testing.T, p string, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(p), ".~"+filepath.Base(p)+".swp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

const okCursor = `{"mcpServers": {"keyport-gh": {"url": "http://127.0.0.1:4100/mcp", "headers": {"Authorization": "Bearer local-token-gh"}}}}`
const staleCursor = `{"mcpServers": {"keyport-gh": {"url": "http://127.0.0.1:4999/mcp", "headers": {"Authorization": "Bearer local-token-gh"}}}}`

func stateOf(t *testing.T, c Changed) State {
	t.Helper()
	if c.Err != nil {
		t.Fatalf("event error: %v", c.Err)
	}
	if len(c.Status) == 0 {
		t.Fatalf("event without status: %+v", c)
	}
	return c.Status[0].State
}

func TestWatchRenameOverAndInPlace(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	p := filepath.Join(home, ".cursor", "mcp.json")
	writeFile(t, p, []byte(okCursor), 0o600)
	r := newWatchRig(t, cursorTarget(p))
	saveByRename(t, p, staleCursor)
	c := r.next()
	if c.Target.Path != p || !c.Exists || stateOf(t, c) != StateStale || c.ByKeyport {
		t.Fatalf("after rename-over save: %+v", c)
	}
	// An in-place write (truncate + write) is seen too.
	if err := os.WriteFile(p, []byte(okCursor), 0o600); err != nil {
		t.Fatal(err)
	}
	r.until("after the in-place write", hasState(StateOK))
}

func TestWatchIgnoresOwnWritesAndOtherSections(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	p := filepath.Join(home, ".claude.json")
	writeFile(t, p, readInput(t, "claude-code.json"), 0o600)
	cc, _ := Lookup("claude-code")
	tg := Target{Client: cc, Path: p}
	r := newWatchRig(t, tg)
	// Keyport's own install: evaluated, not reported.
	if _, err := r.ed.Install(tg, remoteWant("gh", "4100")); err != nil {
		t.Fatal(err)
	}
	r.settle(p)
	// Claude Code bumps a counter: the servers are unchanged, not reported.
	b := read(t, p)
	saveByRename(t, p, string(replaceOnce(b, `"numStartups": 42`, `"numStartups": 43`)))
	r.settle(p)
	// A real outside change to the servers: the first event is this one
	// (had either earlier write been reported, the first would say ok).
	b = read(t, p)
	saveByRename(t, p, string(replaceOnce(b, `"url": "http://127.0.0.1:4100/mcp"`, `"url": "http://127.0.0.1:4999/mcp"`)))
	c := r.next()
	if stateOf(t, c) != StateStale || c.ByKeyport {
		t.Fatalf("first event: %+v", c)
	}
	if !containsBytes(read(t, p), "numStartups\": 43") {
		t.Fatal("fixture edit lost")
	}
}

func TestWatchOtherKeyportProcess(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, p, []byte(okCursor), 0o600)
	r := newWatchRig(t, cursorTarget(p))
	// Another Keyport process: another Editor on the same state directory.
	other, err := NewEditor(Options{StateDir: r.ed.opts.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Install(cursorTarget(p), remoteWant("gh", "4200")); err != nil {
		t.Fatal(err)
	}
	c := r.next()
	if !c.ByKeyport || stateOf(t, c) != StateStale {
		t.Fatalf("event: %+v", c)
	}
}

func TestWatchDeleteAndRecreate(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	p := filepath.Join(home, ".cursor", "mcp.json")
	writeFile(t, p, []byte(okCursor), 0o600)
	r := newWatchRig(t, cursorTarget(p))
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	c := r.next()
	if c.Exists || stateOf(t, c) != StateMissing {
		t.Fatalf("after delete: %+v", c)
	}
	writeFile(t, p, []byte(staleCursor), 0o600)
	r.until("after re-create", hasState(StateStale))
	// The whole directory goes and comes back.
	if err := os.RemoveAll(filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	r.until("after removing the directory", func(c Changed) bool { return !c.Exists })
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	saveByRename(t, p, okCursor)
	if c := r.next(); !c.Exists || stateOf(t, c) != StateOK {
		t.Fatalf("after re-creating the directory: %+v", c)
	}
}

func TestWatchDirectoryCreatedLater(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	// Nothing below home exists yet: ~/.config/Code/User/mcp.json.
	vs, _ := Lookup("vscode")
	p := filepath.Join(home, ".config", "Code", "User", "mcp.json")
	r := newWatchRig(t, Target{Client: vs, Path: p})
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, []byte(`{"servers": {"keyport-gh": {"type": "http", "url": "http://127.0.0.1:4100/mcp", "headers": {"Authorization": "Bearer local-token-gh"}}}}`), 0o600)
	if c := r.until("for the new file", hasState(StateOK)); !c.Exists {
		t.Fatalf("event: %+v", c)
	}
	// Later edits in the new directory are seen (it is watched now).
	saveByRename(t, p, `{"servers": {}}`)
	if c := r.next(); stateOf(t, c) != StateMissing {
		t.Fatalf("after edit in the new directory: %+v", c)
	}
}

func TestWatchSymlinkTarget(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	real := filepath.Join(root, "dotfiles", "mcp.json")
	writeFile(t, real, []byte(okCursor), 0o600)
	link := filepath.Join(root, "home", ".cursor", "mcp.json")
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	r := newWatchRig(t, cursorTarget(link))
	saveByRename(t, real, staleCursor) // edited in the dotfiles repo
	if c := r.next(); c.Target.Path != link || stateOf(t, c) != StateStale {
		t.Fatalf("event: %+v", c)
	}
}

func TestWatchInvalidThenFixed(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, p, []byte(okCursor), 0o600)
	r := newWatchRig(t, cursorTarget(p))
	saveByRename(t, p, `{"mcpServers": {`)
	c := r.next()
	var ce *ConfigError
	if !errors.As(c.Err, &ce) || ce.Line != 1 {
		t.Fatalf("event for a broken file: %+v", c)
	}
	saveByRename(t, p, staleCursor)
	if c := r.next(); stateOf(t, c) != StateStale {
		t.Fatalf("after the fix: %+v", c)
	}
}

func TestWatchAddRemoveWhileRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p1 := filepath.Join(dir, "a", "mcp.json")
	p2 := filepath.Join(dir, "b", "mcp.json")
	writeFile(t, p1, []byte(okCursor), 0o600)
	writeFile(t, p2, []byte(okCursor), 0o600)
	r := newWatchRig(t)
	if err := r.w.Add(cursorTarget(p1)); err != nil {
		t.Fatal(err)
	}
	saveByRename(t, p1, staleCursor)
	if c := r.next(); c.Target.Path != p1 {
		t.Fatalf("event for %s, want %s", c.Target.Path, p1)
	}
	if err := r.w.Add(cursorTarget(p2)); err != nil {
		t.Fatal(err)
	}
	r.w.Remove(cursorTarget(p1))
	if got := r.w.Targets(); len(got) != 1 || got[0].Path != p2 {
		t.Fatalf("targets = %+v", got)
	}
	// p1 is no longer watched: the first event after editing both is p2's.
	saveByRename(t, p1, okCursor)
	saveByRename(t, p2, staleCursor)
	if c := r.next(); c.Target.Path != p2 {
		t.Fatalf("event for %s after it was removed", c.Target.Path)
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	t.Parallel()
	ed := newTestEditor(t)
	w, err := NewWatcher(ed, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := w.Watch(ctx)
	if again := w.Watch(ctx); again == nil {
		t.Fatal("nil channel")
	} else if _, ok := <-again; ok {
		t.Fatal("second Watch returned a live channel")
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(waitTimeout):
		t.Fatal("channel not closed after cancel")
	}
	if err := w.Add(cursorTarget(filepath.Join(t.TempDir(), "x.json"))); err == nil {
		t.Error("Add after close succeeded")
	}
	if _, err := NewWatcher(nil, WatchOptions{}); err == nil {
		t.Error("a watcher without an Editor was made")
	}
}

func replaceOnce(b []byte, old, new string) []byte {
	if !bytes.Contains(b, []byte(old)) {
		panic("fixture text not found: " + old)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func containsBytes(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
