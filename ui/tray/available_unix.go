//go:build (linux || freebsd || openbsd || netbsd) && !android

package tray

import (
	"sync"

	"github.com/godbus/dbus/v5"
)

// trayAvailable reports whether the session D-Bus is reachable: without it
// fyne.io/systray cannot show an icon (and would fail on exit). It does not
// tell whether a tray host (a StatusNotifierWatcher) runs: plain GNOME has
// none, and the icon then simply does not show.
var trayAvailable = sync.OnceValue(func() bool {
	_, err := dbus.SessionBus() // the shared connection systray uses too
	return err == nil
})
