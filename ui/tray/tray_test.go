package tray

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2"

	"keyport/app"
	"keyport/ui/fakecore"
)

var _ Core = (*fakecore.Core)(nil)

// recorder is a Host that records what the tray shows, and the
// notifications it sends.
type recorder struct {
	mu       sync.Mutex
	icons    [][]byte
	tips     []string
	menus    []*fyne.Menu
	notified []string
}

func (r *recorder) SetIcon(png []byte) { r.mu.Lock(); r.icons = append(r.icons, png); r.mu.Unlock() }
func (r *recorder) SetTooltip(s string) {
	r.mu.Lock()
	r.tips = append(r.tips, s)
	r.mu.Unlock()
}
func (r *recorder) SetMenu(m *fyne.Menu) { r.mu.Lock(); r.menus = append(r.menus, m); r.mu.Unlock() }
func (r *recorder) notify(title, body string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notified = append(r.notified, title+": "+body)
	return nil
}

func (r *recorder) menu() *fyne.Menu {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.menus[len(r.menus)-1]
}

func (r *recorder) lines() []string { return menuLines(r.menu()) }

func (r *recorder) icon() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.icons[len(r.icons)-1]
}

func (r *recorder) counts() (menus, notes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.menus), len(r.notified)
}

func (r *recorder) notes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.notified)
}

// item returns the menu item whose label starts with prefix.
func (r *recorder) item(t *testing.T, prefix string) *fyne.MenuItem {
	t.Helper()
	for _, it := range r.menu().Items {
		if strings.HasPrefix(it.Label, prefix) {
			return it
		}
	}
	t.Fatalf("no menu item %q in %q", prefix, r.lines())
	return nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTray(t *testing.T, core *fakecore.Core, opts Options) (*Tray, *recorder) {
	t.Helper()
	r := &recorder{}
	opts.Notify = r.notify
	tr := New(core, r, opts)
	t.Cleanup(func() { tr.Close(); tr.Wait() })
	return tr, r
}

func TestTrayTogglesAndSignIn(t *testing.T) {
	t.Parallel()
	core := fakecore.Sample()
	var opened []string
	var mu sync.Mutex
	_, r := newTray(t, core, Options{OpenURL: func(u string) error { mu.Lock(); opened = append(opened, u); mu.Unlock(); return nil }})
	want := []string{"[ ] demo — Stopped", "[x] github — Running", "[ ] linear — Stopped", "[x] sentry — Upstream unreachable",
		"[x] warehouse — Error", "---", "[ ] Sign in to linear…", "---", "[ ] Open Keyport", "[ ] Quit"}
	if lines := r.lines(); !slices.Equal(lines, want) {
		t.Fatalf("tray = %q\nwant %q", lines, want)
	}
	if string(r.icon()) != string(Icon(Failing)) {
		t.Error("with a proxy in error the icon must be the error icon")
	}

	// Choosing a stopped server shows it starting, then running.
	gate := make(chan struct{})
	core.SetGate(gate)
	r.item(t, "demo — ").Action()
	waitFor(t, "demo starting", func() bool { return slices.Contains(r.lines(), "[x] demo — Starting…") })
	r.item(t, "demo — ").Action() // a second click while it starts is ignored
	gate <- struct{}{}
	waitFor(t, "demo running", func() bool { return slices.Contains(r.lines(), "[x] demo — Running") })
	if n := strings.Count(strings.Join(core.Calls(), "\n"), "SetProxyEnabled demo true"); n != 1 {
		t.Errorf("SetProxyEnabled demo true called %d times, want 1", n)
	}
	core.SetGate(nil)

	// A counters-only change does not send the menu again.
	menus, _ := r.counts()
	core.Update("github", func(s *app.ServerView) { s.Counters.Requests += 10 })
	time.Sleep(50 * time.Millisecond)
	if now, _ := r.counts(); now != menus {
		t.Error("an unchanged menu was sent again")
	}

	// Sign in opens the browser through the core and the item goes away.
	r.item(t, "Sign in to linear").Action()
	waitFor(t, "signed in", func() bool { return !slices.Contains(r.lines(), "[ ] Sign in to linear…") })
	mu.Lock()
	defer mu.Unlock()
	if len(opened) != 1 || !strings.Contains(opened[0], "server=linear") {
		t.Errorf("browser opened %q, want linear's sign-in page", opened)
	}
}

func TestTrayIconFollowsState(t *testing.T) {
	t.Parallel()
	core := fakecore.New(app.ServerView{Name: "a"}, app.ServerView{Name: "b"})
	_, r := newTray(t, core, Options{})
	if string(r.icon()) != string(Icon(Idle)) {
		t.Fatal("nothing runs: the icon must be idle")
	}
	r.item(t, "a — ").Action()
	waitFor(t, "active icon", func() bool { return string(r.icon()) == string(Icon(Running)) })
	core.Update("b", func(s *app.ServerView) { s.Enabled, s.State = true, app.ProxyUnreachable })
	waitFor(t, "error icon", func() bool { return string(r.icon()) == string(Icon(Failing)) })
	r.mu.Lock()
	tip := r.tips[len(r.tips)-1]
	r.mu.Unlock()
	if tip != "Keyport: 1 running, 1 in trouble" {
		t.Errorf("tooltip = %q", tip)
	}
}

func TestTrayToggleFailureNotifies(t *testing.T) {
	t.Parallel()
	core := fakecore.New(app.ServerView{Name: "gamma"})
	core.FailProxy("gamma", "port 41005 is taken by another program: quit it or pick another port")
	_, r := newTray(t, core, Options{})
	r.item(t, "gamma — ").Action()
	waitFor(t, "a notification", func() bool { _, n := r.counts(); return n > 0 })
	time.Sleep(50 * time.Millisecond)
	notes := r.notes()
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "Could not start gamma: port 41005 is taken") {
		t.Errorf("notifications = %q, want one saying why gamma did not start", notes)
	}
	if !slices.Contains(r.lines(), "[x] gamma — Error") {
		t.Errorf("tray = %q", r.lines())
	}
}

