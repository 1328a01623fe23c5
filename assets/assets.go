// Package assets embeds Keyport's icons: the application icon and the three
// tray states. The PNGs are rendered from the SVG sources in src/ with
// `make icons` (rsvg-convert); both are committed so builds need no tools.
package assets

import _ "embed"

// AppIcon is the 512×512 application icon (window, launcher, package).
//
//go:embed icon.png
var AppIcon []byte

// TrayIdle is the tray icon when no proxy runs.
//
//go:embed tray-idle.png
var TrayIdle []byte

// TrayActive is the tray icon when at least one proxy runs and none failed.
//
//go:embed tray-active.png
var TrayActive []byte

// TrayError is the tray icon when a proxy or upstream is in error.
//
//go:embed tray-error.png
var TrayError []byte
