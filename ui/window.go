package ui

import (
	"time"

	"fyne.io/fyne/v2"

	"keyport/app"
)

// The window's size and the divider between the list and the detail pane.
// The window opens at a size that fits the screen's work area (ui/launch
// measures it), or as the user left it; changes are recorded in the core
// (state.json) a moment after the user stops resizing or dragging, and when
// the window closes.

const (
	// defaultSplit is the list's share of the width on a first run.
	defaultSplit = 0.4
	// prefsDelay is how long after the last resize or divider move the
	// new size is recorded: one write per gesture, not per frame.
	prefsDelay = time.Second
)

// Smallest and largest sizes the window picks by itself (a recorded size
// is only kept within the work area).
var (
	minDefault = fyne.NewSize(900, 600)
	maxDefault = fyne.NewSize(1280, 860)
)

// fitWindow is where the window opens: the recorded size and split when
// there are some, else a size that suits the work area; never larger than
// the work area (zero: unknown, then nothing is capped).
func fitWindow(rec app.WindowPrefs, work fyne.Size) (fyne.Size, float64) {
	size := fyne.NewSize(rec.Width, rec.Height)
	if rec.Width <= 0 || rec.Height <= 0 {
		size = maxDefault
		if work.Width > 0 && work.Height > 0 {
			// A good share of the screen, for the Tools, Audit and
			// Clients tabs; within bounds either way.
			size = fyne.NewSize(
				fyne.Min(fyne.Max(work.Width*0.8, minDefault.Width), maxDefault.Width),
				fyne.Min(fyne.Max(work.Height*0.85, minDefault.Height), maxDefault.Height))
		}
	}
	if work.Width > 0 && work.Height > 0 {
		size = fyne.NewSize(fyne.Min(size.Width, work.Width), fyne.Min(size.Height, work.Height))
	}
	split := rec.Split
	if split < 0.15 || split > 0.85 { // unrecorded, or a divider pushed to an edge
		split = defaultSplit
	}
	return size, split
}

// Place sizes the window for a screen whose work area is work (in fyne's
// units; zero when unknown) and sets the divider, as recorded in the core
// or picked by fitWindow. From then on, the user's resizes and divider
// moves are recorded. Call it on the fyne goroutine, before or after the
// window is shown (ui/launch calls it again once the screen's scale is
// known).
func (u *UI) Place(work fyne.Size) {
	if !u.placed {
		u.prefs = u.core.WindowPrefs() // the tray answers within 2 s or not at all
	}
	size, split := fitWindow(u.prefs, work)
	u.Window.Resize(size)
	u.split.SetOffset(split)
	u.placed = true
}

// currentPrefs is the window's size and divider position now.
func (u *UI) currentPrefs() app.WindowPrefs {
	s := u.Window.Canvas().Size()
	return app.WindowPrefs{Width: s.Width, Height: s.Height, Split: u.split.Offset}
}

// layoutChanged runs when the list's pane changed size: the window was
// resized or the divider moved. The new size is recorded a moment after
// the last change.
func (u *UI) layoutChanged() {
	if !u.placed || u.quitting {
		return
	}
	if u.prefsTimer != nil {
		u.prefsTimer.Reset(prefsDelay)
		return
	}
	u.prefsTimer = time.AfterFunc(prefsDelay, func() {
		u.do(func() {
			if save := u.prefsToSave(); !u.quitting {
				u.bg(save)
			}
		})
	})
}

// prefsToSave returns what records the window's size and divider position
// if they changed since last recorded (a no-op otherwise). It reads them on
// the fyne goroutine; the returned function calls the core and may run on
// any goroutine.
func (u *UI) prefsToSave() func() {
	if u.prefsTimer != nil {
		u.prefsTimer.Stop()
		u.prefsTimer = nil
	}
	p := u.currentPrefs()
	if !u.placed || p.Width <= 0 || p.Height <= 0 || p == u.prefs {
		return func() {}
	}
	u.prefs = p
	return func() {
		if err := u.core.SetWindowPrefs(p); err != nil {
			fyne.LogError("recording the window's size", err)
		}
	}
}

// sizeWatch lays its objects on top of each other (as a stack) and calls
// changed when its size changes.
type sizeWatch struct {
	changed func()
	last    fyne.Size
}

func (w *sizeWatch) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		o.Move(fyne.NewPos(0, 0))
		o.Resize(size)
	}
	if size != w.last {
		w.last = size
		if w.changed != nil {
			w.changed()
		}
	}
}

func (w *sizeWatch) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var m fyne.Size
	for _, o := range objs {
		m = m.Max(o.MinSize())
	}
	return m
}
