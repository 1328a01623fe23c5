// Package autostart turns "start Keyport at login" on and off, the way each
// desktop expects: an XDG autostart .desktop file on Linux and the BSDs, a
// LaunchAgent property list on macOS, and a value under the current user's
// Run key on Windows. It writes only the current user's settings and needs
// no privileges.
package autostart

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"keyport/app/internal/atomicfile"
)

// Entry describes what starts at login.
type Entry struct {
	// ID is the reverse-DNS application ID; it names the file (Linux,
	// macOS). Default dev.keyport.Keyport.
	ID string
	// Name is the display name, and the Run value's name on Windows.
	// Default Keyport.
	Name string
	// Comment is the .desktop file's description.
	Comment string
	// Exec is the absolute path of the program to start. Required.
	Exec string
	// Args are passed to Exec.
	Args []string
	// Dir overrides where the entry lives (tests): the autostart folder on
	// Linux, the LaunchAgents folder on macOS, and the registry key path
	// under HKEY_CURRENT_USER on Windows.
	Dir string
}

// New returns the entry for the program at exe with Keyport's defaults.
func New(exe string) Entry {
	return Entry{
		ID:      "dev.keyport.Keyport",
		Name:    "Keyport",
		Comment: "Secure local access to remote MCP servers for your AI clients",
		Exec:    exe,
	}
}

// Current returns the entry for the running executable.
func Current() (Entry, error) {
	exe, err := os.Executable()
	if err != nil {
		return Entry{}, fmt.Errorf("start at login: find Keyport's executable: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return New(exe), nil
}

func (e Entry) check() error {
	if e.Exec == "" || !filepath.IsAbs(e.Exec) {
		return fmt.Errorf("start at login: the program path %q must be absolute", e.Exec)
	}
	if e.ID == "" || strings.ContainsAny(e.ID, `/\`) {
		return fmt.Errorf("start at login: invalid application ID %q", e.ID)
	}
	return nil
}

// Enable makes the entry start at login (replacing an older one).
func (e Entry) Enable() error {
	if err := e.check(); err != nil {
		return err
	}
	return e.enable()
}

// Disable stops the entry from starting at login. Disabling an entry that
// is not there is not an error.
func (e Entry) Disable() error {
	if err := e.check(); err != nil {
		return err
	}
	return e.disable()
}

// Enabled reports whether the entry starts at login.
func (e Entry) Enabled() (bool, error) {
	if err := e.check(); err != nil {
		return false, err
	}
	return e.enabled()
}

// writeAtomic writes an autostart entry (readable by the desktop: 0644),
// creating its folder.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("start at login: create %s: %w", filepath.Dir(path), err)
	}
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("start at login: %w", err)
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("start at login: remove %s: %w", path, err)
	}
	return nil
}
