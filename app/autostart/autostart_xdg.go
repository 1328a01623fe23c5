//go:build !darwin && !windows

package autostart

import (
	"fmt"
	"os"
	"path/filepath"
)

// path is $XDG_CONFIG_HOME/autostart/ID.desktop (or Dir/ID.desktop).
func (e Entry) path() (string, error) {
	dir := e.Dir
	if dir == "" {
		base := os.Getenv("XDG_CONFIG_HOME")
		if base == "" || !filepath.IsAbs(base) {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("start at login: find the home dir: %w", err)
			}
			base = filepath.Join(home, ".config")
		}
		dir = filepath.Join(base, "autostart")
	}
	return filepath.Join(dir, e.ID+".desktop"), nil
}

func (e Entry) enable() error {
	p, err := e.path()
	if err != nil {
		return err
	}
	return writeAtomic(p, []byte(desktopFile(e)))
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
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("start at login: read %s: %w", p, err)
	}
	return desktopEnabled(b), nil
}
