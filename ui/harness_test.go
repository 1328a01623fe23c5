package ui

import (
	"os"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"keyport/app"
	"keyport/ui/fakecore"
)

var _ Core = (*fakecore.Core)(nil)

// harness runs a UI over a fake core with the test goroutine acting as the
// fyne goroutine: whatever the UI hands to fyne.Do is queued and run by
// settle/waitFor, so widgets are only ever touched from the test goroutine.
type harness struct {
	t    *testing.T
	app  fyne.App
	u    *UI
	core *fakecore.Core
	q    chan func()
}

func newHarness(t *testing.T, core *fakecore.Core) *harness {
	t.Helper()
	return newThemedHarness(t, core, nil)
}

// newThemedHarness is newHarness with a theme set before the window is built
// (nil keeps the test theme that the markup goldens use).
func newThemedHarness(t *testing.T, core *fakecore.Core, th fyne.Theme) *harness {
	t.Helper()
	h := &harness{t: t, app: test.NewTempApp(t), core: core, q: make(chan func(), 4096)}
	if th != nil {
		h.app.Settings().SetTheme(th)
	}
	h.u = newUI(h.app, core, options{do: func(f func()) { h.q <- f }})
	t.Cleanup(func() { h.u.Close(); h.settle() })
	h.u.Window.Resize(fyne.NewSize(900, 600))
	h.u.Window.Show()
	h.settle()
	return h
}

// settle runs queued UI work until none arrives for a moment.
func (h *harness) settle() {
	h.t.Helper()
	for {
		select {
		case f := <-h.q:
			f()
		case <-time.After(30 * time.Millisecond):
			return
		}
	}
}

// waitFor runs queued UI work until cond holds, failing after 15 s (a
// proxy's graceful stop alone may take 5 s on a loaded machine).
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(15 * time.Second)
	for !cond() {
		select {
		case f := <-h.q:
			f()
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s", what)
		}
	}
	h.settle()
}

// row returns the list row showing the server named name.
func (h *harness) row(name string) *serverRow {
	h.t.Helper()
	var found *serverRow
	for _, o := range test.LaidOutObjects(h.u.List) {
		if r, ok := o.(*serverRow); ok && r.view.Name == name && r.Visible() {
			found = r
		}
	}
	if found == nil {
		h.t.Fatalf("no visible row for %q", name)
	}
	return found
}

// shownNames lists the names the list shows.
func (h *harness) shownNames() []string {
	var out []string
	for _, r := range h.u.shown {
		out = append(out, r.Name)
	}
	return out
}

// selectServer selects a server in the list.
func (h *harness) selectServer(name string) {
	h.t.Helper()
	for i, r := range h.u.shown {
		if r.Name == name {
			h.u.List.Select(i)
			h.settle()
			return
		}
	}
	h.t.Fatalf("%q is not shown", name)
}

func (h *harness) selectTab(title string) {
	h.t.Helper()
	for _, it := range h.u.Detail.Tabs.Items {
		if it.Text == title {
			h.u.Detail.Tabs.Select(it)
			h.settle()
			return
		}
	}
	h.t.Fatalf("no tab %q", title)
}

// TestWriteScreens writes PNGs of the main views rendered by the test
// driver's software painter, with fyne's default theme, to the folder in
// KEYPORT_UI_SHOTS. It is a development aid for iterating on the layout
// without a display; make screenshot captures the real app.
func TestWriteScreens(t *testing.T) {
	dir := os.Getenv("KEYPORT_UI_SHOTS")
	if dir == "" {
		t.Skip("set KEYPORT_UI_SHOTS=DIR to write the views as PNGs")
	}
	for _, variant := range []struct {
		name string
		th   fyne.Theme
	}{{"light", withStatusColours(theme.LightTheme())}, {"dark", withStatusColours(theme.DarkTheme())}} { //nolint:staticcheck // explicit variants for the shots
		h := newThemedHarness(t, fakecore.Sample(), variant.th)
		h.selectServer("github")
		for _, s := range screens {
			s.show(h.u)
			h.settle()
			if _, err := h.u.Screenshot(dir, s.name+"-"+variant.name); err != nil {
				t.Fatal(err)
			}
		}
		// The dialogs.
		h.u.showAddServer()
		h.u.AddDialog.Auth.SetSelected("Secret header")
		h.settle()
		if _, err := h.u.Screenshot(dir, "add-"+variant.name); err != nil {
			t.Fatal(err)
		}
		h.u.AddDialog.d.Hide()
		h.u.showImport()
		h.u.ImportDialog.Query.SetText("e")
		test.Tap(h.u.ImportDialog.Search)
		h.waitFor("results", func() bool { return len(h.u.ImportDialog.results) > 0 })
		h.u.ImportDialog.Results.Select(1)
		h.settle()
		if _, err := h.u.Screenshot(dir, "import-"+variant.name); err != nil {
			t.Fatal(err)
		}
		h.u.ImportDialog.d.Hide()
		h.selectTab("Clients")
		test.Tap(h.u.Detail.clients.rows["claude-code"].Action)
		h.waitFor("preview", func() bool { return h.u.Detail.clients.Preview != nil })
		if _, err := h.u.Screenshot(dir, "preview-"+variant.name); err != nil {
			t.Fatal(err)
		}
	}
	_ = app.ProxyRunning
}

// menuLines renders a menu as lines: "[x] label", "[ ] label", "---",
// "(disabled) label".
func menuLines(m *fyne.Menu) []string {
	var out []string
	for _, it := range m.Items {
		switch {
		case it.IsSeparator:
			out = append(out, "---")
		case it.Disabled:
			out = append(out, "(disabled) "+it.Label)
		case it.Checked:
			out = append(out, "[x] "+it.Label)
		default:
			out = append(out, "[ ] "+it.Label)
		}
	}
	return out
}
