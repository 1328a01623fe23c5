package ui

import (
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"keyport/app"
	"keyport/ui/fakecore"
)

// TestProfilesView: the Profiles view lists profiles with their endpoint;
// a new profile is made by ticking a server's tools (from the live list),
// renaming one, and the cost of the selection shows; the switch turns the
// endpoint on.
func TestProfilesView(t *testing.T) {
	core := fakecore.Sample()
	core.ToolNames = map[string][]string{"github": {"list_issues", "get_issue", "create_pr"}, "linear": {"list_projects"}}
	core.AddProfile(app.ProfileView{NewProfile: app.NewProfile{Name: "research", Servers: []app.ProfileServer{{Server: "linear"}}}})
	h := newHarness(t, core)
	test.Tap(h.u.Profiles)
	h.waitFor("the profiles view", func() bool { return h.u.ProfilesView != nil })
	v := h.u.ProfilesView
	if len(v.Rows) != 1 || v.Rows["research"] == nil {
		t.Fatalf("rows = %v", v.Rows)
	}

	test.Tap(v.New)
	h.waitFor("the editor", func() bool { return h.u.ProfileEditor != nil })
	e := h.u.ProfileEditor
	e.Name.SetText("coding")
	gh := e.Servers["github"]
	if gh == nil {
		t.Fatalf("the editor offers %v", e.order)
	}
	gh.Include.SetChecked(true)
	h.waitFor("github's tools", func() bool { return len(gh.Tools) == 3 })
	before := e.Cost.Text
	gh.Tools["create_pr"].Check.SetChecked(false)
	if e.Cost.Text == before || !strings.Contains(e.Cost.Text, "2 tools") || !strings.Contains(e.Cost.Text, "tokens") {
		t.Errorf("cost %q did not follow the selection (was %q)", e.Cost.Text, before)
	}
	gh.Tools["list_issues"].Rename.SetText("issues")
	test.Tap(e.f.Submit)
	h.waitFor("the profile saved", func() bool { return slices.Contains(core.Calls(), "SetProfile coding 1 true") })
	var saved app.ProfileView
	for _, p := range core.Profiles() {
		if p.Name == "coding" {
			saved = p
		}
	}
	if len(saved.Servers) != 1 || !slices.Equal(saved.Servers[0].Tools, []string{"list_issues", "get_issue"}) || saved.Servers[0].Overrides["list_issues"].Rename != "issues" {
		t.Fatalf("saved profile = %+v", saved)
	}

	h.waitFor("the new row", func() bool { return h.u.ProfilesView.Rows["coding"] != nil })
	test.Tap(h.u.ProfilesView.Rows["coding"].Switch)
	h.waitFor("the endpoint on", func() bool {
		r := h.u.ProfilesView.Rows["coding"]
		return r != nil && strings.Contains(r.URL.Text, "http://127.0.0.1:")
	})
	if !slices.Contains(core.Calls(), "SetProfileEnabled coding true") {
		t.Errorf("calls = %q", core.Calls())
	}
}
