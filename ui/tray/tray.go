// Package tray is Keyport's system tray: the part of the desktop app that
// runs all the time. It lives in the tray process, next to the application
// core and its proxies, and needs no OpenGL: fyne.io/systray talks to the
// desktop directly (StatusNotifierItem over D-Bus on Linux), so a Keyport
// sitting in the tray costs a few MiB and no CPU. The window is a separate
// process (package ui) that the tray starts on demand.
//
// The tray is one state owner (Tray) fed by the core's events, a pure menu
// builder (Menu) and a small Host seam: fyne.io/systray in the app, a
// recorder in tests.
package tray

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"fyne.io/fyne/v2"

	"keyport/app"
)

// Core is what the tray needs from the application core; *app.App has it.
type Core interface {
	// Servers returns the catalog with status, sorted by name.
	Servers() []app.ServerView
	// Subscribe delivers an Event whenever something shown may have changed.
	Subscribe() (events <-chan app.Event, cancel func())
	// SetProxyEnabled turns a server's persistent proxy on or off.
	SetProxyEnabled(ctx context.Context, name string, on bool) error
	// SignIn runs the OAuth browser flow for a server.
	SignIn(ctx context.Context, name string, openURL func(string) error) error
}

// ProfileCore is what the tray uses of a core that has profiles (*app.App):
// they follow the servers in the menu.
type ProfileCore interface {
	Profiles() []app.ProfileView
	SetProfileEnabled(ctx context.Context, name string, on bool) error
}

// Host is the desktop's system tray.
type Host interface {
	SetIcon(png []byte)
	SetTooltip(text string)
	// SetMenu replaces the whole menu.
	SetMenu(m *fyne.Menu)
}

// Options are the tray's actions and seams.
type Options struct {
	// OpenWindow shows Keyport's window ("Open Keyport", a click on the icon).
	OpenWindow func()
	// Quit is called when the user chooses Quit; the caller stops the core.
	Quit func()
	// OpenURL opens a sign-in page in the browser.
	OpenURL func(string) error
	// Notify sends a desktop notification; nil sends none.
	Notify func(title, body string) error
	// Throttle is the least time between two event-driven refreshes (a
	// proxy under load sends an event per request); 0 means none.
	Throttle time.Duration
}

// RefreshEvery is the throttle the app uses: ten refreshes a second at most.
const RefreshEvery = 100 * time.Millisecond

// toggleTimeout bounds one proxy start-up from the tray.
const toggleTimeout = time.Minute

// signInTimeout bounds one browser sign-in.
const signInTimeout = 5 * time.Minute

// noticeDedup is how long after a status notification about a server the
// tray drops the core's own notice about it (both would say the same).
const noticeDedup = 5 * time.Second

// Tray keeps the desktop's tray icon, tooltip and menu in step with the core.
type Tray struct {
	core Core
	host Host
	opts Options

	mu       sync.Mutex
	servers  []app.ServerView // as last read from the core
	pending  map[string]bool  // toggles in flight: name -> wanted on
	notified map[string]time.Time
	toggled  map[string]time.Time // when the user last toggled a server here
	menuKey  string
	icon     Aggregate
	tooltip  string
	started  bool
	closed   bool

	cancel func()
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when watch returns
	jobs   sync.WaitGroup
}

// New shows the core's state in host and follows the core's events until
// Close.
func New(core Core, host Host, opts Options) *Tray {
	t := &Tray{core: core, host: host, opts: opts, pending: map[string]bool{},
		notified: map[string]time.Time{}, toggled: map[string]time.Time{}, icon: -1, stop: make(chan struct{}), done: make(chan struct{})}
	// Subscribe before the first read, so no change falls in between.
	events, cancel := core.Subscribe()
	t.cancel = cancel
	t.refresh()
	go t.watch(events)
	return t
}

// Close stops following the core and waits for the tray's own work (a
// toggle or sign-in in flight is cancelled by the core's own Close).
func (t *Tray) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	close(t.stop) // a core need not close the events channel on cancel
	<-t.done
}

