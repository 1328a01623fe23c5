package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// Theme is Keyport's theme: fyne's default, which follows the system's
// light or dark mode, with status colours chosen to stay readable as text
// on both backgrounds (fyne's own green and amber are too light on white:
// about 1.6:1 and 2.2:1). Every status colour here has a contrast of at
// least 4.5:1 with its background.
func Theme() fyne.Theme { return statusTheme{theme.DefaultTheme()} }

// withStatusColours wraps base (tests and screenshots use fixed variants).
func withStatusColours(base fyne.Theme) fyne.Theme { return statusTheme{base} }

type statusTheme struct{ fyne.Theme }

var (
	lightSuccess = color.NRGBA{R: 0x15, G: 0x80, B: 0x3d, A: 0xff} // 5.0:1 on white
	lightWarning = color.NRGBA{R: 0xb4, G: 0x53, B: 0x09, A: 0xff} // 5.0:1
	lightError   = color.NRGBA{R: 0xc6, G: 0x28, B: 0x28, A: 0xff} // 5.6:1
	darkSuccess  = color.NRGBA{R: 0x4a, G: 0xde, B: 0x80, A: 0xff} // 10:1 on #171718
	darkWarning  = color.NRGBA{R: 0xfb, G: 0x92, B: 0x3c, A: 0xff} // 7.9:1
	darkError    = color.NRGBA{R: 0xf8, G: 0x71, B: 0x71, A: 0xff} // 6.6:1
)

// Color overrides the status colours and defers everything else.
func (t statusTheme) Color(n fyne.ThemeColorName, v fyne.ThemeVariant) color.Color {
	light := isLight(t.Theme.Color(theme.ColorNameBackground, v))
	switch n {
	case theme.ColorNameSuccess:
		if light {
			return lightSuccess
		}
		return darkSuccess
	case theme.ColorNameWarning:
		if light {
			return lightWarning
		}
		return darkWarning
	case theme.ColorNameError:
		if light {
			return lightError
		}
		return darkError
	}
	return t.Theme.Color(n, v)
}

// isLight reports whether a background colour is light (the base theme may
// ignore the variant, e.g. fyne's fixed LightTheme).
func isLight(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return 299*r+587*g+114*b > 500*0xffff
}
