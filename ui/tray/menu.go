package tray

import (
	"fmt"

	"fyne.io/fyne/v2"

	"keyport/app"
	"keyport/assets"
)

// Actions are what the tray menu's items do. The tray passes its own
// methods; tests pass recorders.
type Actions struct {
	Toggle func(name string, on bool) // turn a server's proxy on or off
	// ToggleProfile turns a profile's endpoint on or off.
	ToggleProfile func(name string, on bool)
	SignIn        func(name string) // start a server's OAuth sign-in
	Open          func()            // show the main window
	Quit          func()            // stop the proxies and quit
	// Review shows a server's tool changes to review (nil: Open).
	Review func(name string)
}

// Menu builds the tray menu from the servers alone: one item per server
// with its state and a check mark when its proxy is on (choosing it toggles
// the proxy), a "Sign in to NAME…" item per server that needs an OAuth
// sign-in (signed out, or a request waits for more scopes; one click opens
// the browser), a "NAME: N tool changes to review" item per server whose
// tool pinning holds changes, then "Open Keyport" and "Quit". It is a pure
// function: the tray
// calls it again on every status event instead of mutating items.
func Menu(servers []app.ServerView, act Actions) *fyne.Menu {
	return MenuWithProfiles(servers, nil, act)
}

// MenuWithProfiles is Menu with the profiles after the servers, each
// toggled like a server ("Profile NAME — state").
func MenuWithProfiles(servers []app.ServerView, profiles []app.ProfileView, act Actions) *fyne.Menu {
	var items []*fyne.MenuItem
	if len(servers) == 0 {
		none := fyne.NewMenuItem("No servers yet", nil)
		none.Disabled = true
		items = append(items, none)
	}
	for _, s := range servers {
		name, on := s.Name, s.Enabled
		it := fyne.NewMenuItem(label(s), func() { act.Toggle(name, !on) })
		it.Checked = on
		items = append(items, it)
	}
	if len(profiles) > 0 {
		items = append(items, fyne.NewMenuItemSeparator())
	}
	for _, p := range profiles {
		name, on := p.Name, p.Enabled
		it := fyne.NewMenuItem("Profile "+p.Name+" — "+p.State.Label(), func() {
			if act.ToggleProfile != nil {
				act.ToggleProfile(name, !on)
			}
		})
		it.Checked = on
		items = append(items, it)
	}
	var signIns []*fyne.MenuItem
	for _, s := range servers {
		if s.Credential.SignInNeeded {
			name := s.Name
			signIns = append(signIns, fyne.NewMenuItem("Sign in to "+name+"…", func() { act.SignIn(name) }))
		}
	}
	if len(signIns) > 0 {
		items = append(items, fyne.NewMenuItemSeparator())
		items = append(items, signIns...)
	}
	var reviews []*fyne.MenuItem
	for _, s := range servers {
		if n := s.ToolChanges; n > 0 {
			name := s.Name
			review := act.Open
			if act.Review != nil {
				review = func() { act.Review(name) }
			}
			reviews = append(reviews, fyne.NewMenuItem(fmt.Sprintf("%s: %d tool %s to review…", name, n, plural(n, "change", "changes")), review))
		}
	}
	if len(reviews) > 0 {
		items = append(items, fyne.NewMenuItemSeparator())
		items = append(items, reviews...)
	}
	open := fyne.NewMenuItem("Open Keyport", act.Open)
	quit := fyne.NewMenuItem("Quit", act.Quit)
	quit.IsQuit = true
	items = append(items, fyne.NewMenuItemSeparator(), open, quit)
	return fyne.NewMenu("Keyport", items...)
}

// label is a server's tray item text: "name — state".
func label(s app.ServerView) string {
	return s.Name + " — " + s.State.Label()
}

// menuKey summarises a menu's visible content, so an identical menu is not
// sent to the desktop again.
func menuKey(m *fyne.Menu) string {
	k := ""
	for _, it := range m.Items {
		k += fmt.Sprintf("%s|%t|%t|%t\n", it.Label, it.Checked, it.Disabled, it.IsSeparator)
	}
	return k
}

// Aggregate is the tray icon's state.
type Aggregate int

// Aggregate states, from quiet to alarming.
const (
	Idle    Aggregate = iota // no proxy runs
	Running                  // at least one proxy runs, none failed
	Failing                  // a proxy or its upstream is in error
)

// AggregateState sums the servers' states up for the tray icon: any error
// or unreachable upstream wins, then any running or starting proxy.
func AggregateState(servers []app.ServerView) Aggregate {
	agg := Idle
	for _, s := range servers {
		switch s.State {
		case app.ProxyError, app.ProxyUnreachable:
			return Failing
		case app.ProxyRunning, app.ProxyStarting:
			agg = Running
		}
	}
	return agg
}

// Icon is the tray icon (PNG) for an aggregate state.
func Icon(a Aggregate) []byte {
	switch a {
	case Failing:
		return assets.TrayError
	case Running:
		return assets.TrayActive
	default:
		return assets.TrayIdle
	}
}

// Tooltip is the tray icon's hover text for the servers.
func Tooltip(servers []app.ServerView) string {
	running, failing := 0, 0
	for _, s := range servers {
		switch s.State {
		case app.ProxyRunning, app.ProxyStarting:
			running++
		case app.ProxyError, app.ProxyUnreachable:
			failing++
		}
	}
	t := "Keyport"
	switch {
	case running == 0 && failing == 0:
		return t + ": no proxy running"
	case failing == 0:
		return fmt.Sprintf("%s: %d %s running", t, running, plural(running, "proxy", "proxies"))
	default:
		return fmt.Sprintf("%s: %d running, %d in trouble", t, running, failing)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
