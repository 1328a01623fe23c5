//go:build (linux || freebsd || openbsd || netbsd) && !android

package tray

import (
	"fmt"

	"github.com/godbus/dbus/v5"
)

// Notifier sends desktop notifications through the freedesktop
// Notifications service on the session D-Bus.
func Notifier(appName string) func(title, body string) error {
	return func(title, body string) error {
		conn, err := dbus.SessionBus()
		if err != nil {
			return fmt.Errorf("desktop notification: no session D-Bus: %w", err)
		}
		obj := conn.Object("org.freedesktop.Notifications", "/org/freedesktop/Notifications")
		call := obj.Call("org.freedesktop.Notifications.Notify", 0,
			appName, uint32(0), "", title, body, []string{}, map[string]dbus.Variant{}, int32(-1))
		if call.Err != nil {
			return fmt.Errorf("desktop notification: %w", call.Err)
		}
		return nil
	}
}
