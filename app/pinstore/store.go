// Package pinstore keeps the tool definitions the user approved for each
// server (tool pinning) in the config dir: one JSON file per server,
// pins/NAME.json, with the approved definitions (their hash and text) and
// those held for review. A *Server is what a proxy consults
// (proxymgr.Pins); the core approves, blocks and resets through it.
//
// Several processes share the files: the tray app, `keyport proxy` and
// the own proxies of stdio bridges. Every change is a read-modify-write
// under a lock file (gofrs/flock) and lands with an atomic rename, so no
// process loses another's change and no reader sees half a file; each
// process watches the directory (fsnotify) and reloads a file another one
// wrote, so an approval made anywhere reaches every running proxy.
//
// A file that cannot be read back (bad JSON, a definition that does not
// match its hash) is never trusted: it is set aside as NAME.json.corrupt-
// TIME, and a fresh file says so, with nothing approved, so every tool of
// the server is held until the user reviews it.
package pinstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/gofrs/flock"

	"keyport/app/internal/atomicfile"
	"keyport/proxymgr/pins"
)

// Dir is the directory of the pin files in a config dir.
const Dir = "pins"

// LockTimeout is how long an edit waits for another process's edit.
const LockTimeout = 5 * time.Second

// fileVersion is the format of the files.
const fileVersion = 1

// File is one server's pins as stored in pins/NAME.json.
type File struct {
	Version int    `json:"version"`
	Server  string `json:"server"`
	// TrustedAt is when the first list was trusted; nil means the next
	// list is trusted (nothing pinned yet, or after a reset).
	TrustedAt *time.Time `json:"trusted_at,omitempty"`
	// TrustAnnounced says the user was told of the first-use trust.
	TrustAnnounced bool `json:"trust_announced,omitempty"`
	// Recovered says the previous file could not be read and was set
	// aside: nothing is trusted until the user reviews.
	Recovered *Recovery `json:"recovered,omitempty"`
	// Tools are the approved definitions, by tool name.
	Tools map[string]*Pin `json:"tools"`
	// Held are definitions seen but not approved, by tool name.
	Held map[string]*Pending `json:"held,omitempty"`
}

// Recovery records a pin file that was set aside.
type Recovery struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
	Moved string    `json:"moved_to"`
	// Reviewed is set once the user acted on the server's tools since.
	Reviewed bool `json:"reviewed,omitempty"`
}

// Pin is an approved definition.
type Pin struct {
	Hash       pins.Hash       `json:"hash"`
	Definition json.RawMessage `json:"definition"` // canonical (pins.Canonical)
	ApprovedAt time.Time       `json:"approved_at"`
	// By is "first use" (trusted as first listed) or "user".
	By    string      `json:"by"`
	Flags []pins.Flag `json:"flags,omitempty"`
}

// Pending is a definition held for review.
type Pending struct {
	Hash       pins.Hash       `json:"hash"`
	Definition json.RawMessage `json:"definition"`
	SeenAt     time.Time       `json:"seen_at"`
	Flags      []pins.Flag     `json:"flags,omitempty"`
	// Blocked: the user chose Keep blocked; it is no longer a change to
	// review (until the server changes it again).
	Blocked bool `json:"blocked,omitempty"`
	// Notified: the user was told about it (one notification per change set).
	Notified bool `json:"notified,omitempty"`
}

// By values of a Pin.
const (
	ByFirstUse = "first use"
	ByUser     = "user"
)

// Change is one tool an approval, a block or a record changed.
type Change struct {
	Tool             string
	OldHash, NewHash pins.Hash
}

// Store is the pins of every server of one config dir.
type Store struct {
	dir string
	log *slog.Logger

	mu      sync.Mutex
	servers map[string]*Server
	subs    map[int]func(server string)
	nextSub int
	fsw     *fsnotify.Watcher
	closed  bool
	done    chan struct{}
}

// Open returns the store of configDir's pins (configDir/pins, created
// 0700). It watches the directory so changes by other processes are seen;
// when it cannot, it logs why and re-reads a file whose modification time
// moved whenever it is consulted.
func Open(configDir string, log *slog.Logger) *Store {
	if log == nil {
		log = slog.Default()
	}
	s := &Store{dir: filepath.Join(configDir, Dir), log: log, servers: map[string]*Server{}, subs: map[int]func(string){}}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		log.Warn("cannot create the tool pins directory", "dir", s.dir, "err", err)
	}
	fsw, err := fsnotify.NewWatcher()
	if err == nil {
		if err = fsw.Add(s.dir); err != nil {
			fsw.Close()
		}
	}
	if err != nil {
		log.Warn("cannot watch the tool pins; approvals made by other Keyport processes are seen when a file is next read", "dir", s.dir, "err", err)
		return s
	}
	s.fsw, s.done = fsw, make(chan struct{})
	go s.watch()
	return s
}

