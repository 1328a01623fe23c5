package ui

import (
	"testing"

	"fyne.io/fyne/v2"

	"keyport/app"
)

func TestFitWindow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		rec       app.WindowPrefs
		work      fyne.Size
		wantSize  fyne.Size
		wantSplit float64
	}{
		{"first run, large screen", app.WindowPrefs{}, fyne.NewSize(2560, 1400), fyne.NewSize(1280, 860), defaultSplit},
		{"first run, laptop", app.WindowPrefs{}, fyne.NewSize(1366, 728), fyne.NewSize(1092.8, 618.8), defaultSplit},
		{"first run, small screen", app.WindowPrefs{}, fyne.NewSize(800, 560), fyne.NewSize(800, 560), defaultSplit},
		{"first run, screen unknown", app.WindowPrefs{}, fyne.Size{}, fyne.NewSize(1280, 860), defaultSplit},
		{"as left", app.WindowPrefs{Width: 1000, Height: 700, Split: 0.3}, fyne.NewSize(1600, 1000), fyne.NewSize(1000, 700), 0.3},
		{"as left on a bigger screen, now a smaller one", app.WindowPrefs{Width: 2400, Height: 1300, Split: 0.5},
			fyne.NewSize(1366, 728), fyne.NewSize(1366, 728), 0.5},
		{"divider pushed to the edge", app.WindowPrefs{Width: 1000, Height: 700, Split: 0.97}, fyne.NewSize(1600, 1000),
			fyne.NewSize(1000, 700), defaultSplit},
	} {
		size, split := fitWindow(tt.rec, tt.work)
		if size != tt.wantSize || split != tt.wantSplit {
			t.Errorf("%s: %v, %g; want %v, %g", tt.name, size, split, tt.wantSize, tt.wantSplit)
		}
	}
}

// TestWindowRemembersSizeAndSplit: the window opens as recorded, and a
// resize or a divider move is recorded a moment later; closing records the
// last change at once.
func TestWindowRemembersSizeAndSplit(t *testing.T) {
	core := simpleCore()
	if err := core.SetWindowPrefs(app.WindowPrefs{Width: 1000, Height: 700, Split: 0.3}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, core)
	h.u.Place(fyne.NewSize(1600, 1000))
	h.settle()
	if s := h.u.Window.Canvas().Size(); s != fyne.NewSize(1000, 700) || h.u.split.Offset != 0.3 {
		t.Fatalf("opened at %v with split %g, want 1000x700 and 0.3", s, h.u.split.Offset)
	}
	h.u.Window.Resize(fyne.NewSize(1100, 720))
	h.waitFor("the new size recorded", func() bool { return core.WindowPrefs() == app.WindowPrefs{Width: 1100, Height: 720, Split: 0.3} })
	h.u.split.SetOffset(0.5)
	h.waitFor("the divider recorded", func() bool { return core.WindowPrefs().Split == 0.5 })
	h.u.Window.Resize(fyne.NewSize(1200, 800))
	h.u.Quit()
	h.waitFor("recorded on close", func() bool { return core.WindowPrefs() == app.WindowPrefs{Width: 1200, Height: 800, Split: 0.5} })
}

// TestUnplacedWindowRecordsNothing: until Place ran (the window's first
// size is the app's, not the user's), nothing is recorded.
func TestUnplacedWindowRecordsNothing(t *testing.T) {
	core := simpleCore()
	h := newHarness(t, core)
	h.u.Window.Resize(fyne.NewSize(1000, 650))
	h.u.Quit()
	h.settle()
	if p := core.WindowPrefs(); p != (app.WindowPrefs{}) {
		t.Errorf("recorded %+v before the window was placed", p)
	}
}