// TestTrayNotifiesTransitionsOnce: a status change notifies once; the
// core's own notice about the same change is dropped; other notices (an
// OAuth sign-in needed) pass.
func TestTrayNotifiesTransitionsOnce(t *testing.T) {
	t.Parallel()
	core := fakecore.New(app.ServerView{Name: "a", Enabled: true, State: app.ProxyRunning}, app.ServerView{Name: "b"})
	_, r := newTray(t, core, Options{})
	core.Update("a", func(s *app.ServerView) { s.State, s.LastError = app.ProxyError, "listener closed" })
	waitFor(t, "the failure notice", func() bool { _, n := r.counts(); return n >= 1 })
	core.Emit(app.Event{Kind: app.EventNotice, Server: "a", Title: "a: proxy failed", Body: "listener closed"})
	core.Emit(app.Event{Kind: app.EventNotice, Server: "b", Title: "Sign in to b", Body: "Its refresh token was rejected."})
	waitFor(t, "two notifications", func() bool { _, n := r.counts(); return n >= 2 })
	core.Update("a", func(s *app.ServerView) { s.State, s.LastError = app.ProxyRunning, "" })
	waitFor(t, "the recovery", func() bool { _, n := r.counts(); return n >= 3 })
	core.Update("a", func(s *app.ServerView) { s.Counters.Requests++ }) // no transition
	time.Sleep(50 * time.Millisecond)
	want := []string{"a: proxy failed: listener closed", "Sign in to b: Its refresh token was rejected.", "a: recovered: The proxy is running again."}
	if got := r.notes(); !slices.Equal(got, want) {
		t.Errorf("notifications =\n%q\nwant\n%q", got, want)
	}
}

