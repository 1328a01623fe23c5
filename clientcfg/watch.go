package clientcfg

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Changed reports that the servers section of a watched file changed (or
// the file appeared, disappeared, or became unreadable).
type Changed struct {
	Target Target
	// Exists reports whether the file exists now.
	Exists bool
	// Status is the fresh status (Editor.Status) for the target's wants;
	// nil when WatchOptions.Wants is nil or Err is set.
	Status []EntryStatus
	// Err is set when the file cannot be read or parsed (e.g. a
	// *ConfigError while the user is half-way through an edit).
	Err error
	// ByKeyport reports that the change was Keyport's own, made by another
	// Keyport process (this Editor's own writes are not reported at all).
	ByKeyport bool
}

// WatchOptions configure a Watcher.
type WatchOptions struct {
	// Wants returns the servers Keyport wants in a target, for the status in
	// Changed events; nil reports no status.
	Wants func(Target) []Want
	// Debounce is how long a file must be quiet before it is read; default
	// 50ms.
	Debounce time.Duration
	// Logger gets debug logs; default slog.Default().
	Logger *slog.Logger
}

// Watcher reports changes to client config files made outside this Editor.
// It watches the directory of each file with fsnotify (editors save by
// renaming a new file over the old one), or the nearest existing ancestor
// while the directory does not exist yet, and the files symlinks point at.
// Events are debounced per file; a Changed is sent only when the file's
// servers section actually changed. There is no polling.
type Watcher struct {
	ed   *Editor
	opts WatchOptions
	log  *slog.Logger
	fsw  *fsnotify.Watcher

	mu      sync.Mutex
	targets map[string]*watched // by cleaned target path
	dirs    map[string]int      // watched directory → number of targets using it
	pending map[string]bool
	started bool
	closed  bool

	wake chan struct{}
	done chan struct{}

	// evaluated, when set (tests), receives each target path after it was
	// evaluated, whether or not a Changed was sent.
	evaluated chan string
}

type watched struct {
	t        Target
	key      string
	interest []string // the target path and the files its symlinks lead to
	dirs     []string // directories watched for it
	fp       string   // fingerprint of the servers section last seen
	fileSum  string   // sum of the whole file last seen
	timer    *time.Timer
}

// NewWatcher returns a Watcher of targets; changes made through ed are
// recognised as Keyport's own. Call Watch to receive events.
func NewWatcher(ed *Editor, opts WatchOptions, targets ...Target) (*Watcher, error) {
	if ed == nil {
		return nil, errors.New("NewWatcher needs the Editor whose writes are Keyport's own")
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		ed:      ed,
		opts:    opts,
		log:     opts.Logger,
		fsw:     fsw,
		targets: map[string]*watched{},
		dirs:    map[string]int{},
		pending: map[string]bool{},
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	for _, t := range targets {
		if err := w.Add(t); err != nil {
			fsw.Close()
			return nil, err
		}
	}
	return w, nil
}

func targetKey(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return filepath.Clean(p)
}

// Add starts watching t (replacing an earlier target with the same path).
// The file's state when Add returns is the baseline: later changes are
// reported, the current state is not (read it with Editor.Status).
func (w *Watcher) Add(t Target) error {
	key := targetKey(t.Path)
	wt := &watched{t: t, key: key}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("the watcher is closed")
	}
	if old, ok := w.targets[key]; ok {
		w.dropLocked(old)
	}
	w.targets[key] = wt
	// Watch first, then read the baseline: a change in between is either
	// in the baseline or reported.
	err := w.rewatchLocked(wt)
	w.mu.Unlock()
	fp, fileSum, _, _ := w.fingerprint(&watched{t: t, key: key})
	w.mu.Lock()
	if wt.fp == "" {
		wt.fp, wt.fileSum = fp, fileSum
	}
	w.mu.Unlock()
	return err
}

// Remove stops watching t.
func (w *Watcher) Remove(t Target) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt, ok := w.targets[targetKey(t.Path)]; ok {
		w.dropLocked(wt)
		delete(w.targets, wt.key)
		delete(w.pending, wt.key)
	}
}

