// Package ui is Keyport's window: the server list, the detail pane and its
// dialogs. It runs in the window process, which the tray process (package
// ui/tray, with the core and the proxies) starts while the user has the
// window open; closing the window ends that process, and Keyport keeps
// running in the tray. It never creates the fyne application itself
// (ui/launch does), so its tests run with fyne's headless test driver and
// without cgo.
//
// It talks to the application core only through the Core interface
// (core.go). One goroutine reads the core's events and hands each batch to
// the fyne goroutine, which re-reads the state and refreshes the list, the
// detail pane and the clients panel: the fyne goroutine is the one owner of
// UI state.
//
// Threading: fyne callbacks run on the fyne goroutine. Every Core call that
// may block (keychain, network, disk, starting a proxy) runs in a goroutine
// of ours (UI.bg), which touches widgets only through fyne.Do (UI.do).
package ui

import (
	"context"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
	"keyport/assets"
)

// AppIcon is the window's icon.
var AppIcon = fyne.NewStaticResource("keyport.png", assets.AppIcon)

// toggleTimeout bounds one SetProxyEnabled call (a proxy start-up).
const toggleTimeout = time.Minute

// UI is the Keyport window. Its exported widgets are what tests tap.
type UI struct {
	fyne fyne.App
	core Core
	bg   func(func())
	do   func(func())

	Window      fyne.Window
	Search      *widget.Entry
	LabelFilter *widget.Select
	List        *serverList
	Empty       *widget.Label
	AddButton   *widget.Button
	Import      *widget.Button
	Settings    *widget.Button
	Profiles    *widget.Button // profiles.go
	Banner      *banner
	Detail      *detail

	// The open dialogs, for tests; nil when closed.
	AddDialog     *AddServerDialog
	ImportDialog  *ImportDialog
	SecretDialog  *SecretDialog
	LostDialog    *LostDialog
	NoTrayDialog  *NoTrayDialog
	ProfilesView  *ProfilesView  // profiles.go
	ProfileEditor *ProfileEditor // profiles.go

	emptyBox *fyne.Container
	split    *container.Split
	rows     []*serverRow  // every row the list created (Layout reports them)
	dialogs  []*openDialog // on screen, the top one last (keys.go)

	// Window size and divider position (window.go).
	prefs      app.WindowPrefs // as last recorded in the core
	placed     bool            // Place ran: size changes are the user's
	prefsTimer *time.Timer

	// State owned by the fyne goroutine.
	servers   []app.ServerView // as last read from the core
	shown     []rowView        // servers after the search and label filter
	selected  string           // the selected server's name, or ""
	pending   map[string]bool  // toggles in flight: name -> wanted on
	toggleErr map[string]string
	autostart bool
	quitting  bool
	trayShown func() bool // whether the desktop shows the tray icon; nil: assume so

	throttle  time.Duration
	stopWatch func()
	watchDone chan struct{}
	closeOnce sync.Once
}

// options are the seams tests use; New fills the real ones.
type options struct {
	bg func(func())
	do func(func())
	// throttle is the least time between two event-driven refreshes;
	// New uses refreshEvery, tests 0 unless they test it.
	throttle time.Duration
}

// refreshEvery caps event-driven refreshes at ten a second, so a proxy under
// heavy traffic (a counters event per request) costs a few refreshes.
const refreshEvery = 100 * time.Millisecond

// New builds the window for core inside the fyne application fa and starts
// following the core's events. Call ShowWindow to show it. Closing the
// window quits fa (the tray process keeps Keyport running).
func New(fa fyne.App, core Core) *UI {
	fa.Settings().SetTheme(Theme())
	return newUI(fa, core, options{throttle: refreshEvery})
}

func newUI(fa fyne.App, core Core, o options) *UI {
	if o.bg == nil {
		o.bg = func(f func()) { go f() }
	}
	if o.do == nil {
		o.do = fyne.Do
	}
	u := &UI{fyne: fa, core: core, bg: o.bg, do: o.do, throttle: o.throttle,
		pending: map[string]bool{}, toggleErr: map[string]string{}}
	fa.SetIcon(AppIcon)
	u.Window = fa.NewWindow("Keyport")
	u.Window.SetIcon(AppIcon)
	u.Window.SetContent(u.content())
	u.Window.Resize(fyne.NewSize(900, 600)) // Place fits it to the screen
	u.shortcuts()
	// Closing the window ends the window process; the tray keeps Keyport
	// and its proxies running.
	u.Window.SetCloseIntercept(u.CloseWindow)
	// Subscribe before the first read, so no change falls in between.
	events, cancel := core.Subscribe()
	u.stopWatch = cancel
	u.refreshServers()
	u.Banner.set(catalogBanner(core.CatalogError()))
	u.bg(func() {
		on := core.Autostart()
		u.do(func() { u.autostart = on })
	})
	u.watchDone = make(chan struct{})
	go u.watch(events)
	return u
}

