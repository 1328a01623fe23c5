//go:build !((linux || freebsd || openbsd || netbsd) && !android)

package tray

// trayAvailable: macOS and Windows always have a status area.
func trayAvailable() bool { return true }