// watch applies the core's events, coalescing bursts.
func (t *Tray) watch(events <-chan app.Event) {
	defer close(t.done)
	for {
		var ev app.Event
		select {
		case <-t.stop:
			return
		case e, ok := <-events:
			if !ok {
				return
			}
			ev = e
		}
		batch := []app.Event{ev}
	drain:
		for {
			select {
			case more, ok := <-events:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		t.handle(batch)
		if t.opts.Throttle > 0 {
			select {
			case <-t.stop:
				return
			case <-time.After(t.opts.Throttle):
			}
		}
	}
}

func (t *Tray) handle(batch []app.Event) {
	servers := false
	var notices []app.Event
	for _, ev := range batch {
		switch ev.Kind {
		case app.EventServers, app.EventCatalogError:
			servers = true
		case app.EventNotice:
			notices = append(notices, ev)
		}
	}
	if servers {
		t.refresh()
	}
	for _, ev := range notices {
		if ev.ToolReview {
			t.show(ev.Title, ev.Body) // never a duplicate of a status notice
			continue
		}
		t.mu.Lock()
		at, ok := t.notified[ev.Server]
		t.mu.Unlock()
		if ok && ev.Server != "" && time.Since(at) < noticeDedup {
			continue
		}
		t.notify(ev.Server, ev.Title, ev.Body)
	}
}

// refresh re-reads the servers and updates the icon, tooltip and menu when
// what they show changed, and notifies about status transitions.
func (t *Tray) refresh() {
	next := t.core.Servers()
	t.mu.Lock()
	var notices []Notice
	if t.started {
		for _, n := range Transitions(t.servers, next) {
			// A toggle from the tray reports its own outcome.
			if at, ok := t.toggled[n.Server]; ok && time.Since(at) < noticeDedup {
				continue
			}
			notices = append(notices, n)
		}
	}
	t.servers, t.started = next, true
	view := t.viewLocked()
	icon, tip := AggregateState(view), Tooltip(view)
	var profiles []app.ProfileView
	if pc, ok := t.core.(ProfileCore); ok {
		profiles = pc.Profiles()
	}
	m := MenuWithProfiles(view, profiles, Actions{Toggle: t.Toggle, ToggleProfile: t.ToggleProfile, SignIn: t.SignIn, Open: t.open, Quit: t.quit, Review: func(string) { t.open() }})
	key := menuKey(m)
	setIcon, setTip, setMenu := icon != t.icon, tip != t.tooltip, key != t.menuKey
	t.icon, t.tooltip, t.menuKey = icon, tip, key
	t.mu.Unlock()

	if setIcon {
		t.host.SetIcon(Icon(icon))
	}
	if setTip {
		t.host.SetTooltip(tip)
	}
	if setMenu {
		t.host.SetMenu(m)
	}
	for _, n := range notices {
		t.notify(n.Server, n.Title, n.Body)
	}
}

// viewLocked is the servers as the tray shows them: a toggle in flight
// reads as starting (or stopped).
func (t *Tray) viewLocked() []app.ServerView {
	out := make([]app.ServerView, len(t.servers))
	for i, s := range t.servers {
		if want, ok := t.pending[s.Name]; ok {
			s.Enabled = want
			if want {
				s.State = app.ProxyStarting
			}
		}
		out[i] = s
	}
	return out
}

// Toggle turns a server's proxy on or off in the background; a failure is
// a notification that says why.
func (t *Tray) Toggle(name string, on bool) {
	t.mu.Lock()
	if _, busy := t.pending[name]; busy || t.closed {
		t.mu.Unlock()
		return
	}
	t.pending[name] = on
	t.toggled[name] = time.Now()
	t.mu.Unlock()
	t.refresh()
	t.jobs.Add(1)
	go func() {
		defer t.jobs.Done()
		ctx, cancel := context.WithTimeout(context.Background(), toggleTimeout)
		err := t.core.SetProxyEnabled(ctx, name, on)
		cancel()
		t.mu.Lock()
		delete(t.pending, name)
		t.mu.Unlock()
		if err != nil {
			verb := "start"
			if !on {
				verb = "stop"
			}
			t.notify(name, "Could not "+verb+" "+name, err.Error())
		}
		t.refresh()
	}()
}

// SignIn runs a server's OAuth sign-in in the browser in the background.
func (t *Tray) SignIn(name string) {
	t.jobs.Add(1)
	go func() {
		defer t.jobs.Done()
		ctx, cancel := context.WithTimeout(context.Background(), signInTimeout)
		defer cancel()
		open := t.opts.OpenURL
		if open == nil {
			open = func(string) error { return errNoBrowser }
		}
		if err := t.core.SignIn(ctx, name, open); err != nil {
			t.notify(name, "Sign in to "+name+" failed", err.Error())
		}
		t.refresh()
	}()
}

// Wait waits for toggles and sign-ins in flight.
func (t *Tray) Wait() { t.jobs.Wait() }

func (t *Tray) open() {
	if t.opts.OpenWindow != nil {
		t.opts.OpenWindow()
	}
}

func (t *Tray) quit() {
	if t.opts.Quit != nil {
		t.opts.Quit()
	}
}

// notify sends a desktop notification about server.
func (t *Tray) notify(server, title, body string) {
	t.mu.Lock()
	t.notified[server] = time.Now()
	t.mu.Unlock()
	t.show(title, body)
}

// show puts up a desktop notification.
func (t *Tray) show(title, body string) {
	if t.opts.Notify == nil {
		return
	}
	if err := t.opts.Notify(title, body); err != nil {
		slog.Debug("desktop notification not shown", "title", title, "err", err)
	}
}

// ToggleProfile turns a profile's endpoint on or off in the background; a
// failure is a notification that says why.
func (t *Tray) ToggleProfile(name string, on bool) {
	pc, ok := t.core.(ProfileCore)
	if !ok {
		return
	}
	t.jobs.Add(1)
	go func() {
		defer t.jobs.Done()
		ctx, cancel := context.WithTimeout(context.Background(), toggleTimeout)
		err := pc.SetProfileEnabled(ctx, name, on)
		cancel()
		if err != nil {
			t.notify("profile "+name, "Could not turn profile "+name+" on", err.Error())
		}
		t.refresh()
	}()
}