func (u *UI) content() fyne.CanvasObject {
	u.Search = widget.NewEntry()
	u.Search.SetPlaceHolder("Search servers  (" + shortcutText("F") + ")")
	u.Search.ActionItem = widget.NewIcon(theme.SearchIcon())
	u.Search.OnChanged = func(string) { u.applyFilter() }
	u.Search.OnSubmitted = func(string) {
		if len(u.shown) > 0 {
			u.List.Select(0)
			u.Window.Canvas().Focus(u.List)
		}
	}
	u.LabelFilter = widget.NewSelect([]string{allLabels}, func(string) { u.applyFilter() })
	u.LabelFilter.PlaceHolder = allLabels
	u.LabelFilter.SetSelected(allLabels)
	u.AddButton = widget.NewButtonWithIcon("Add server", theme.ContentAddIcon(), u.showAddServer)
	u.AddButton.Importance = widget.HighImportance
	u.Import = widget.NewButtonWithIcon("Import", theme.DownloadIcon(), u.showImport)
	u.Settings = widget.NewButtonWithIcon("", theme.SettingsIcon(), u.showSettingsMenu)
	u.Profiles = widget.NewButtonWithIcon("Profiles", theme.ListIcon(), u.showProfiles)

	u.List = newServerList(
		func() int { return len(u.shown) },
		func() fyne.CanvasObject {
			r := newServerRow(u.toggle, u.copyURL)
			u.rows = append(u.rows, r) // the list keeps a few and recycles them
			return r
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			if id < len(u.shown) {
				o.(*serverRow).set(u.shown[id])
			}
		},
		u.toggleSelected,
	)
	u.List.OnSelected = func(id widget.ListItemID) {
		if id < len(u.shown) && u.shown[id].Name != u.selected {
			u.selected = u.shown[id].Name
			u.Detail.show(u.selectedView())
		}
	}
	u.Empty = widget.NewLabel("")
	u.Empty.Alignment = fyne.TextAlignCenter
	u.Empty.Wrapping = fyne.TextWrapWord
	u.emptyBox = container.NewCenter(container.NewVBox(u.Empty))
	u.Banner = newBanner()
	u.Detail = newDetail(u)

	filterW := fyne.NewSize(170, u.LabelFilter.MinSize().Height)
	title := heading("Keyport")
	title.SizeName = theme.SizeNameSubHeadingText
	top := container.NewBorder(nil, nil, title,
		container.NewHBox(container.NewGridWrap(filterW, u.LabelFilter), u.AddButton, u.Import, u.Profiles, u.Settings),
		u.Search)
	// The list's pane tells when its size changes: the window was resized
	// or the divider moved (window.go remembers both).
	left := container.New(&sizeWatch{changed: u.layoutChanged}, u.List, u.emptyBox)
	u.split = container.NewHSplit(left, u.Detail.root)
	u.split.SetOffset(defaultSplit)
	header := container.NewVBox(container.NewPadded(top), u.Banner.box)
	return container.NewBorder(header, nil, nil, nil, u.split)
}

func (u *UI) shortcuts() {
	c := u.Window.Canvas()
	focusSearch := func(fyne.Shortcut) { c.Focus(u.Search) }
	c.AddShortcut(&desktop.CustomShortcut{KeyName: fyne.KeyF, Modifier: fyne.KeyModifierShortcutDefault}, focusSearch)
	// Ctrl/Cmd+W closes the window (Keyport stays in the tray), as closing
	// it with the window manager does.
	c.AddShortcut(&desktop.CustomShortcut{KeyName: fyne.KeyW, Modifier: fyne.KeyModifierShortcutDefault},
		func(fyne.Shortcut) { u.CloseWindow() })
	c.SetOnTypedKey(func(ev *fyne.KeyEvent) {
		if u.dialogKey(ev.Name) {
			return // a dialog has the keyboard; Enter must not toggle behind it
		}
		if ev.Name == fyne.KeyReturn || ev.Name == fyne.KeyEnter {
			u.toggleSelected()
		}
	})
}

// shortcutText names a Ctrl/Cmd shortcut the way the OS writes it.
func shortcutText(key string) string {
	if runtime.GOOS == "darwin" {
		return "⌘" + key
	}
	return "Ctrl+" + key
}

