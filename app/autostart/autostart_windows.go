//go:build windows

package autostart

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows/registry"
)

// runKey is the current user's Run key.
const runKey = `Software\Microsoft\Windows\CurrentVersion\Run`

func (e Entry) key() string {
	if e.Dir != "" {
		return e.Dir
	}
	return runKey
}

func (e Entry) enable() error {
	k, _, err := registry.CreateKey(registry.CURRENT_USER, e.key(), registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf(`start at login: open HKCU\%s: %w`, e.key(), err)
	}
	defer k.Close()
	if err := k.SetStringValue(e.Name, runCommand(e)); err != nil {
		return fmt.Errorf(`start at login: set HKCU\%s\%s: %w`, e.key(), e.Name, err)
	}
	return nil
}

func (e Entry) disable() error {
	k, err := registry.OpenKey(registry.CURRENT_USER, e.key(), registry.SET_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf(`start at login: open HKCU\%s: %w`, e.key(), err)
	}
	defer k.Close()
	if err := k.DeleteValue(e.Name); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return fmt.Errorf(`start at login: delete HKCU\%s\%s: %w`, e.key(), e.Name, err)
	}
	return nil
}

func (e Entry) enabled() (bool, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, e.key(), registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf(`start at login: open HKCU\%s: %w`, e.key(), err)
	}
	defer k.Close()
	_, _, err = k.GetStringValue(e.Name)
	if errors.Is(err, registry.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf(`start at login: read HKCU\%s\%s: %w`, e.key(), e.Name, err)
	}
	return true, nil
}
