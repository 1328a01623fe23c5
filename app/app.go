// Package app is Keyport's application core. It owns the server catalog, the
// OS keychain, the persisted state, the proxy manager and the client config
// watcher, and is the one place that combines them: the CLI (app/cli) and the
// GUI (ui) call only its methods. Nothing below app imports fyne.
//
// An App is cheap to create: New loads the catalog and state and opens the
// keychain lazily. The CLI calls a verb's method and exits; the GUI calls
// Start, which watches files, restores the proxies the user left on and
// starts the demo server, and then Close.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"keyport/app/catalog"
	"keyport/app/secrets"
	"keyport/app/state"
)

// Options configure an App. The zero value is the user's real setup.
type Options struct {
	// Logger receives the core's logs; nil means slog.Default().
	Logger *slog.Logger
	// ConfigDir holds servers.yaml, state.json and the audit logs; "" means
	// catalog.ConfigDir() ($KEYPORT_CONFIG_DIR or the OS user config dir).
	ConfigDir string
	// Keychain is where secrets live; nil means the OS keychain.
	Keychain secrets.Backend
	// KeychainService names the keychain service; "" means "keyport".
	// Tests set their own so they never touch a user's items.
	KeychainService string
	// Executable is the absolute path of the keyport binary written into
	// stdio client entries; "" means os.Executable().
	Executable string
	// Home is the user's home dir, where client configs live; "" means
	// os.UserHomeDir().
	Home string
	// Env looks up environment variables for client config paths
	// (APPDATA, CLAUDE_CONFIG_DIR...); nil means os.Getenv.
	Env func(string) string
	// AutostartDir overrides where the start-at-login entry lives (tests);
	// "" means the desktop's own place.
	AutostartDir string
	// ManagedFile overrides where the organization's managed settings are
	// read from (tests); "" means catalog.ManagedPath().
	ManagedFile string
}

// App is the application core shared by the CLI and the GUI. It is safe for
// concurrent use.
type App struct {
	log     *slog.Logger
	dir     string
	exe     string
	home    string
	env     func(string) string
	file    *catalog.File
	secrets *secrets.Store
	state   *state.Store

	keychain        secrets.Backend // nil: the OS keychain
	keychainService string
	autostartDir    string

	mu       sync.Mutex
	cat      *catalog.Catalog // the last good catalog
	catErr   error            // why servers.yaml is not loaded now, or nil
	subs     map[chan Event]struct{}
	ctx      context.Context // lives from Start to Close
	cancel   context.CancelFunc
	closed   bool
	closeErr error
	bg       sync.WaitGroup // goroutines started by Start

	// appRuntime holds the parts Start brings up; see runtime.go.
	appRuntime
}

// New returns an App over the user's config dir. It never fails because of
// the user's files: an invalid servers.yaml is reported by CatalogError (the
// catalog is then empty), a corrupt state file is moved aside with a warning.
// It fails only when the config dir cannot be made.
func New(opts Options) (*App, error) {
	a := &App{log: opts.Logger, env: opts.Env, subs: map[chan Event]struct{}{}}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.env == nil {
		a.env = os.Getenv
	}
	var err error
	if a.dir = opts.ConfigDir; a.dir == "" {
		if a.dir, err = catalog.ConfigDir(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the config dir %s: %w", a.dir, err)
	}
	if a.exe = opts.Executable; a.exe == "" {
		if a.exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find keyport's own path: %w", err)
		}
	}
	if a.exe, err = filepath.Abs(a.exe); err != nil {
		return nil, fmt.Errorf("find keyport's own path: %w", err)
	}
	if a.home = opts.Home; a.home == "" {
		// Without a home (a stripped environment) client configs cannot be
		// found, but everything else works: keyport connect must.
		a.home, _ = os.UserHomeDir()
	}

	a.file = catalog.NewFile(filepath.Join(a.dir, catalog.FileName))
	if opts.ManagedFile != "" {
		a.file.SetManagedPath(opts.ManagedFile)
	}
	if created, err := a.file.Init(); err != nil {
		a.log.Warn("could not write the example servers.yaml", "err", err)
	} else if created {
		a.log.Info("wrote an example servers.yaml", "path", a.file.Path())
	}
	a.reloadCatalog()

	st, warning, err := state.Load(a.dir)
	if err != nil {
		return nil, err
	}
	if warning != nil {
		a.log.Warn("state file was unreadable and was set aside", "warning", warning)
	}
	a.state = st
	a.keychain, a.keychainService, a.autostartDir = opts.Keychain, opts.KeychainService, opts.AutostartDir
	a.secrets = secrets.New(secrets.Options{
		Backend: opts.Keychain, Service: opts.KeychainService, CacheTTL: secretsCacheTTL,
	})
	return a, nil
}

