//go:build (linux || freebsd || openbsd || netbsd) && !android

package tray

import (
	"os"
	"testing"

	"github.com/godbus/dbus/v5"
)

// TestHostShown: the tray icon counts as shown exactly while a
// StatusNotifierWatcher owns its name on the session bus (make test runs a
// private session bus without one, like plain GNOME).
func TestHostShown(t *testing.T) {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no session bus under CI: %v", err)
		}
		t.Skipf("no session bus (make test starts one): %v", err)
	}
	defer conn.Close()
	if hostShown(conn) {
		t.Skip("a tray host already runs on this session bus")
	}
	reply, err := conn.RequestName(watcherName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v (%v)", watcherName, err, reply)
	}
	if !hostShown(conn) {
		t.Error("a watcher owns the name, but the host does not count as shown")
	}
	if _, err := conn.ReleaseName(watcherName); err != nil {
		t.Fatal(err)
	}
	if hostShown(conn) {
		t.Error("the watcher left, but the host still counts as shown")
	}
}
