// Package state persists what the user turned on and chose: enabled proxies
// and their ports, the ids of local proxy tokens, per-client and window
// preferences, and whether the demo server is hidden. It is one JSON file,
// state.json, in Keyport's config dir, written atomically (temp file, fsync,
// rename) under a cross-process file lock, so the tray app and a CLI
// invocation can both update it without losing each other's changes.
//
// No secret is ever stored here: local tokens are in the OS keychain
// (app/secrets); this file only keeps their ids.
package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"keyport/app/internal/atomicfile"
)

// FileName is the state file's name in the config dir.
const FileName = "state.json"

// Version is the format version this package writes.
const Version = 1

// State is everything Keyport remembers between runs.
type State struct {
	// Version of the format; Load fills it, Save writes Version.
	Version int `json:"version"`
	// Proxies by server name: on/off and the port to reuse.
	Proxies map[string]Proxy `json:"proxies,omitempty"`
	// LocalTokens by server name: which local proxy token is current. The
	// value itself is in the keychain (secrets.KindLocalToken).
	LocalTokens map[string]LocalToken `json:"local_tokens,omitempty"`
	// Clients by client id (e.g. "claude-desktop", "cursor").
	Clients map[string]Client `json:"clients,omitempty"`
	// Window holds the main window's preferences.
	Window Window `json:"window"`
	// HideDemo hides the built-in demo server.
	HideDemo bool `json:"hide_demo,omitempty"`
	// Profiles by profile name: whether its endpoint runs, and its port.
	Profiles map[string]Proxy `json:"profiles,omitempty"`

	// extra keeps top-level fields written by a newer Keyport, so a
	// downgrade does not erase them.
	extra map[string]json.RawMessage
}

// Proxy is a server's local proxy preference.
type Proxy struct {
	// Enabled means the proxy runs (and is restarted at launch).
	Enabled bool `json:"enabled"`
	// Port is the loopback port it last listened on; 0 means none yet.
	Port int `json:"port,omitempty"`
}

// LocalToken identifies the local access token of a server's proxy.
type LocalToken struct {
	// ID is a public identifier (e.g. a short fingerprint), never the token.
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
}

// Client is a per-client preference.
type Client struct {
	// Enabled means the user wants Keyport to manage this client's config.
	Enabled bool `json:"enabled"`
	// ConfigPath overrides the client's default config file path.
	ConfigPath string `json:"config_path,omitempty"`
	// Servers are the servers the user wired into this client.
	Servers []string `json:"servers,omitempty"`
}

// Window holds main-window preferences.
type Window struct {
	Width  float32 `json:"width,omitempty"`
	Height float32 `json:"height,omitempty"`
	// Split is the server list's share of the window's width (0 to 1; 0:
	// not recorded).
	Split float64 `json:"split,omitempty"`
	// Tab is the last selected tab.
	Tab string `json:"tab,omitempty"`
	// StartHidden starts the app in the tray without opening the window.
	StartHidden bool `json:"start_hidden,omitempty"`
}

var knownFields = []string{"version", "proxies", "local_tokens", "clients", "window", "hide_demo", "profiles"}

