package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"keyport/app"
	"keyport/ui/fakecore"
)

// TestProfileRowCountsOnlyMembersKnownDown: a running profile whose
// members no client has used yet (idle) reads "Running", not "unavailable";
// a member that was tried and is down is counted.
func TestProfileRowCountsOnlyMembersKnownDown(t *testing.T) {
	core := fakecore.Sample()
	core.AddProfile(app.ProfileView{
		NewProfile: app.NewProfile{Name: "fresh", Servers: []app.ProfileServer{{Server: "github"}, {Server: "linear"}}},
		Enabled:    true, State: app.ProxyRunning,
		Members: []app.ProfileMember{{Server: "github", Idle: true, Error: "not connected yet"}, {Server: "linear", Idle: true, Error: "not connected yet"}},
	})
	core.AddProfile(app.ProfileView{
		NewProfile: app.NewProfile{Name: "used", Servers: []app.ProfileServer{{Server: "github"}, {Server: "linear"}}},
		Enabled:    true, State: app.ProxyRunning,
		Members: []app.ProfileMember{{Server: "github", Up: true}, {Server: "linear", Error: "connection refused"}},
	})
	h := newHarness(t, core)
	test.Tap(h.u.Profiles)
	h.waitFor("the profiles view", func() bool { return h.u.ProfilesView != nil })
	rows := h.u.ProfilesView.Rows
	if got := rows["fresh"].State.Text; got != app.ProxyRunning.Label() {
		t.Errorf("fresh profile reads %q, want %q", got, app.ProxyRunning.Label())
	}
	if got := rows["used"].State.Text; !strings.Contains(got, "1 server unavailable") {
		t.Errorf("used profile reads %q, want it to count linear as unavailable", got)
	}
}

// TestProfileEditorOpensOnItsServers: editing a profile whose server sits
// below others in the list scrolls the list to that server and its tools.
func TestProfileEditorOpensOnItsServers(t *testing.T) {
	core := fakecore.Sample()
	core.ToolNames = map[string][]string{"warehouse": {"query", "tables", "columns", "explain"}}
	core.AddProfile(app.ProfileView{NewProfile: app.NewProfile{Name: "data", Servers: []app.ProfileServer{{Server: "warehouse"}}}})
	h := newHarness(t, core)
	test.Tap(h.u.Profiles)
	h.waitFor("the profiles view", func() bool { return h.u.ProfilesView != nil })
	test.Tap(h.u.ProfilesView.Rows["data"].Edit)
	h.waitFor("the editor", func() bool { return h.u.ProfileEditor != nil })
	e := h.u.ProfileEditor
	if e.Servers["warehouse"] == nil {
		t.Fatalf("the editor offers %v", e.order)
	}
	h.waitFor("warehouse's tools", func() bool { return len(e.Servers["warehouse"].Tools) == 4 })
	h.settle()
	want := e.Servers["warehouse"].box.Position().Y
	if want <= 0 {
		t.Fatalf("warehouse sits at %v: the test needs servers above it", want)
	}
	if got := e.scroll.Offset.Y; got <= 0 {
		t.Errorf("the list is at offset %v; want it scrolled towards warehouse (at %v)", got, want)
	}
}