// watch is the one event-subscription goroutine: it hands each batch of
// events to the fyne goroutine, which re-reads what they concern. Events that
// arrive while a batch waits are merged into it, so a burst of counter
// updates costs one refresh.
func (u *UI) watch(events <-chan app.Event) {
	defer close(u.watchDone)
	var (
		mu        sync.Mutex
		pending   []app.Event
		scheduled bool      // a refresh is queued on the fyne goroutine
		last      time.Time // when the last refresh ran
	)
	run := func() {
		mu.Lock()
		batch := pending
		pending, scheduled, last = nil, false, time.Now()
		mu.Unlock()
		u.handle(batch)
	}
	for ev := range events {
		mu.Lock()
		pending = append(pending, ev)
		if scheduled {
			mu.Unlock()
			continue // the queued refresh will take this event too
		}
		scheduled = true
		wait := u.throttle - time.Since(last)
		mu.Unlock()
		if wait > 0 {
			// Refreshed a moment ago: a burst (traffic counters) waits a
			// little and is handled in one go.
			time.AfterFunc(wait, func() { u.do(run) })
		} else {
			u.do(run)
		}
	}
}

// handle applies a batch of events on the fyne goroutine.
func (u *UI) handle(batch []app.Event) {
	var servers, clients, audit bool
	for _, ev := range batch {
		switch ev.Kind {
		case app.EventServers:
			servers = true
		case app.EventClients:
			clients = true
		case app.EventAudit:
			if ev.Server == u.selected {
				audit = true
			}
		case app.EventCatalogError:
			u.Banner.set(catalogBanner(ev.Err))
			servers = true
		}
	}
	if servers {
		// The selected server's traffic counters moving means new audit
		// lines: the tail follows them even from a core without EventAudit.
		before := u.selectedCounters()
		u.refreshServers()
		if u.selectedCounters() != before {
			audit = true
		}
		if u.ProfilesView != nil {
			u.ProfilesView.refresh()
		}
	}
	if clients {
		u.Detail.clients.refresh()
	}
	if audit && u.Detail.auditVisible() {
		u.Detail.audit.reload()
	}
}

// selectedCounters is the selected server's traffic counters.
func (u *UI) selectedCounters() app.Counters {
	if i := indexOf(u.servers, u.selected); i >= 0 {
		return u.servers[i].Counters
	}
	return app.Counters{}
}

func catalogBanner(err string) string {
	if err == "" {
		return ""
	}
	return err + "\nKeyport keeps the last valid list; fix the file and it reloads by itself."
}

// refreshServers re-reads the catalog and refreshes everything that shows it.
func (u *UI) refreshServers() {
	next := u.core.Servers()
	u.servers = next
	opts := labelOptions(next)
	u.LabelFilter.Options = opts
	if sel := u.LabelFilter.Selected; sel != allLabels && indexString(opts, sel) < 0 {
		u.LabelFilter.SetSelected(allLabels) // its label is gone; applyFilter runs
	} else {
		u.LabelFilter.Refresh()
	}
	u.applyFilter()
}

