package ui

import (
	"math"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"
)

// Layout is where the window's named widgets are on screen, for tests that
// drive the real window with real input (X11 pointer and key events):
// they click what this names instead of guessed pixels, so a layout change
// makes them fail with "switch not found" rather than click empty space.
// ui/launch writes it to a file on request when KEYPORT_TEST_LAYOUT is set
// (docs/ui.md); nothing else uses it.
type Layout struct {
	// Scale is pixels per fyne unit.
	Scale float32 `json:"scale"`
	// Width and Height are the window's content size in pixels.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Split is the list's share of the width (the divider's position).
	Split float64 `json:"split"`
	// Dialogs are the titles of the open dialogs, the top one last.
	Dialogs []string `json:"dialogs"`
	// Widgets by name, in pixels from the window's top-left corner. Names:
	//   row:NAME, switch:NAME   a server's row in the list and its switch
	//   detail.switch, detail.status, detail.credential
	//   button:Add server, button:Import, settings, search
	//   divider                 the divider between list and detail
	//   dialog.button:LABEL     a button of the top dialog
	Widgets map[string]Box `json:"widgets"`
}

// Box is a widget's rectangle in pixels, with what it says when it is text.
type Box struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
	// Text is what a status or row shows (a row: its third line).
	Text string `json:"text,omitempty"`
	// Tone is how that text is coloured: "", "success", "warning" or "danger".
	Tone string `json:"tone,omitempty"`
}

// Center is the point in the middle of the box.
func (b Box) Center() (x, y int) { return b.X + b.W/2, b.Y + b.H/2 }

// Layout reports where the named widgets are now. Call it on the fyne
// goroutine.
func (u *UI) Layout() Layout {
	c := u.Window.Canvas()
	scale := c.Scale()
	size := c.Size()
	l := Layout{Scale: scale, Width: px(size.Width, scale), Height: px(size.Height, scale),
		Split: u.split.Offset, Dialogs: u.OpenDialogs(), Widgets: map[string]Box{}}
	d := fyne.CurrentApp().Driver()
	add := func(name string, o fyne.CanvasObject, text string, imp widget.Importance) {
		if o == nil || !o.Visible() || o.Size().IsZero() {
			return
		}
		pos := d.AbsolutePositionForObject(o)
		b := Box{X: px(pos.X, scale), Y: px(pos.Y, scale), W: px(o.Size().Width, scale), H: px(o.Size().Height, scale),
			Text: text, Tone: tone(imp)}
		if b.X < 0 || b.Y < 0 || b.X >= l.Width || b.Y >= l.Height {
			return // not on screen (a recycled row)
		}
		l.Widgets[name] = b
	}

	// The list's rows: only those inside the list's viewport.
	listPos, listSize := d.AbsolutePositionForObject(u.List), u.List.Size()
	for _, r := range u.rows {
		if r.view.Name == "" || !r.Visible() {
			continue
		}
		p := d.AbsolutePositionForObject(r)
		if p.Y < listPos.Y || p.Y+r.Size().Height > listPos.Y+listSize.Height+1 || (p.X == 0 && p.Y == 0) {
			continue
		}
		text, imp := r.url.Text, r.url.Importance
		if r.prob.Visible() {
			text, imp = r.prob.Text, r.prob.Importance
		}
		add("row:"+r.view.Name, r, text, imp)
		add("switch:"+r.view.Name, r.sw, "", 0)
	}
	if u.Detail.view != nil {
		add("detail.switch", u.Detail.Switch, "", 0)
		add("detail.status", u.Detail.Status, u.Detail.Status.Text, u.Detail.Status.Importance)
		ov := u.Detail.overview
		if u.Detail.Tabs.Selected() != nil && u.Detail.Tabs.Selected().Text == "Overview" {
			add("detail.credential", ov.Credential, ov.Credential.Text, ov.Credential.Importance)
		}
	}
	add("button:Add server", u.AddButton, "", 0)
	add("button:Import", u.Import, "", 0)
	add("settings", u.Settings, "", 0)
	add("search", u.Search, "", 0)
	// The divider lies between the list's pane and the detail pane.
	left, right := u.split.Leading, u.split.Trailing
	lp, rp := d.AbsolutePositionForObject(left), d.AbsolutePositionForObject(right)
	if gap := rp.X - (lp.X + left.Size().Width); gap > 0 {
		l.Widgets["divider"] = Box{X: px(lp.X+left.Size().Width, scale), Y: px(lp.Y, scale),
			W: px(gap, scale), H: px(left.Size().Height, scale)}
	}
	if n := len(u.dialogs); n > 0 {
		for label, b := range u.dialogs[n-1].buttons {
			add("dialog.button:"+label, b, "", 0)
		}
	}
	return l
}

func px(v, scale float32) int { return int(math.Round(float64(v * scale))) }

func tone(imp widget.Importance) string {
	switch imp {
	case widget.SuccessImportance:
		return "success"
	case widget.WarningImportance:
		return "warning"
	case widget.DangerImportance:
		return "danger"
	}
	return ""
}