// Path is the directory of the pin files.
func (s *Store) Path() string { return s.dir }

// Close stops watching. Servers stay readable.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	fsw, done := s.fsw, s.done
	s.mu.Unlock()
	if fsw != nil {
		err := fsw.Close()
		<-done
		return err
	}
	return nil
}

// Subscribe calls f (on any goroutine) with a server's name whenever its
// pins may have changed, here or in another process, until stop.
func (s *Store) Subscribe(f func(server string)) (stop func()) {
	s.mu.Lock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = f
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
}

func (s *Store) publish(server string) {
	s.mu.Lock()
	subs := make([]func(string), 0, len(s.subs))
	for _, f := range s.subs {
		subs = append(subs, f)
	}
	s.mu.Unlock()
	for _, f := range subs {
		f(server)
	}
}

// watch reloads the files other processes change.
func (s *Store) watch() {
	defer close(s.done)
	for {
		select {
		case ev, ok := <-s.fsw.Events:
			if !ok {
				return
			}
			name, ok := serverOfFile(filepath.Base(ev.Name))
			if !ok {
				continue
			}
			s.mu.Lock()
			srv := s.servers[name]
			s.mu.Unlock()
			if srv != nil {
				srv.reload()
			} else {
				s.publish(name)
			}
		case err, ok := <-s.fsw.Errors:
			if !ok {
				return
			}
			s.log.Warn("watching the tool pins", "err", err)
		}
	}
}

// fileName is the pin file of a server. Catalog names are lowercase
// letters, digits and dashes; anything else is escaped so a name can never
// leave the directory.
func fileName(server string) string {
	var b strings.Builder
	for _, r := range server {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "%%%02X", r)
		}
	}
	return b.String() + ".json"
}

func serverOfFile(base string) (string, bool) {
	name, ok := strings.CutSuffix(base, ".json")
	if !ok || name == "" || strings.HasPrefix(name, ".") || strings.Contains(name, "%") {
		return "", false
	}
	return name, true
}

// Server returns the pins of a server, loading them on first use.
func (s *Store) Server(name string) *Server {
	s.mu.Lock()
	if srv, ok := s.servers[name]; ok {
		s.mu.Unlock()
		return srv
	}
	polling := s.fsw == nil
	s.mu.Unlock()
	// Loaded before anyone else sees it: a proxy must never consult a
	// server's pins before they are read (a nil snapshot trusts).
	path := filepath.Join(s.dir, fileName(name))
	srv := &Server{st: s, name: name, path: path, lock: flock.New(filepath.Join(s.dir, "."+fileName(name)+".lock"), flock.SetPermissions(0o600)),
		watchers: map[int]func(){}, polling: polling}
	srv.load()
	s.mu.Lock()
	if other, ok := s.servers[name]; ok { // another goroutine loaded it meanwhile
		s.mu.Unlock()
		return other
	}
	s.servers[name] = srv
	s.mu.Unlock()
	srv.notify() // its watchers may look it up now
	return srv
}