// ConfigDir is the directory holding servers.yaml, state.json and audit logs.
func (a *App) ConfigDir() string { return a.dir }

// ServersFile is the path of servers.yaml.
func (a *App) ServersFile() string { return a.file.Path() }

// reloadCatalog reads servers.yaml. On error it keeps the last good catalog
// and records the error; it reports whether the catalog changed.
func (a *App) reloadCatalog() (old, cur *catalog.Catalog, err error) {
	cat, err := a.file.Load()
	a.mu.Lock()
	defer a.mu.Unlock()
	old = a.cat
	if err != nil {
		a.catErr = err
		if a.cat == nil {
			a.cat = &catalog.Catalog{Path: a.file.Path()}
		}
		return old, a.cat, err
	}
	a.cat, a.catErr = cat, nil
	return old, cat, nil
}

// setCatalog makes cat the catalog in effect (the last good one when err,
// servers.yaml's problem, is set), as a watcher of servers.yaml reports it.
func (a *App) setCatalog(cat *catalog.Catalog, err error) (old *catalog.Catalog) {
	a.mu.Lock()
	defer a.mu.Unlock()
	old = a.cat
	a.cat, a.catErr = cat, err
	return old
}

// catalog returns the current catalog snapshot.
func (a *App) catalog() *catalog.Catalog {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cat
}

// CatalogError is why servers.yaml could not be loaded, or "" when it is fine.
// The App keeps serving the last good catalog meanwhile.
func (a *App) CatalogError() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.catErr == nil {
		// The organization's managed file being broken is as loud.
		if a.cat != nil && a.cat.Managed != nil {
			return a.cat.Managed.Err
		}
		return ""
	}
	return a.catErr.Error()
}

// ManagedStatus describes the organization's managed settings in effect:
// the file ("" when there is none), its problem when it is invalid (the
// last good version then applies: show it loudly) and the user's servers
// it refuses.
func (a *App) ManagedStatus() (path, problem string, blocked []catalog.Blocked) {
	cat := a.catalog()
	if cat == nil || cat.Managed == nil {
		return "", "", nil
	}
	return cat.Managed.Path, cat.Managed.Err, cat.Managed.Blocked
}

// CatalogErr is CatalogError as an error, for the CLI to print and fail on.
func (a *App) CatalogErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.catErr
}

// Subscribe delivers an Event whenever something a caller shows may have
// changed. Events are coalesced: a slow subscriber misses intermediate events
// but always gets one after the last change. cancel ends the subscription.
func (a *App) Subscribe() (events <-chan Event, cancel func()) {
	ch := make(chan Event, 64)
	a.mu.Lock()
	a.subs[ch] = struct{}{}
	a.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			a.mu.Lock()
			delete(a.subs, ch)
			a.mu.Unlock()
		})
	}
}

// publish sends ev to every subscriber without blocking.
func (a *App) publish(ev Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch := range a.subs {
		select {
		case ch <- ev:
		default:
			// The subscriber is behind; it will re-read everything on the
			// events already queued. Notices are the only ones lost, and a
			// UI that far behind would not show them in time anyway.
		}
	}
}

// Close stops every proxy gracefully and releases what the App holds. It is
// safe to call more than once.
func (a *App) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return a.closeErr
	}
	a.closed = true
	cancel := a.cancel
	a.mu.Unlock()
	err := a.stopRuntime()
	if cancel != nil {
		cancel()
	}
	a.bg.Wait()
	a.mu.Lock()
	a.closeErr = err
	for ch := range a.subs {
		delete(a.subs, ch)
	}
	a.mu.Unlock()
	return err
}

// errClosed is returned by methods called after Close.
var errClosed = errors.New("keyport is shutting down")
