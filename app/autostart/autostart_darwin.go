//go:build darwin

package autostart

import (
	"fmt"
	"os"
	"path/filepath"
)

// path is ~/Library/LaunchAgents/ID.plist (or Dir/ID.plist). launchd loads
// it at the next login; Keyport is already running when the user turns the
// option on, so it is not loaded now.
func (e Entry) path() (string, error) {
	dir := e.Dir
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("start at login: find the home dir: %w", err)
		}
		dir = filepath.Join(home, "Library", "LaunchAgents")
	}
	return filepath.Join(dir, e.ID+".plist"), nil
}

func (e Entry) enable() error {
	p, err := e.path()
	if err != nil {
		return err
	}
	return writeAtomic(p, []byte(launchAgent(e)))
}

func (e Entry) disable() error {
	p, err := e.path()
	if err != nil {
		return err
	}
	return removeIfExists(p)
}

func (e Entry) enabled() (bool, error) {
	p, err := e.path()
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("start at login: %w", err)
	}
	return true, nil
}
