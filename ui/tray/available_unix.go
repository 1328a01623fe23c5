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

// watcherName is the D-Bus name of the StatusNotifierItem host that shows
// tray icons (KDE, most desktops; GNOME only with the AppIndicator
// extension).
const watcherName = "org.kde.StatusNotifierWatcher"

// HostShown reports whether the desktop shows Keyport's tray icon now: a
// StatusNotifierWatcher owns its name on the session bus. On plain GNOME
// it does not, and a closed window leaves nothing on screen.
func HostShown() bool {
	conn, err := dbus.SessionBus()
	if err != nil {
		return false
	}
	return hostShown(conn)
}

func hostShown(conn *dbus.Conn) bool {
	var has bool
	err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, watcherName).Store(&has)
	return err == nil && has
}
