package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"

	"keyport/app"
	"keyport/ui/fakecore"
)

// renderedText is the text an object draws, its lines joined by spaces.
func renderedText(o fyne.CanvasObject) string {
	var parts []string
	for _, c := range test.LaidOutObjects(o) {
		if t, ok := c.(*canvas.Text); ok && c.Visible() && strings.TrimSpace(t.Text) != "" {
			parts = append(parts, strings.TrimSpace(t.Text))
		}
	}
	return strings.Join(parts, " ")
}

// TestErrorsReadableInFull: a long error is cut to one line with "…" in
// the list, and shown whole, wrapped, in the detail header.
func TestErrorsReadableInFull(t *testing.T) {
	const msg = "sentry unreachable: cannot resolve mcp.sentry.dev (lookup mcp.sentry.dev on 127.0.0.53:53: no such host); Keyport retries every 30 s."
	core := fakecore.Sample()
	core.Update("sentry", func(v *app.ServerView) { v.LastError = msg })
	core.Emit(app.Event{Kind: app.EventServers, Server: "sentry"})
	h := newHarness(t, core)
	h.selectServer("sentry")
	h.settle()
	if got := renderedText(h.u.Detail.Status); got != msg {
		t.Errorf("detail header shows %q,\nwant the whole error %q", got, msg)
	}
	row := renderedText(h.row("sentry").prob)
	if !strings.HasSuffix(row, "…") {
		t.Errorf("the list row shows %q; want one line cut with …", row)
	}
}
