package ui

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"keyport/ui/fakecore"
)

// press types a key the way the desktop driver delivers it: to the focused
// widget, or to the window's key handler when nothing has the focus.
func (h *harness) press(key fyne.KeyName) {
	h.t.Helper()
	ev := &fyne.KeyEvent{Name: key}
	c := h.u.Window.Canvas()
	if f := c.Focused(); f != nil {
		f.TypedKey(ev)
	} else if on := c.OnTypedKey(); on != nil {
		on(ev)
	}
	h.settle()
}

// noDialog fails unless no dialog is on screen.
func (h *harness) noDialog(after string) {
	h.t.Helper()
	if d := h.u.OpenDialogs(); len(d) != 0 {
		h.t.Errorf("after %s, dialogs still open: %q", after, d)
	}
	if top := h.u.Window.Canvas().Overlays().Top(); top != nil && top.Visible() {
		h.t.Errorf("after %s, an overlay is still shown:\n%s", after, test.RenderObjectToMarkup(top))
	}
}

// TestEscapeClosesEveryDialog: Escape closes a dialog wherever the focus is
// in it (an entry, the drop-down, a button, nowhere), and does nothing else.
func TestEscapeClosesEveryDialog(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	h.selectServer("warehouse")
	open := map[string]func(){
		"Add server": func() { test.Tap(h.u.AddButton) },
		"Add server, focus on Auth": func() {
			test.Tap(h.u.AddButton)
			h.u.Window.Canvas().Focus(h.u.AddDialog.Auth)
		},
		"Add server, focus on Cancel": func() {
			test.Tap(h.u.AddButton)
			h.u.Window.Canvas().Focus(h.u.AddDialog.Cancel)
		},
		"Import from registry":     func() { test.Tap(h.u.Import) },
		"Credential for warehouse": func() { test.Tap(h.u.Detail.overview.SetCred) },
		"Remove warehouse?":        func() { test.Tap(h.u.Detail.overview.Remove) },
		"an error":                 func() { h.u.showError("Export the audit log", errors.New("disk full")) },
		"New profile, focus on a ticked check": func() {
			h.u.showProfileEditor(nil)
			e := h.u.ProfileEditor
			c := e.Servers[e.order[0]].Include
			test.Tap(c)
			h.u.Window.Canvas().Focus(c)
		},
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range open {
			if !yield(k) {
				return
			}
		}
	}) {
		open[name]()
		h.settle()
		if len(h.u.OpenDialogs()) != 1 {
			t.Fatalf("%s: dialogs open = %q", name, h.u.OpenDialogs())
		}
		h.press(fyne.KeyEscape)
		h.noDialog("Escape in " + name)
		if h.u.AddDialog != nil || h.u.ImportDialog != nil || h.u.SecretDialog != nil {
			t.Errorf("%s: a dialog is still recorded as open after Escape", name)
		}
	}
	for _, c := range core.Calls() {
		if strings.HasPrefix(c, "RemoveServer") || strings.HasPrefix(c, "AddServer") || strings.HasPrefix(c, "SetSecret") ||
			strings.HasPrefix(c, "SetProxyEnabled") {
			t.Errorf("Escape did something: %s", c)
		}
	}
}

