package ui

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"keyport/ui/fakecore"
)

// tapButton taps the button labelled text in the window's top overlay.
func tapButton(t *testing.T, h *harness, text string) {
	t.Helper()
	top := h.u.Window.Canvas().Overlays().Top()
	if top == nil {
		t.Fatalf("no dialog to tap %q in", text)
	}
	for _, o := range test.LaidOutObjects(top) {
		if b, ok := o.(*widget.Button); ok && b.Text == text {
			test.Tap(b)
			return
		}
		if b, ok := o.(*dialogButton); ok && b.Text == text {
			test.Tap(b)
			return
		}
	}
	t.Fatalf("no %q button in the dialog:\n%s", text, test.RenderObjectToMarkup(top))
}

// TestBackendLost: when the tray process vanishes, the window says what
// happened and what it means, and "Start Keyport" starts it again and
// closes the window; a failure to start says why and keeps the window.
func TestBackendLost(t *testing.T) {
	h := newHarness(t, fakecore.Sample())
	var starts atomic.Int32
	fail := errors.New("exec format error")
	h.u.BackendLost(func() error {
		if starts.Add(1) == 1 {
			return fail
		}
		return nil
	})
	h.settle()
	h.u.BackendLost(func() error { t.Error("a second dialog"); return nil }) // once is enough
	top := h.u.Window.Canvas().Overlays().Top()
	if top == nil || !strings.Contains(test.RenderObjectToMarkup(top), "stopped unexpectedly") {
		t.Fatal("no dialog saying Keyport stopped")
	}

	tapButton(t, h, "Start Keyport")
	h.waitFor("the failure", func() bool {
		top := h.u.Window.Canvas().Overlays().Top()
		return top != nil && strings.Contains(test.RenderObjectToMarkup(top), "ould not start Keyport: exec format error")
	})
	if h.u.quitting {
		t.Fatal("the window closed although Keyport did not start")
	}
	h.u.Window.Canvas().Overlays().Top().Hide() // dismiss the error
	h.settle()
	h.u.LostDialog.Start()
	h.waitFor("the window to close", func() bool { return h.u.quitting })
	if starts.Load() != 2 {
		t.Errorf("started %d times", starts.Load())
	}
}

// TestBackendLostClose: "Close" closes the window without starting
// anything.
func TestBackendLostClose(t *testing.T) {
	h := newHarness(t, fakecore.Sample())
	h.u.BackendLost(func() error { t.Error("Close started Keyport"); return nil })
	h.settle()
	tapButton(t, h, "Close")
	h.waitFor("the window to close", func() bool { return h.u.quitting })
}

var _ fyne.Widget = (*widget.Button)(nil)

// TestSlowTrayNeverBlocksTheWindow: reading the clients' states is a call
// to the tray process; while it is slow to answer, the window keeps
// answering the user, and the rows appear once the answer comes.
func TestSlowTrayNeverBlocksTheWindow(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	gate := make(chan struct{})
	core.SlowClients(gate)
	done := make(chan struct{})
	go func() { // the user's actions, on the harness's fyne goroutine
		defer close(done)
		h.selectServer("github")
		h.selectTab("Clients")
		test.Type(h.u.Search, "lin")
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		close(gate)
		t.Fatal("the window froze while the tray process was slow to answer")
	}
	h.settle()
	if got := h.shownNames(); len(got) != 1 || got[0] != "linear" {
		t.Errorf("typing while the tray is slow filtered to %v", got)
	}
	h.u.Search.SetText("")
	h.selectServer("github")
	close(gate)
	h.waitFor("the clients' rows", func() bool { return len(h.u.Detail.clients.rows) > 0 })
}
