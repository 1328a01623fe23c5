package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Debounce is how long the watcher waits after the last event before it
// reloads: editors save in several steps (truncate + write, write temp +
// rename), and one reload should see the finished file.
const Debounce = 100 * time.Millisecond

// Update is a change of the catalog in effect, sent by a Watcher.
type Update struct {
	// Catalog is the catalog in effect: the new one, or the last good one
	// when Err is set. Never nil.
	Catalog *Catalog
	// Err is the file's problem (a *LoadError for a bad edit): show it, and
	// keep running with Catalog.
	Err error
	// Diff is from the Catalog of the previous Update received (or the
	// initial one) to this Catalog.
	Diff Diff
}

// Watcher reloads servers.yaml whenever it changes on disk (fsnotify on its
// directory, so rename-over saves, deletes and re-creates are all seen; no
// polling) and sends an Update for each change of the catalog or of its
// error. Updates are coalesced: a slow receiver gets the latest state, with
// a Diff from what it received last.
type Watcher struct {
	file *File
	log  *slog.Logger
	fsw  *fsnotify.Watcher
	out  chan Update
	stop chan struct{}
	done chan struct{}
	once sync.Once

	dir     string // the config dir
	parent  string // its parent, watched to see the dir re-created
	targets map[string]bool

	mu     sync.Mutex
	cur    *Catalog
	curErr error
}

// Watch loads the file and starts watching it until ctx ends or Close. The
// initial catalog is Current(); a bad initial file gives an empty catalog
// and its error. Only a failure to set up the watch is returned as err.
func (f *File) Watch(ctx context.Context) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", f.path, err)
	}
	w := &Watcher{
		file: f, log: slog.Default(), fsw: fsw,
		out: make(chan Update), stop: make(chan struct{}), done: make(chan struct{}),
		dir: filepath.Dir(f.path), parent: filepath.Dir(filepath.Dir(f.path)),
		targets: map[string]bool{},
	}
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		fsw.Close()
		return nil, fmt.Errorf("watch %s: create the config dir: %w", f.path, err)
	}
	if err := fsw.Add(w.dir); err != nil {
		fsw.Close()
		return nil, fmt.Errorf("watch %s: %w", w.dir, err)
	}
	// Best effort: seeing the config dir itself deleted and re-created.
	_ = fsw.Add(w.parent)
	w.follow()
	w.cur, w.curErr = f.Load()
	if w.curErr != nil {
		w.cur = &Catalog{Path: f.path}
	}
	go w.run(ctx)
	return w, nil
}

// Updates delivers the changes; it is closed when the watcher stops.
func (w *Watcher) Updates() <-chan Update { return w.out }

// Current is the catalog in effect and the file's current error, if any.
func (w *Watcher) Current() (*Catalog, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur, w.curErr
}

// Close stops the watcher and waits for it to finish.
func (w *Watcher) Close() error {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	return nil
}

// follow records the paths whose events matter: the file and, when it is a
// symlink, its target (whose directory is watched too).
func (w *Watcher) follow() {
	w.targets = map[string]bool{filepath.Clean(w.file.path): true}
	if mp := w.file.ManagedPath(); mp != "" {
		// The organization's managed file: its directory (best effort,
		// it may not exist yet) and, to see that created, the parent.
		w.targets[filepath.Clean(mp)] = true
		if w.fsw.Add(filepath.Dir(mp)) != nil {
			_ = w.fsw.Add(filepath.Dir(filepath.Dir(mp)))
		}
		if t, err := filepath.EvalSymlinks(mp); err == nil && t != filepath.Clean(mp) {
			w.targets[t] = true
			_ = w.fsw.Add(filepath.Dir(t))
		}
	}
	if t, err := filepath.EvalSymlinks(w.file.path); err == nil {
		t, _ = filepath.Abs(t)
		if t != filepath.Clean(w.file.path) {
			w.targets[t] = true
			_ = w.fsw.Add(filepath.Dir(t))
		}
	}
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	defer close(w.out)
	defer w.fsw.Close()

	var (
		timer     = time.NewTimer(time.Hour)
		pending   *Update
		delivered = w.cur
	)
	timer.Stop()
	for {
		var out chan<- Update
		var next Update
		if pending != nil {
			out, next = w.out, *pending
		}
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				timer.Reset(Debounce)
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			// An overflow may have hidden our event: reload to be sure.
			w.log.Warn("catalog watcher", "file", w.file.path, "err", err)
			timer.Reset(Debounce)
		case <-timer.C:
			if u, changed := w.reload(); changed {
				u.Diff = Compare(delivered, u.Catalog)
				pending = &u
			}
		case out <- next:
			delivered, pending = next.Catalog, nil
		}
	}
}

// relevant reports whether ev may change the file; it also re-arms the
// watch on a re-created config dir.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	name := filepath.Clean(ev.Name)
	if name == w.dir && ev.Has(fsnotify.Create) {
		if err := w.fsw.Add(w.dir); err != nil {
			w.log.Warn("catalog watcher: re-watch the config dir", "dir", w.dir, "err", err)
		}
		return true
	}
	if name == w.dir && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
		return true
	}
	if mp := w.file.ManagedPath(); mp != "" && name == filepath.Dir(filepath.Clean(mp)) && ev.Has(fsnotify.Create) {
		_ = w.fsw.Add(name) // the managed file's directory appeared
		return true
	}
	return w.targets[name]
}

// reload loads the file and reports whether the catalog or its error changed.
func (w *Watcher) reload() (Update, bool) {
	w.follow()
	cat, err := w.file.Load()
	if err == nil {
		if _, serr := os.Stat(w.file.path); errors.Is(serr, os.ErrNotExist) {
			err = fmt.Errorf("%s was removed; keeping the last good catalog (re-create the file to change it)", w.file.path)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.curErr != nil && w.curErr.Error() == err.Error() {
			return Update{}, false
		}
		w.curErr = err
		return Update{Catalog: w.cur, Err: err}, true
	}
	if w.curErr == nil && Compare(w.cur, cat).Empty() {
		return Update{}, false
	}
	w.cur, w.curErr = cat, nil
	return Update{Catalog: cat}, true
}
