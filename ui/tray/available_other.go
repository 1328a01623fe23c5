//go:build !((linux || freebsd || openbsd || netbsd) && !android)

package tray

// trayAvailable: macOS and Windows always have a status area.
func trayAvailable() bool { return true }

// HostShown: macOS and Windows always show a status area icon.
func HostShown() bool { return true }