// countingCore counts how often the tray re-reads the servers.
type countingCore struct {
	*fakecore.Core
	reads atomic.Int64
}

func (c *countingCore) Servers() []app.ServerView {
	c.reads.Add(1)
	return c.Core.Servers()
}

// TestTrayCoalescesBursts: a proxy under traffic (an event per request)
// costs the tray a handful of refreshes, not one per event.
func TestTrayCoalescesBursts(t *testing.T) {
	t.Parallel()
	fc := fakecore.New(app.ServerView{Name: "a", Enabled: true, State: app.ProxyRunning})
	core := &countingCore{Core: fc}
	r := &recorder{}
	tr := New(core, r, Options{Throttle: 50 * time.Millisecond})
	defer tr.Close()
	const events = 200
	for i := 0; i < events; i++ {
		fc.Update("a", func(s *app.ServerView) { s.Counters.Requests++ })
		if i%50 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
	reads := core.reads.Load()
	t.Logf("%d events, %d refreshes", events, reads)
	if reads < 2 || reads > 20 {
		t.Errorf("%d events caused %d refreshes, want a handful", events, reads)
	}
}

func TestTrayOpenAndQuit(t *testing.T) {
	t.Parallel()
	var got []string
	var mu sync.Mutex
	rec := func(s string) func() { return func() { mu.Lock(); got = append(got, s); mu.Unlock() } }
	_, r := newTray(t, fakecore.New(), Options{OpenWindow: rec("open"), Quit: rec("quit")})
	r.item(t, "Open Keyport").Action()
	r.item(t, "Quit").Action()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []string{"open", "quit"}) {
		t.Errorf("actions = %q", got)
	}
}

// stickyCore's cancel does not close the events channel (app.App's does
// not either): Close must still return.
type stickyCore struct {
	*fakecore.Core
	events chan app.Event
}

func (c *stickyCore) Subscribe() (<-chan app.Event, func()) { return c.events, func() {} }

func TestTrayCloseDoesNotWaitForTheCore(t *testing.T) {
	t.Parallel()
	core := &stickyCore{Core: fakecore.New(app.ServerView{Name: "a"}), events: make(chan app.Event)}
	tr := New(core, &recorder{}, Options{Throttle: time.Hour})
	closed := make(chan struct{})
	go func() { tr.Close(); tr.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs while the core keeps its events channel open")
	}
}

// TestTrayToolChangesToReview: the menu offers each server's tool changes
// to review (opening the window), and a change set's notice is shown even
// right after a status notification about the same server.
func TestTrayToolChangesToReview(t *testing.T) {
	t.Parallel()
	core := fakecore.New(app.ServerView{Name: "a", Enabled: true, State: app.ProxyRunning})
	opened := make(chan struct{}, 1)
	_, r := newTray(t, core, Options{OpenWindow: func() { opened <- struct{}{} }})
	core.Update("a", func(s *app.ServerView) { s.State, s.LastError = app.ProxyError, "listener closed" })
	waitFor(t, "the failure notice", func() bool { _, n := r.counts(); return n >= 1 })
	core.SetReview("a", app.ToolReview{Changes: []app.ToolChange{{Tool: "x", Kind: "changed"}, {Tool: "y", Kind: "new"}}})
	core.Emit(app.Event{Kind: app.EventNotice, Server: "a", ToolReview: true, Title: "a: 2 tool changes to review", Body: "x, y changed"})
	waitFor(t, "the review notice", func() bool { _, n := r.counts(); return n >= 2 })
	if got := r.notes(); len(got) != 2 || got[1] != "a: 2 tool changes to review: x, y changed" {
		t.Errorf("notifications = %q", got)
	}
	waitFor(t, "the menu item", func() bool { return slices.Contains(r.lines(), "[ ] a: 2 tool changes to review…") })
	r.item(t, "a: 2 tool changes").Action()
	select {
	case <-opened:
	case <-time.After(5 * time.Second):
		t.Fatal("choosing the review item did not open the window")
	}
}
