//go:build !((linux || freebsd || openbsd || netbsd) && !android)

package tray

import (
	"errors"
	"os/exec"
	"runtime"
	"strings"
)

// Notifier sends desktop notifications: Notification Center through
// osascript on macOS; elsewhere it reports that it cannot (the tray's
// icon and menu still show the state).
func Notifier(appName string) func(title, body string) error {
	return func(title, body string) error {
		if runtime.GOOS != "darwin" {
			return errors.New("desktop notifications are not supported on " + runtime.GOOS + " yet")
		}
		script := "display notification " + appleString(body) + " with title " + appleString(appName) +
			" subtitle " + appleString(title)
		return exec.Command("osascript", "-e", script).Run()
	}
}

// appleString quotes s as an AppleScript string literal.
func appleString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
