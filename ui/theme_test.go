package ui

import (
	"image/color"
	"math"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// contrast is the WCAG contrast ratio of two colours.
func contrast(a, b color.Color) float64 {
	lum := func(c color.Color) float64 {
		r, g, b, _ := c.RGBA()
		ch := func(v uint32) float64 {
			s := float64(v) / 0xffff
			if s <= 0.03928 {
				return s / 12.92
			}
			return math.Pow((s+0.055)/1.055, 2.4)
		}
		return 0.2126*ch(r) + 0.7152*ch(g) + 0.0722*ch(b)
	}
	la, lb := lum(a), lum(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func TestStatusColoursAreReadable(t *testing.T) {
	t.Parallel()
	// Why the theme exists: fyne's own green is unreadable on white.
	def := theme.DefaultTheme()
	if c := contrast(def.Color(theme.ColorNameSuccess, theme.VariantLight), def.Color(theme.ColorNameBackground, theme.VariantLight)); c > 2 {
		t.Errorf("fyne's light success colour has contrast %.2f; the override may no longer be needed", c)
	}
	for _, tc := range []struct {
		name    string
		th      fyne.Theme
		variant fyne.ThemeVariant
	}{
		{"system light", Theme(), theme.VariantLight},
		{"system dark", Theme(), theme.VariantDark},
		{"fixed light", withStatusColours(theme.LightTheme()), theme.VariantDark}, //nolint:staticcheck
		{"fixed dark", withStatusColours(theme.DarkTheme()), theme.VariantLight},  //nolint:staticcheck
	} {
		bg := tc.th.Color(theme.ColorNameBackground, tc.variant)
		for _, n := range []fyne.ThemeColorName{theme.ColorNameSuccess, theme.ColorNameWarning, theme.ColorNameError} {
			if c := contrast(tc.th.Color(n, tc.variant), bg); c < 4.5 {
				t.Errorf("%s: %s has contrast %.2f:1 on the background, want ≥ 4.5", tc.name, n, c)
			}
		}
		if tc.th.Color(theme.ColorNamePrimary, tc.variant) != theme.DefaultTheme().Color(theme.ColorNamePrimary, tc.variant) &&
			tc.name[:6] == "system" {
			t.Errorf("%s: non-status colours must come from fyne's default", tc.name)
		}
	}
}
