package launch

import (
	"fyne.io/fyne/v2"
	"github.com/go-gl/glfw/v3.3/glfw"

	"keyport/ui"
)

// The window opens at a size that fits the screen. fyne has no API for the
// screen's size, so this asks GLFW, the library fyne's desktop driver runs
// on (and has initialised by the time a window exists): the primary
// monitor's work area, the screen minus panels and docks.

// workArea is the primary monitor's work area in screen pixels, or zeros
// when GLFW cannot tell. Call it on the main goroutine after the fyne
// window is created.
func workArea() (width, height int) {
	defer func() {
		if recover() != nil { // GLFW not initialised, or no monitor
			width, height = 0, 0
		}
	}()
	m := glfw.GetPrimaryMonitor()
	if m == nil {
		return 0, 0
	}
	_, _, width, height = m.GetWorkarea()
	return width, height
}

// place sizes u's window for the work area, in fyne's units at the
// window's current scale.
func place(u *ui.UI) {
	w, h := workArea()
	scale := u.Window.Canvas().Scale()
	if scale <= 0 {
		scale = 1
	}
	u.Place(fyne.NewSize(float32(w)/scale, float32(h)/scale))
}

// showPlaced shows the window at the size that fits the screen. The scale
// of a window is known only once it exists: if it is not 1 (a HiDPI
// screen), the window is placed again in the right units.
func showPlaced(u *ui.UI) {
	place(u)
	u.ShowWindow()
	if u.Window.Canvas().Scale() != 1 {
		place(u)
	}
}
