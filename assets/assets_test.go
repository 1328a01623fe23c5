package assets

import (
	"bytes"
	"image/png"
	"testing"
)

func TestIconsAreRealPNGs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		data    []byte
		minSide int
	}{
		{"app", AppIcon, 256},
		{"tray-idle", TrayIdle, 32},
		{"tray-active", TrayActive, 32},
		{"tray-error", TrayError, 32},
	} {
		img, err := png.Decode(bytes.NewReader(tc.data))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", tc.name, err)
		}
		b := img.Bounds()
		if b.Dx() < tc.minSide || b.Dy() < tc.minSide || b.Dx() != b.Dy() {
			t.Errorf("%s: %dx%d, want a square of at least %d", tc.name, b.Dx(), b.Dy(), tc.minSide)
		}
		// A drawn icon has transparent corners and more than a couple of colours.
		if _, _, _, a := img.At(b.Min.X, b.Min.Y).RGBA(); a != 0 {
			t.Errorf("%s: top-left corner is opaque; icons have transparent backgrounds", tc.name)
		}
		colours := map[[4]uint32]bool{}
		for y := b.Min.Y; y < b.Max.Y; y += 2 {
			for x := b.Min.X; x < b.Max.X; x += 2 {
				r, g, bb, a := img.At(x, y).RGBA()
				colours[[4]uint32{r, g, bb, a}] = true
			}
		}
		if len(colours) < 8 {
			t.Errorf("%s: only %d colours; looks like a placeholder", tc.name, len(colours))
		}
	}
	if bytes.Equal(TrayIdle, TrayActive) || bytes.Equal(TrayActive, TrayError) {
		t.Error("tray state icons must differ")
	}
}