// TestEnterSubmitsDialogs: Enter in a dialog does what its main button
// does, and never toggles the server selected behind the dialog (it did:
// Enter with nothing focused turned the proxy off under a preview).
func TestEnterSubmitsDialogs(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)

	// Add server: Enter in the token field adds the server.
	test.Tap(h.u.AddButton)
	d := h.u.AddDialog
	test.Type(d.URL, "https://mcp.notion.com/mcp")
	d.Auth.SetSelected("Bearer token")
	h.u.Window.Canvas().Focus(d.Secret)
	test.Type(d.Secret, "tok")
	h.press(fyne.KeyReturn)
	h.waitFor("added", func() bool { return slices.Contains(h.shownNames(), "notion") })
	h.noDialog("Enter in Add server")

	// An incomplete form: Enter shows what is missing and keeps the dialog.
	test.Tap(h.u.AddButton)
	h.press(fyne.KeyReturn)
	if !h.u.AddDialog.Err.Visible() || len(h.u.OpenDialogs()) != 1 {
		t.Errorf("Enter on an empty form: error %q, dialogs %q", h.u.AddDialog.Err.Text, h.u.OpenDialogs())
	}
	h.press(fyne.KeyEscape)

	// Credential: Enter in the masked field saves it.
	h.selectServer("warehouse")
	test.Tap(h.u.Detail.overview.SetCred)
	test.Type(h.u.SecretDialog.Entries["bearer"], "s3cret")
	h.press(fyne.KeyReturn)
	h.waitFor("saved", func() bool { return slices.Contains(core.Calls(), "SetSecret warehouse bearer (6 bytes)") })
	h.noDialog("Enter in the credential dialog")

	// Import: Enter in the search box searches, then with a result chosen
	// (the list has the focus) imports it.
	test.Tap(h.u.Import)
	im := h.u.ImportDialog
	test.Type(im.Query, "weather")
	h.press(fyne.KeyReturn)
	h.waitFor("results", func() bool { return len(im.results) > 0 })
	if len(h.u.OpenDialogs()) != 1 {
		t.Fatal("Enter in the search box closed the import dialog")
	}
	im.Results.Select(0)
	h.u.Window.Canvas().Focus(im.Results)
	for _, e := range im.Secrets {
		test.Type(e, "v")
	}
	h.press(fyne.KeyReturn)
	h.waitFor("imported", func() bool {
		return slices.ContainsFunc(core.Calls(), func(c string) bool { return strings.HasPrefix(c, "ImportFromRegistry") })
	})
	h.noDialog("Enter in the import dialog")

	// A confirmation with nothing focused: Enter confirms, and the proxy of
	// the selected server is left alone.
	h.selectServer("github")
	h.u.Window.Canvas().Unfocus()
	test.Tap(h.u.Detail.overview.ClearCred)
	h.press(fyne.KeyReturn)
	h.waitFor("cleared", func() bool { return slices.Contains(core.Calls(), "ClearSecrets github") })
	h.noDialog("Enter in a confirmation")

	// The client preview: Enter writes the change.
	h.selectTab("Clients")
	test.Tap(h.u.Detail.clients.rows["cursor"].Action)
	h.waitFor("preview", func() bool { return h.u.Detail.clients.Preview != nil })
	h.press(fyne.KeyReturn)
	h.waitFor("written", func() bool {
		return slices.ContainsFunc(core.Calls(), func(c string) bool { return strings.HasPrefix(c, "ApplyClient cursor github") })
	})
	h.noDialog("Enter in the preview")

	for _, c := range core.Calls() {
		if strings.HasPrefix(c, "SetProxyEnabled") {
			t.Errorf("Enter in a dialog toggled a proxy behind it: %s", c)
		}
	}
	// With no dialog, Enter still toggles the selected server.
	h.u.Window.Canvas().Unfocus()
	h.press(fyne.KeyReturn)
	h.waitFor("toggled", func() bool { return slices.Contains(core.Calls(), "SetProxyEnabled github false") })
}

// TestConfirmationsSayWhatTheyDo: a destructive confirmation's button
// names the action ("Remove", "Clear"), not "Yes".
func TestConfirmationsSayWhatTheyDo(t *testing.T) {
	h := newHarness(t, fakecore.Sample())
	h.selectServer("github")
	for button, open := range map[string]func(){
		"Remove": func() { test.Tap(h.u.Detail.overview.Remove) },
		"Clear":  func() { test.Tap(h.u.Detail.overview.ClearCred) },
	} {
		open()
		h.settle()
		tapButton(t, h, button) // fails when there is no such button
		h.settle()
		h.noDialog(button)
	}
}
