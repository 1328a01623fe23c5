package ui

import (
	"testing"

	"fyne.io/fyne/v2/test"

	"keyport/app"
	"keyport/ui/fakecore"
)

// TestGoldenMarkup renders the main states to fyne's markup and compares
// them with testdata/*.xml (on a mismatch fyne writes the new rendering to
// testdata/failed/; copy it over after checking the change is intended).
func TestGoldenMarkup(t *testing.T) {
	tests := []struct {
		golden string
		core   func() *fakecore.Core
		setup  func(h *harness)
	}{
		{"main_overview.xml", fakecore.Sample, func(h *harness) { h.selectServer("github") }},
		{"detail_tools.xml", fakecore.Sample, func(h *harness) {
			h.selectServer("github")
			h.selectTab("Tools")
			h.waitFor("tools", func() bool { return len(h.u.Detail.tools.tools) > 0 })
		}},
		{"detail_audit.xml", fakecore.Sample, func(h *harness) {
			h.selectServer("github")
			h.selectTab("Audit")
			h.waitFor("audit", func() bool { return len(h.u.Detail.audit.shown) > 0 })
		}},
		{"clients.xml", fakecore.Sample, func(h *harness) { h.selectServer("github"); h.selectTab("Clients") }},
		{"error_row.xml", fakecore.Sample, func(h *harness) { h.selectServer("warehouse") }},
		{"empty.xml", func() *fakecore.Core { return fakecore.New() }, func(*harness) {}},
		{"catalog_error.xml", func() *fakecore.Core {
			c := fakecore.New(app.ServerView{Name: "alpha", UpstreamURL: "https://alpha.example/mcp"})
			c.SetCatalogError("servers.yaml line 7: labels must be a map of strings")
			return c
		}, func(*harness) {}},
		{"no_match.xml", fakecore.Sample, func(h *harness) { h.u.Search.SetText("zzz") }},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			h := newHarness(t, tt.core())
			tt.setup(h)
			h.settle()
			test.AssertRendersToMarkup(t, tt.golden, h.u.Window.Canvas())
		})
	}
}
