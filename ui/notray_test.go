package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"keyport/ui/fakecore"
)

// TestCloseWithoutTray: on a desktop without tray icons, closing the
// window says that Keyport keeps running and how to come back; "Keep
// running" with "Don't show this again" closes the window and is
// remembered, so the next close just closes.
func TestCloseWithoutTray(t *testing.T) {
	h := newHarness(t, fakecore.Sample())
	checks := 0
	h.u.SetTrayCheck(func() bool { checks++; return false })
	h.u.CloseWindow()
	h.waitFor("the no-tray dialog", func() bool { return h.u.NoTrayDialog != nil })
	top := h.u.Window.Canvas().Overlays().Top()
	if top == nil || !strings.Contains(test.RenderObjectToMarkup(top), "launch Keyport again") {
		t.Fatal("the dialog does not say how to come back")
	}
	if h.u.quitting {
		t.Fatal("the window closed before the user chose")
	}
	n := h.u.NoTrayDialog
	test.Tap(n.DontShow)
	test.Tap(n.Keep)
	h.settle()
	if !h.u.quitting || h.u.NoTrayDialog != nil {
		t.Fatalf("Keep running: window closing %t, dialog %v", h.u.quitting, h.u.NoTrayDialog)
	}
	if !h.app.Preferences().Bool(prefNoTrayTold) {
		t.Error("Don't show this again was not remembered")
	}

	// A later window of the same app: told already, it just closes.
	h2 := &harness{t: t, app: h.app, core: fakecore.Sample(), q: make(chan func(), 4096)}
	h2.u = newUI(h2.app, h2.core, options{do: func(f func()) { h2.q <- f }})
	t.Cleanup(func() { h2.u.Close(); h2.settle() })
	h2.u.SetTrayCheck(func() bool { checks++; return false })
	before := checks
	h2.u.CloseWindow()
	h2.settle()
	if !h2.u.quitting || h2.u.NoTrayDialog != nil || checks != before {
		t.Errorf("told already: closing %t, dialog %v, tray checked %d more times", h2.u.quitting, h2.u.NoTrayDialog, checks-before)
	}
}

// TestCloseWithoutTrayCancelAndQuit: Cancel keeps the window; Quit Keyport
// quits everything; with a tray icon shown there is no question at all.
func TestCloseWithoutTrayCancelAndQuit(t *testing.T) {
	h := newHarness(t, fakecore.Sample())
	h.u.SetTrayCheck(func() bool { return false })
	h.u.CloseWindow()
	h.waitFor("the no-tray dialog", func() bool { return h.u.NoTrayDialog != nil })
	tapButton(t, h, "Cancel")
	h.settle()
	if h.u.quitting || h.u.NoTrayDialog != nil {
		t.Fatalf("Cancel: window closing %t, dialog %v", h.u.quitting, h.u.NoTrayDialog)
	}
	h.u.CloseWindow()
	h.waitFor("the dialog again", func() bool { return h.u.NoTrayDialog != nil })
	test.Tap(h.u.NoTrayDialog.QuitAll)
	h.settle()
	if !h.u.quitting {
		t.Fatal("Quit Keyport did not quit")
	}
	if h.app.Preferences().Bool(prefNoTrayTold) {
		t.Error("remembered without Don't show this again")
	}

	shown := newHarness(t, fakecore.Sample())
	shown.u.SetTrayCheck(func() bool { return true })
	shown.u.CloseWindow()
	shown.waitFor("the window to close", func() bool { return shown.u.quitting }) // the tray check runs in the background
	if !shown.u.quitting || shown.u.NoTrayDialog != nil {
		t.Errorf("with a tray icon: closing %t, dialog %v", shown.u.quitting, shown.u.NoTrayDialog)
	}
}