// Targets returns the watched targets, sorted by path.
func (w *Watcher) Targets() []Target {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Target, 0, len(w.targets))
	for _, wt := range w.targets {
		out = append(out, wt.t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func (w *Watcher) dropLocked(wt *watched) {
	if wt.timer != nil {
		wt.timer.Stop()
	}
	for _, d := range wt.dirs {
		w.unrefLocked(d)
	}
	wt.dirs = nil
}

func (w *Watcher) unrefLocked(d string) {
	w.dirs[d]--
	if w.dirs[d] <= 0 {
		delete(w.dirs, d)
		_ = w.fsw.Remove(d)
	}
}

// linkChain returns p and every file its symlinks lead to.
func linkChain(p string) []string {
	chain := []string{p}
	for range 40 {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		dst, err := os.Readlink(p)
		if err != nil {
			break
		}
		if !filepath.IsAbs(dst) {
			dst = filepath.Join(filepath.Dir(p), dst)
		}
		p = filepath.Clean(dst)
		chain = append(chain, p)
	}
	return chain
}

// nearestDir returns the nearest existing directory at or above dir.
func nearestDir(dir string) string {
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

// rewatchLocked points the directory watches of wt at where its files are
// (or would appear) now. Directories are (re-)added every time: one that
// was deleted and re-created lost its kernel watch.
func (w *Watcher) rewatchLocked(wt *watched) error {
	wt.interest = linkChain(wt.key)
	set := map[string]bool{}
	var dirs []string
	for _, p := range wt.interest {
		d := nearestDir(filepath.Dir(p))
		if !set[d] {
			set[d] = true
			dirs = append(dirs, d)
		}
	}
	var firstErr error
	for _, d := range dirs {
		if err := w.fsw.Add(d); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	old := wt.dirs
	wt.dirs = dirs
	for _, d := range dirs {
		w.dirs[d]++
	}
	for _, d := range old {
		w.unrefLocked(d)
	}
	if firstErr != nil {
		return firstErr
	}
	return nil
}

// relevant reports whether an event on name can affect wt: name is one of
// its files or a directory above one of them.
func (wt *watched) relevant(name string) bool {
	for _, p := range wt.interest {
		if name == p || strings.HasPrefix(p, name+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// Watch starts the watcher and returns its events; the channel is closed
// when ctx is done. Call it once; a Watcher that is closed or already
// watching returns a closed channel.
func (w *Watcher) Watch(ctx context.Context) <-chan Changed {
	out := make(chan Changed, 16)
	w.mu.Lock()
	if w.started || w.closed {
		w.mu.Unlock()
		close(out)
		return out
	}
	w.started = true
	w.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.readEvents(ctx) }()
	go func() { defer wg.Done(); w.work(ctx, out) }()
	go func() {
		<-ctx.Done()
		w.Close()
		wg.Wait()
		close(out)
	}()
	return out
}

// Close stops the watcher.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	for _, wt := range w.targets {
		if wt.timer != nil {
			wt.timer.Stop()
		}
	}
	w.mu.Unlock()
	close(w.done)
	return w.fsw.Close()
}

func (w *Watcher) readEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.done:
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			w.handle(filepath.Clean(ev.Name))
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.log.Warn("client config watcher", "err", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.mu.Lock()
				for _, wt := range w.targets {
					w.scheduleLocked(wt)
				}
				w.mu.Unlock()
			}
		}
	}
}

func (w *Watcher) handle(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wt := range w.targets {
		if !wt.relevant(name) {
			continue
		}
		if err := w.rewatchLocked(wt); err != nil {
			w.log.Debug("watch client config directory", "path", wt.key, "err", err)
		}
		w.scheduleLocked(wt)
	}
}

func (w *Watcher) scheduleLocked(wt *watched) {
	if w.closed {
		return
	}
	key := wt.key
	if wt.timer == nil {
		wt.timer = time.AfterFunc(w.opts.Debounce, func() { w.fire(key) })
		return
	}
	wt.timer.Reset(w.opts.Debounce)
}

func (w *Watcher) fire(key string) {
	w.mu.Lock()
	if _, ok := w.targets[key]; ok {
		w.pending[key] = true
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Watcher) work(ctx context.Context, out chan<- Changed) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.done:
			return
		case <-w.wake:
		}
		w.mu.Lock()
		var todo []*watched
		for key := range w.pending {
			if wt, ok := w.targets[key]; ok {
				todo = append(todo, wt)
			}
		}
		w.pending = map[string]bool{}
		w.mu.Unlock()
		for _, wt := range todo {
			ch, send := w.evaluate(wt)
			if w.evaluated != nil {
				w.evaluated <- wt.key
			}
			if !send {
				continue
			}
			select {
			case out <- ch:
			case <-ctx.Done():
				return
			case <-w.done:
				return
			}
		}
	}
}

// fingerprint reads the target's file: the fingerprint of its servers
// section (or "absent" / "error"), the sum of the whole file, the parsed
// document and the error that made it unreadable.
func (w *Watcher) fingerprint(wt *watched) (fp, fileSum string, d *doc, err error) {
	file, err := resolveLinks(wt.key)
	if err != nil {
		return "error: " + err.Error(), "", nil, err
	}
	raw, info, err := readFile(file)
	if err != nil {
		return "error: " + err.Error(), "", nil, err
	}
	if info == nil {
		d, _ = parseDoc(file, nil)
		return "absent", "absent", d, nil
	}
	fileSum = sum(raw)
	if fileSum == wt.fileSum && wt.fp != "" {
		return wt.fp, fileSum, nil, nil
	}
	d, err = parseDoc(file, raw)
	if err != nil {
		return "error: " + err.Error(), fileSum, nil, err
	}
	sec, err := d.section(wt.t.Client.RootKey)
	if err != nil {
		return "error: " + err.Error(), fileSum, nil, err
	}
	if sec.val == nil {
		return "none", fileSum, d, nil
	}
	return "servers " + sum(d.valueBytes(sec.val)), fileSum, d, nil
}

// evaluate re-reads wt's file and says whether to report it.
func (w *Watcher) evaluate(wt *watched) (Changed, bool) {
	w.mu.Lock()
	probe := &watched{t: wt.t, key: wt.key, fp: wt.fp, fileSum: wt.fileSum}
	w.mu.Unlock()
	fp, fileSum, d, err := w.fingerprint(probe)
	w.mu.Lock()
	wt.fp, wt.fileSum = fp, fileSum
	w.mu.Unlock()
	if fp == probe.fp {
		return Changed{}, false
	}
	file, _ := resolveLinks(wt.key)
	inProcess, byKeyport := w.ed.wroteByUs(file, fileSum)
	if inProcess {
		w.log.Debug("client config changed by this Keyport", "path", wt.key)
		return Changed{}, false
	}
	ch := Changed{Target: wt.t, Exists: fp != "absent", ByKeyport: byKeyport, Err: err}
	if err == nil && w.opts.Wants != nil && d != nil {
		ch.Status, ch.Err = statusOf(d, wt.t.Client, w.opts.Wants(wt.t))
	}
	w.log.Debug("client config changed", "path", wt.key, "exists", ch.Exists)
	return ch, true
}