// MarshalJSON writes the known fields and any kept unknown ones.
func (s State) MarshalJSON() ([]byte, error) {
	type plain State
	b, err := json.Marshal(plain(s))
	if err != nil || len(s.extra) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range s.extra {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the known fields and keeps unknown top-level ones.
func (s *State) UnmarshalJSON(b []byte) error {
	type plain State
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for _, k := range knownFields {
		delete(m, k)
	}
	*s = State(p)
	if len(m) > 0 {
		s.extra = m
	}
	return nil
}

// Check validates the state and fills defaults (empty maps).
func (s *State) Check() error {
	if s.Proxies == nil {
		s.Proxies = map[string]Proxy{}
	}
	if s.LocalTokens == nil {
		s.LocalTokens = map[string]LocalToken{}
	}
	if s.Clients == nil {
		s.Clients = map[string]Client{}
	}
	for name, p := range s.Proxies {
		if name == "" {
			return errors.New("proxies: empty server name")
		}
		if p.Port < 0 || p.Port > 65535 {
			return fmt.Errorf("proxies.%s.port: %d is not a port (0-65535)", name, p.Port)
		}
	}
	for name, t := range s.LocalTokens {
		if name == "" || t.ID == "" {
			return fmt.Errorf("local_tokens.%s: empty server name or id", name)
		}
	}
	for id := range s.Clients {
		if id == "" {
			return errors.New("clients: empty client id")
		}
	}
	for name, p := range s.Profiles {
		if name == "" {
			return errors.New("profiles: empty profile name")
		}
		if p.Port < 0 || p.Port > 65535 {
			return fmt.Errorf("profiles.%s.port: %d is not a port (0-65535)", name, p.Port)
		}
	}
	if s.Window.Width < 0 || s.Window.Height < 0 {
		return fmt.Errorf("window: negative size %gx%g", s.Window.Width, s.Window.Height)
	}
	if !(s.Window.Split >= 0 && s.Window.Split <= 1) {
		// A window preference is not worth setting the whole state aside
		// for: forget it, and the window picks its own.
		s.Window.Split = 0
	}
	return nil
}

// clone returns a deep copy.
func (s State) clone() State {
	c := s
	c.Proxies = maps.Clone(s.Proxies)
	c.Profiles = maps.Clone(s.Profiles)
	c.LocalTokens = maps.Clone(s.LocalTokens)
	c.Clients = make(map[string]Client, len(s.Clients))
	for k, v := range s.Clients {
		v.Servers = slices.Clone(v.Servers)
		c.Clients[k] = v
	}
	c.extra = maps.Clone(s.extra)
	return c
}

// Store holds the state in memory and on disk. It is safe for concurrent use.
type Store struct {
	path string
	lock *flock.Flock
	log  *slog.Logger

	mu sync.Mutex
	st State
}

// LockTimeout bounds the wait for another Keyport process holding the lock.
const LockTimeout = 10 * time.Second

// Load reads dir/state.json. A missing file gives a fresh state. A corrupt
// one is moved aside to state.json.corrupt-<time> and a fresh state is used:
// warning then says so (the app shows it and starts anyway). err is non-nil
// only when the file cannot be read or moved at all.
func Load(dir string) (s *Store, warning, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("state: create config dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	s = &Store{path: path, lock: flock.New(path + ".lock"), log: slog.Default()}
	st, warning, err := s.readDisk()
	if err != nil {
		return nil, nil, err
	}
	s.st = st
	return s, warning, nil
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// Get returns a copy of the current state.
func (s *Store) Get() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.clone()
}

// Reload re-reads the file (e.g. after another process changed it); the
// returned warning is as for Load.
func (s *Store) Reload() (warning, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, warning, err := s.readDisk()
	if err != nil {
		return nil, err
	}
	s.st = st
	return warning, nil
}

// Update applies fn to the latest state (re-read from disk under the file
// lock, so changes by another process are kept), validates it and writes it
// atomically. If fn or validation fails, nothing changes.
func (s *Store) Update(fn func(*State) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), LockTimeout)
	defer cancel()
	ok, err := s.lock.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil || !ok {
		return fmt.Errorf("state: lock %s: another Keyport process holds it (%v); try again", s.lock.Path(), err)
	}
	defer func() { _ = s.lock.Unlock() }()

	st, warning, err := s.readDisk()
	if err != nil {
		return err
	}
	if warning != nil {
		s.log.Warn("state file was corrupt; kept the in-memory state", "warning", warning)
		st = s.st.clone()
	}
	next := st.clone()
	if err := fn(&next); err != nil {
		return err
	}
	if err := next.Check(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	next.Version = Version
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return fmt.Errorf("state: encode: %w", err)
	}
	if err := atomicfile.WriteFile(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	s.st = next
	return nil
}

// SetProxy records a server's proxy preference.
func (s *Store) SetProxy(server string, p Proxy) error {
	return s.Update(func(st *State) error {
		if server == "" {
			return errors.New("state: empty server name")
		}
		st.Proxies[server] = p
		return nil
	})
}

// SetLocalToken records the id of a server's current local token.
func (s *Store) SetLocalToken(server string, t LocalToken) error {
	return s.Update(func(st *State) error {
		if server == "" {
			return errors.New("state: empty server name")
		}
		st.LocalTokens[server] = t
		return nil
	})
}

// SetClient records a client's preferences.
func (s *Store) SetClient(id string, c Client) error {
	return s.Update(func(st *State) error {
		st.Clients[id] = c
		return nil
	})
}

// SetWindow records the window preferences.
func (s *Store) SetWindow(w Window) error {
	return s.Update(func(st *State) error {
		st.Window = w
		return nil
	})
}

// SetHideDemo hides or shows the built-in demo server.
func (s *Store) SetHideDemo(hide bool) error {
	return s.Update(func(st *State) error {
		st.HideDemo = hide
		return nil
	})
}

// ForgetServer drops everything recorded about a removed server: its proxy,
// its local token id, and its place in every client's list.
func (s *Store) ForgetServer(server string) error {
	return s.Update(func(st *State) error {
		delete(st.Proxies, server)
		delete(st.LocalTokens, server)
		for id, c := range st.Clients {
			c.Servers = slices.DeleteFunc(c.Servers, func(n string) bool { return n == server })
			st.Clients[id] = c
		}
		return nil
	})
}

// readDisk reads and decodes the file; a corrupt file is moved aside.
func (s *Store) readDisk() (State, error, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		st := State{Version: Version}
		_ = st.Check()
		return st, nil, nil
	}
	if err != nil {
		return State{}, nil, fmt.Errorf("state: read %s: %w", s.path, err)
	}
	var st State
	dec := json.NewDecoder(bytes.NewReader(b))
	err = dec.Decode(&st)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		err = st.Check()
	}
	if err == nil && st.Version < 1 {
		err = fmt.Errorf("version %d is not a Keyport state version", st.Version)
	}
	if err == nil {
		return st, nil, nil
	}
	aside := fmt.Sprintf("%s.corrupt-%s", s.path, time.Now().UTC().Format("20060102T150405.000Z"))
	if rerr := os.Rename(s.path, aside); rerr != nil {
		return State{}, nil, fmt.Errorf("state: %s is corrupt (%v) and could not be moved aside: %w", s.path, err, rerr)
	}
	fresh := State{Version: Version}
	_ = fresh.Check()
	warning := fmt.Errorf("state: %s was corrupt (%v); moved it to %s and started with a fresh state (proxies are off)", s.path, err, filepath.Base(aside))
	return fresh, warning, nil
}
