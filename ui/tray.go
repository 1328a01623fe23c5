package ui

import (
	"fyne.io/fyne/v2"

	"keyport/app"
)

// trayActions are what the tray menu's items do. The UI passes its own
// methods; tests pass recorders.
type trayActions struct {
	Toggle func(name string, on bool) // turn a server's proxy on or off
	SignIn func(name string)          // start a server's OAuth sign-in
	Open   func()                     // show the main window
	Quit   func()                     // stop the proxies and quit
}

// trayMenu builds the tray menu from the servers alone: one item per server
// with its state and a check mark when its proxy is on (choosing it toggles
// the proxy), a "Sign in needed" item per server that needs an OAuth
// sign-in, then "Open Keyport" and "Quit". It is a pure function: the UI
// calls it again on every status event instead of mutating items.
func trayMenu(servers []app.ServerView, act trayActions) *fyne.Menu {
	var items []*fyne.MenuItem
	if len(servers) == 0 {
		none := fyne.NewMenuItem("No servers yet", nil)
		none.Disabled = true
		items = append(items, none)
	}
	for _, s := range servers {
		name, on := s.Name, s.Enabled
		it := fyne.NewMenuItem(trayLabel(s), func() { act.Toggle(name, !on) })
		it.Checked = on
		items = append(items, it)
	}
	var signIns []*fyne.MenuItem
	for _, s := range servers {
		if s.Credential.SignInNeeded {
			name := s.Name
			signIns = append(signIns, fyne.NewMenuItem("Sign in needed: "+name+"…", func() { act.SignIn(name) }))
		}
	}
	if len(signIns) > 0 {
		items = append(items, fyne.NewMenuItemSeparator())
		items = append(items, signIns...)
	}
	open := fyne.NewMenuItem("Open Keyport", act.Open)
	quit := fyne.NewMenuItem("Quit", act.Quit)
	quit.IsQuit = true
	items = append(items, fyne.NewMenuItemSeparator(), open, quit)
	return fyne.NewMenu("Keyport", items...)
}

// trayLabel is a server's tray item text: "name — state".
func trayLabel(s app.ServerView) string {
	return s.Name + " — " + stateText(s.State)
}

// trayIcon picks the tray icon for the aggregate state of servers.
func trayIcon(servers []app.ServerView) fyne.Resource {
	switch aggregateState(servers) {
	case aggError:
		return trayError
	case aggRunning:
		return trayActive
	default:
		return trayIdle
	}
}

// trayHost is the part of desktop.App the UI uses; tests record through it.
type trayHost interface {
	SetSystemTrayMenu(*fyne.Menu)
	SetSystemTrayIcon(fyne.Resource)
}