func indexString(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// applyFilter recomputes the shown rows from the search and label filter.
func (u *UI) applyFilter() {
	if u.List == nil || u.Detail == nil {
		return // still building the window
	}
	matched := filterServers(u.servers, u.Search.Text, u.LabelFilter.Selected)
	u.shown = u.shown[:0]
	for _, s := range matched {
		want, pending := u.pending[s.Name]
		u.shown = append(u.shown, rowView{ServerView: s, pending: pending, want: want, toggleErr: u.toggleErr[s.Name]})
	}
	u.List.Refresh()
	switch {
	case len(u.servers) == 0:
		u.Empty.SetText("No servers yet.\nChoose Add server to add one by URL, or Import to find one in an MCP registry.")
		u.emptyBox.Show()
	case len(u.shown) == 0:
		u.Empty.SetText(fmt.Sprintf("No server matches %q.\nClear the search or pick All labels.", filterDesc(u.Search.Text, u.LabelFilter.Selected)))
		u.emptyBox.Show()
	default:
		u.emptyBox.Hide()
	}
	// Keep the selection on the same server; pick the first one otherwise.
	idx := -1
	for i, r := range u.shown {
		if r.Name == u.selected {
			idx = i
		}
	}
	if idx < 0 && len(u.shown) > 0 && indexOf(u.servers, u.selected) < 0 {
		idx = 0
	}
	if idx >= 0 {
		if u.shown[idx].Name != u.selected {
			u.selected = u.shown[idx].Name
		}
		u.List.Select(idx)
	} else if indexOf(u.servers, u.selected) < 0 {
		u.selected = ""
		u.List.UnselectAll()
	}
	u.Detail.show(u.selectedView())
}

func filterDesc(query, label string) string {
	if query == "" {
		return label
	}
	if label == "" || label == allLabels {
		return query
	}
	return query + " in " + label
}

// selectedView returns the selected server with its transient row state, or
// nil when none is selected.
func (u *UI) selectedView() *rowView {
	i := indexOf(u.servers, u.selected)
	if i < 0 {
		return nil
	}
	want, pending := u.pending[u.selected]
	return &rowView{ServerView: u.servers[i], pending: pending, want: want, toggleErr: u.toggleErr[u.selected]}
}

// toggle turns a server's proxy on or off in the background. The row shows
// starting (or the switch greyed) until the core answers, then the result;
// an error stays inline until the next try.
func (u *UI) toggle(name string, on bool) {
	if _, busy := u.pending[name]; busy {
		return
	}
	u.pending[name] = on
	delete(u.toggleErr, name)
	u.applyFilter()
	u.bg(func() {
		ctx, cancel := context.WithTimeout(context.Background(), toggleTimeout)
		err := u.core.SetProxyEnabled(ctx, name, on)
		cancel()
		u.do(func() {
			delete(u.pending, name)
			if err != nil {
				verb := "start"
				if !on {
					verb = "stop"
				}
				u.toggleErr[name] = fmt.Sprintf("Could not %s the proxy: %v", verb, err)
			}
			u.refreshServers()
		})
	})
}

// toggleSelected flips the selected server's proxy (Enter).
func (u *UI) toggleSelected() {
	v := u.selectedView()
	if v == nil {
		return
	}
	u.toggle(v.Name, !v.Enabled)
}

// copyURL puts a local URL on the clipboard and shows a check mark on the
// copy button b for a moment.
func (u *UI) copyURL(s string, b *widget.Button) {
	u.fyne.Clipboard().SetContent(s)
	if b == nil {
		return
	}
	b.SetIcon(theme.ConfirmIcon())
	time.AfterFunc(1200*time.Millisecond, func() {
		u.do(func() { b.SetIcon(theme.ContentCopyIcon()) })
	})
}

// signIn runs a server's OAuth sign-in in the browser.
func (u *UI) signIn(name string) {
	u.ShowWindow()
	u.bg(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		err := u.core.SignIn(ctx, name, func(raw string) error {
			parsed, err := url.Parse(raw)
			if err != nil {
				return err
			}
			var openErr error
			fyneDoAndWait(u, func() { openErr = u.fyne.OpenURL(parsed) })
			return openErr
		})
		u.do(func() {
			if err != nil {
				u.showError("Sign in to "+name, err)
			}
			u.refreshServers()
		})
	})
}

// fyneDoAndWait runs f on the fyne goroutine and waits for it.
func fyneDoAndWait(u *UI, f func()) {
	done := make(chan struct{})
	u.do(func() { f(); close(done) })
	<-done
}

// showError shows err in a dialog titled with what failed.
func (u *UI) showError(what string, err error) {
	u.showDialog(what, dialog.NewError(fmt.Errorf("%s: %w", what, err), u.Window), nil)
}

// ShowWindow shows the main window and brings it to the front.
func (u *UI) ShowWindow() {
	u.Window.Show()
	u.Window.RequestFocus()
}

// Quit closes the window: it stops following the core (Core.Close) in the
// background, then ends the fyne application. The window hides at once.
func (u *UI) Quit() {
	if u.quitting {
		return
	}
	u.quitting = true
	save := u.prefsToSave()
	u.Window.Hide()
	u.bg(func() {
		save()
		u.Close()
		u.do(u.fyne.Quit)
	})
}

// appQuitter is a core that runs in another process (the tray's) and can
// be asked to quit the whole of Keyport.
type appQuitter interface{ Quit() error }

// QuitKeyport is the settings menu's "Quit Keyport": it asks the tray
// process to stop every proxy and quit, then closes the window. With an
// in-process core, closing the core is quitting.
func (u *UI) QuitKeyport() {
	q, ok := u.core.(appQuitter)
	if !ok {
		u.Quit()
		return
	}
	if u.quitting {
		return
	}
	u.quitting = true
	save := u.prefsToSave()
	u.Window.Hide()
	u.bg(func() {
		save()
		if err := q.Quit(); err != nil {
			fyne.LogError("quitting Keyport", err)
		}
		u.Close()
		u.do(u.fyne.Quit)
	})
}

// Close stops following events and closes the core. It is safe to call more
// than once and from any goroutine.
func (u *UI) Close() {
	u.closeOnce.Do(func() {
		u.stopWatch()
		if err := u.core.Close(); err != nil {
			fyne.LogError("closing Keyport", err)
		}
	})
}
