package ui

import (
	"testing"

	"keyport/app"
	"keyport/ui/fakecore"
)

// TestForeignPeersCounter: the "Other users" counter appears in a server's
// traffic once its proxy refused another user's request, with the count.
func TestForeignPeersCounter(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	h.selectServer("github")
	o := h.u.Detail.overview
	if o.foreign.Visible() {
		t.Fatal("the Other users counter shows while no request was refused")
	}
	core.Update("github", func(s *app.ServerView) { s.Counters.ForeignPeers = 3 })
	h.waitFor("the counter shown", func() bool { return o.foreign.Visible() && o.counters[counterForeign].Text == "3" })
	core.Update("github", func(s *app.ServerView) { s.Counters.ForeignPeers = 0 }) // a restarted core
	h.waitFor("the counter hidden", func() bool { return !o.foreign.Visible() })
}
