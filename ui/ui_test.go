package ui

import (
	"testing"

	"fyne.io/fyne/v2/test"

	"keyport/app"
)

func newTestUI(t *testing.T) *UI {
	t.Helper()
	fa := test.NewTempApp(t)
	core, err := app.New(app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	return New(fa, core)
}

func TestWindowStartsEmptyWithHint(t *testing.T) {
	u := newTestUI(t)
	if got := u.Window.Title(); got != "Keyport" {
		t.Errorf("title = %q, want Keyport", got)
	}
	if n := u.List.Length(); n != 0 {
		t.Errorf("list has %d rows, want 0", n)
	}
	if !u.Empty.Visible() || u.Empty.Text == "" {
		t.Error("an empty list must show a hint")
	}
}

func TestTrayMenuOpensAndQuits(t *testing.T) {
	t.Parallel()
	var opened, quit int
	m := trayMenu(func() { opened++ }, func() { quit++ })
	var labels []string
	for _, it := range m.Items {
		if it.IsSeparator {
			continue
		}
		labels = append(labels, it.Label)
		it.Action()
	}
	if len(labels) != 2 || labels[0] != "Open Keyport" || labels[1] != "Quit" {
		t.Fatalf("tray items = %q, want [Open Keyport Quit]", labels)
	}
	if opened != 1 || quit != 1 {
		t.Fatalf("actions ran open=%d quit=%d, want 1 each", opened, quit)
	}
}
