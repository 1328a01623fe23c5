package app

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/internal/apptest"
)

// TestProfileInTheApp: turning a profile on in the tray app turns its
// servers' proxies on and serves it on its own port; an edit of the
// profile (a rename with the user's description) reaches a client's
// running session with list_changed; after a restart the endpoint is back
// on the same port; removing a server takes it out of the profile.
func TestProfileInTheApp(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t)
	a1 := apptest.NewUpstreamWith(t, "tok-a", "search", "list_issues")
	b1 := apptest.NewUpstreamWith(t, "tok-b", "search")
	writeServers(t, te, "servers:\n  - {name: alpha, url: "+a1.URL+", auth: {type: bearer}}\n  - {name: beta, url: "+b1.URL+", auth: {type: bearer}}\n")
	app := newTestApp(t, te)
	app.SetSecret("alpha", "bearer", "tok-a")
	app.SetSecret("beta", "bearer", "tok-b")
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := app.SetProfile(NewProfile{Name: "work", Servers: []ProfileServer{{Server: "alpha"}, {Server: "beta"}}}, true); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := app.SetProfileEnabled(ctx, "work", true); err != nil {
		t.Fatal(err)
	}
	v, _ := app.Profile("work")
	if v.State != ProxyRunning || v.LocalURL == "" {
		t.Fatalf("profile view: %+v", v)
	}
	for _, s := range []string{"alpha", "beta"} {
		if sv, _ := app.Server(s); !sv.Enabled || sv.State != ProxyRunning {
			t.Errorf("%s's proxy is not on with the profile: %+v", s, sv)
		}
	}
	var changed atomic.Int32
	c := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed.Add(1) }})
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: v.LocalURL}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if got := sortedNames(apptest.ToolNames(t, cs)); !slices.Equal(got, []string{"alpha_search", "beta_search", "list_issues"}) {
		t.Fatalf("tools = %v", got)
	}
	waitFor(t, "the members to be up", func() bool {
		v, _ := app.Profile("work")
		return len(v.Members) == 2 && v.Members[0].Up && v.Members[1].Up
	})

	n := changed.Load()
	if err := app.SetProfile(NewProfile{Name: "work", Servers: []ProfileServer{
		{Server: "alpha", Overrides: map[string]ToolOverride{"list_issues": {Rename: "issues", Description: "mine"}}},
		{Server: "beta"},
	}}, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "list_changed after the edit", func() bool { return changed.Load() > n })
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tl := range res.Tools {
		found = found || (tl.Name == "issues" && tl.Description == "mine")
	}
	if !found {
		t.Errorf("the rename did not reach the running session: %v", apptest.ToolNames(t, cs))
	}

	if err := app.RemoveServer("beta"); err != nil {
		t.Fatal(err)
	}
	if p, _ := app.Profile("work"); len(p.Servers) != 1 {
		t.Errorf("beta is still in the profile: %+v", p.Servers)
	}
	cs.Close()
	port := v.Port
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}

	again := newTestApp(t, te)
	if err := again.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the profile to come back", func() bool {
		v, _ := again.Profile("work")
		return v.State == ProxyRunning
	})
	if v, _ := again.Profile("work"); v.Port != port {
		t.Errorf("the profile came back on port %d, was %d", v.Port, port)
	}
	waitFor(t, "the profile's tools after the restart", func() bool {
		got, err := apptest.TryToolNames(localURL(port))
		return err == nil && slices.Equal(sortedNames(got), []string{"issues", "search"})
	})
}

func sortedNames(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