// Names lists the servers that have a pin file.
func (s *Store) Names() []string {
	entries, _ := os.ReadDir(s.dir)
	var out []string
	for _, e := range entries {
		if n, ok := serverOfFile(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Server is one server's pins. It implements proxymgr.Pins.
type Server struct {
	st      *Store
	name    string
	path    string
	lock    *flock.Flock
	polling bool // no fsnotify: re-read when the file's mtime moves

	mu       sync.Mutex // one edit at a time in this process (the flock is per file descriptor)
	snap     atomic.Pointer[pins.Set]
	file     atomic.Pointer[File]
	raw      []byte    // the bytes last loaded (to tell a real change from an echo)
	mtime    time.Time // polling only
	lastStat atomic.Int64
	problem  string // why the file could not be read, when it is not set aside yet

	wmu      sync.Mutex
	watchers map[int]func()
	nextW    int
}

// Name is the server's name.
func (srv *Server) Name() string { return srv.name }

// Path is the server's pin file.
func (srv *Server) Path() string { return srv.path }

// Snapshot is the server's pins as the proxy consults them.
func (srv *Server) Snapshot() *pins.Set {
	if srv.polling {
		srv.pollStat()
	}
	return srv.snap.Load()
}

// pollStat re-reads the file when its modification time moved (at most
// every 250 ms), for systems without a file watcher.
func (srv *Server) pollStat() {
	now := time.Now().UnixNano()
	if last := srv.lastStat.Load(); now-last < int64(250*time.Millisecond) || !srv.lastStat.CompareAndSwap(last, now) {
		return
	}
	fi, err := os.Stat(srv.path)
	var mt time.Time
	if err == nil {
		mt = fi.ModTime()
	}
	srv.mu.Lock()
	moved := !mt.Equal(srv.mtime)
	srv.mu.Unlock()
	if moved {
		srv.reload()
	}
}

// Watch calls f whenever the snapshot may have changed, until stop.
func (srv *Server) Watch(f func()) (stop func()) {
	srv.wmu.Lock()
	id := srv.nextW
	srv.nextW++
	srv.watchers[id] = f
	srv.wmu.Unlock()
	return func() {
		srv.wmu.Lock()
		delete(srv.watchers, id)
		srv.wmu.Unlock()
	}
}

func (srv *Server) notify() {
	srv.wmu.Lock()
	fs := make([]func(), 0, len(srv.watchers))
	for _, f := range srv.watchers {
		fs = append(fs, f)
	}
	srv.wmu.Unlock()
	for _, f := range fs {
		f()
	}
	srv.st.publish(srv.name)
}

// File is the server's pins as last read (never nil; do not modify it).
func (srv *Server) File() *File {
	if srv.polling {
		srv.pollStat()
	}
	return srv.file.Load()
}

// reload reads the file again and, if it changed, updates the snapshot
// and tells the watchers. A file that cannot be read is set aside.
func (srv *Server) reload() {
	if srv.load() {
		srv.notify()
	}
}

// load is reload without telling anyone: it reports whether the pins
// changed.
func (srv *Server) load() (changed bool) {
	srv.mu.Lock()
	raw, f, err := srv.read()
	if err != nil && !errors.Is(err, errCorrupt) {
		// Not readable at all (permissions...): hold everything, keep the file.
		srv.problem = err.Error()
		srv.st.log.Error("cannot read the tool pins; the server's tools are held", "server", srv.name, "err", err)
		f = srv.newFile()
		f.TrustedAt = ptr(time.Now())
		raw = nil
	} else if err != nil {
		f, raw, err = srv.setAsideLocked(err)
		if err != nil {
			srv.st.log.Error("cannot set the unreadable tool pins aside", "server", srv.name, "err", err)
		}
	} else {
		srv.problem = ""
	}
	changed = srv.file.Load() == nil || !bytes.Equal(raw, srv.raw) || srv.problem != ""
	if changed {
		srv.install(raw, f)
	}
	srv.mu.Unlock()
	return changed
}

var errCorrupt = errors.New("corrupt")

// read loads the file: (nil, a fresh file, nil) when it does not exist;
// an error wrapping errCorrupt when its content cannot be trusted.
func (srv *Server) read() ([]byte, *File, error) {
	raw, err := os.ReadFile(srv.path)
	if errors.Is(err, os.ErrNotExist) {
		srv.mtime = time.Time{}
		return nil, srv.newFile(), nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", srv.path, err)
	}
	if fi, err := os.Stat(srv.path); err == nil {
		srv.mtime = fi.ModTime()
	}
	f, err := parse(raw, srv.name)
	if err != nil {
		return raw, nil, fmt.Errorf("%s: %w: %w", srv.path, errCorrupt, err)
	}
	return raw, f, nil
}

// parse decodes and verifies a pin file.
func parse(raw []byte, server string) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("unknown version %d (this Keyport reads version %d)", f.Version, fileVersion)
	}
	if f.Server != server {
		return nil, fmt.Errorf("the file is for server %q", f.Server)
	}
	check := func(kind, name string, h pins.Hash, def json.RawMessage) error {
		c, err := pins.Canonical(def)
		if err != nil {
			return fmt.Errorf("%s tool %q: %w", kind, name, err)
		}
		if pins.Sum(c) != h {
			return fmt.Errorf("%s tool %q: its definition does not match its hash", kind, name)
		}
		return nil
	}
	for n, p := range f.Tools {
		if p == nil {
			return nil, fmt.Errorf("approved tool %q: empty", n)
		}
		if err := check("approved", n, p.Hash, p.Definition); err != nil {
			return nil, err
		}
	}
	for n, p := range f.Held {
		if p == nil {
			return nil, fmt.Errorf("held tool %q: empty", n)
		}
		if err := check("held", n, p.Hash, p.Definition); err != nil {
			return nil, err
		}
	}
	if f.Tools == nil {
		f.Tools = map[string]*Pin{}
	}
	if f.Held == nil {
		f.Held = map[string]*Pending{}
	}
	return &f, nil
}

func (srv *Server) newFile() *File {
	return &File{Version: fileVersion, Server: srv.name, Tools: map[string]*Pin{}, Held: map[string]*Pending{}}
}

// install makes f the current file and snapshot (under srv.mu).
func (srv *Server) install(raw []byte, f *File) {
	srv.raw = raw
	srv.file.Store(f)
	set := &pins.Set{Trusting: f.TrustedAt == nil, Approved: map[string]pins.Hash{}, Held: map[string]pins.Held{}}
	for n, p := range f.Tools {
		set.Approved[n] = p.Hash
	}
	for n, p := range f.Held {
		set.Held[n] = pins.Held{Hash: p.Hash, Blocked: p.Blocked}
	}
	switch {
	case srv.problem != "":
		set.Trusting, set.Problem = false, srv.problem
	case f.Recovered != nil && !f.Recovered.Reviewed:
		set.Problem = "the file was unreadable and was set aside: " + f.Recovered.Error
	}
	srv.snap.Store(set)
}

// setAsideLocked moves an unreadable file away (under the lock, unless
// another process already did) and starts a fresh one that trusts nothing.
func (srv *Server) setAsideLocked(why error) (*File, []byte, error) {
	unlock, err := srv.flock()
	if err != nil {
		f := srv.newFile()
		f.TrustedAt = ptr(time.Now())
		srv.problem = why.Error()
		return f, nil, err
	}
	defer unlock()
	raw, f, err := srv.read() // another process may have set it aside meanwhile
	if err == nil {
		return f, raw, nil
	}
	now := time.Now()
	moved := fmt.Sprintf("%s.corrupt-%s", srv.path, now.UTC().Format("20060102T150405.000000000"))
	if rerr := os.Rename(srv.path, moved); rerr != nil {
		f := srv.newFile()
		f.TrustedAt = ptr(now)
		srv.problem = err.Error()
		return f, nil, rerr
	}
	srv.st.log.Error("the tool pins file was unreadable; it was set aside and every tool of the server is held until you review it",
		"server", srv.name, "err", err, "moved_to", moved)
	f = srv.newFile()
	f.TrustedAt = ptr(now)
	f.Recovered = &Recovery{At: now, Error: err.Error(), Moved: moved}
	raw, werr := srv.write(f)
	if werr != nil {
		srv.problem = err.Error()
		return f, nil, werr
	}
	return f, raw, nil
}

func ptr[T any](v T) *T { return &v }

// flock takes the file's lock across processes.
func (srv *Server) flock() (unlock func(), err error) {
	if err := os.MkdirAll(srv.st.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", srv.st.dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), LockTimeout)
	defer cancel()
	ok, err := srv.lock.TryLockContext(ctx, 10*time.Millisecond)
	if err != nil || !ok {
		return nil, fmt.Errorf("lock the tool pins of %s: another Keyport process holds them (%v); try again", srv.name, err)
	}
	return func() { _ = srv.lock.Unlock() }, nil
}

// write stores f atomically and returns the bytes written.
func (srv *Server) write(f *File) ([]byte, error) {
	raw, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the tool pins of %s: %w", srv.name, err)
	}
	raw = append(raw, '\n')
	if err := atomicfile.WriteFile(srv.path, raw, 0o600); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(srv.path); err == nil {
		srv.mtime = fi.ModTime()
	}
	return raw, nil
}

// edit changes the file under the lock: change gets a private copy of the
// current content (read again from disk, so another process's change is
// never lost) and reports whether it changed anything.
func (srv *Server) edit(change func(f *File) (bool, error)) error {
	srv.mu.Lock()
	unlock, err := srv.flock()
	if err != nil {
		srv.mu.Unlock()
		return err
	}
	raw, f, err := srv.read()
	if err != nil && errors.Is(err, errCorrupt) {
		unlock()
		f, raw, err = srv.setAsideLocked(err)
		if err != nil {
			srv.mu.Unlock()
			return err
		}
		if unlock, err = srv.flock(); err != nil {
			srv.mu.Unlock()
			return err
		}
		raw, f, err = srv.read()
	}
	if err != nil {
		unlock()
		srv.mu.Unlock()
		return err
	}
	srv.problem = ""
	changed, err := change(f)
	if err == nil && changed {
		raw, err = srv.write(f)
	}
	unlock()
	if err != nil {
		srv.mu.Unlock()
		return err
	}
	was := srv.raw
	srv.install(raw, f)
	srv.mu.Unlock()
	if changed || !bytes.Equal(was, raw) {
		srv.notify()
	}
	return nil
}
