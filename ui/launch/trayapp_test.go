package launch

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWindowProcessOneAtATime: the tray starts one window process; asking
// again while it runs raises it instead; once it ended, asking starts a
// new one.
func TestWindowProcessOneAtATime(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	starts, release := filepath.Join(dir, "starts"), filepath.Join(dir, "release")
	exe := filepath.Join(dir, "fake-keyport")
	script := "#!/bin/sh\n[ \"$1\" = " + ArgWindow + " ] || exit 3\necho started >> " + starts +
		"\nwhile [ ! -e " + release + " ]; do sleep 0.02; done\nrm -f " + release + "\n"
	if err := os.WriteFile(exe, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	var raised, exited atomic.Int32
	w := &windowProcess{exe: exe, raise: func() { raised.Add(1) }, onExit: func() { exited.Add(1) }}
	count := func() int {
		b, _ := os.ReadFile(starts)
		return strings.Count(string(b), "started")
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	w.open()
	waitFor("the window process", func() bool { return count() == 1 })
	w.open() // running: raise, do not start a second one
	if raised.Load() != 1 {
		t.Errorf("raised %d times, want 1", raised.Load())
	}
	os.WriteFile(release, nil, 0o600) // the user closes the window
	waitFor("the window process to end", func() bool { return exited.Load() == 1 })
	w.wait(5 * time.Second)
	w.open()
	waitFor("a new window process", func() bool { return count() == 2 })
	if n := count(); n != 2 || raised.Load() != 1 {
		t.Errorf("%d starts and %d raises, want 2 and 1", n, raised.Load())
	}
	os.WriteFile(release, nil, 0o600)
	w.wait(5 * time.Second)
}

// TestWindowAskedForWhileClosing: asked for the window just after the user
// closed it (its connection is gone, its process not yet), the tray starts
// a new window once the old process ended, instead of raising a window
// that is going away. (The real-window test met this: the second launch
// found nothing on screen.)
func TestWindowAskedForWhileClosing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	starts, release := filepath.Join(dir, "starts"), filepath.Join(dir, "release")
	exe := filepath.Join(dir, "fake-keyport")
	script := "#!/bin/sh\necho started >> " + starts +
		"\nwhile [ ! -e " + release + " ]; do sleep 0.02; done\nrm -f " + release + "\n"
	if err := os.WriteFile(exe, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	var connected atomic.Bool
	var raised atomic.Int32
	w := &windowProcess{exe: exe, raise: func() { raised.Add(1) }, connected: connected.Load}
	count := func() int {
		b, _ := os.ReadFile(starts)
		return strings.Count(string(b), "started")
	}
	w.open()
	for deadline := time.Now().Add(10 * time.Second); count() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no window process")
		}
	}
	// The window closes: its connection ends, its process lingers a moment.
	w.open()
	time.Sleep(100 * time.Millisecond)
	os.WriteFile(release, nil, 0o600)
	for deadline := time.Now().Add(10 * time.Second); count() != 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no new window after the closing one ended (%d raises)", raised.Load())
		}
	}
	if raised.Load() != 0 {
		t.Errorf("raised a closing window %d times", raised.Load())
	}
	os.WriteFile(release, nil, 0o600)
	w.wait(5 * time.Second)
}
