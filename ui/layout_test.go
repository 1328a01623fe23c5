package ui

import (
	"slices"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"keyport/ui/fakecore"
)

// TestLayoutNamesWhatIsOnScreen: the layout the real-window test clicks by
// names the widgets where they are: a tap at the reported middle of a
// row's switch flips that server, rows carry their status text and tone,
// and what is not on screen is not reported.
func TestLayoutNamesWhatIsOnScreen(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	l := h.u.Layout()
	if l.Scale != 1 || l.Width != 900 || l.Height != 600 || len(l.Dialogs) != 0 {
		t.Errorf("layout %+v", l)
	}
	for _, name := range []string{"row:github", "switch:github", "switch:warehouse", "detail.switch", "detail.status",
		"detail.credential", "button:Add server", "button:Import", "settings", "search", "divider"} {
		if _, ok := l.Widgets[name]; !ok {
			t.Errorf("%s not in the layout", name)
		}
	}
	if w := l.Widgets["row:warehouse"]; w.Tone != "danger" || w.Text == "" {
		t.Errorf("warehouse's row: %+v, want its error in danger", w)
	}
	if w := l.Widgets["row:github"]; w.Tone != "" || w.Text != "http://127.0.0.1:41002/mcp" {
		t.Errorf("github's row: %+v", w)
	}
	x, y := l.Widgets["switch:github"].Center()
	test.TapCanvas(h.u.Window.Canvas(), fyne.NewPos(float32(x), float32(y)))
	h.waitFor("github turned off", func() bool { return slices.Contains(core.Calls(), "SetProxyEnabled github false") })

	x, y = l.Widgets["button:Add server"].Center()
	test.TapCanvas(h.u.Window.Canvas(), fyne.NewPos(float32(x), float32(y)))
	h.settle()
	l = h.u.Layout()
	if !slices.Equal(l.Dialogs, []string{"Add server"}) {
		t.Fatalf("dialogs after tapping Add server: %q", l.Dialogs)
	}
	b, ok := l.Widgets["dialog.button:Cancel"]
	if !ok {
		t.Fatal("the dialog's Cancel button is not in the layout")
	}
	x, y = b.Center()
	test.TapCanvas(h.u.Window.Canvas(), fyne.NewPos(float32(x), float32(y)))
	h.settle()
	if l := h.u.Layout(); len(l.Dialogs) != 0 {
		t.Errorf("Cancel at its reported place left %q open", l.Dialogs)
	}

	h.u.Search.SetText("zzz")
	h.settle()
	for name := range h.u.Layout().Widgets {
		if len(name) > 7 && name[:7] == "switch:" {
			t.Errorf("%s reported while no row is shown", name)
		}
	}
}
