package catalog

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

const profileServers = `servers:
  - name: github
    url: https://api.githubcopilot.com/mcp/
    tools: {deny: [delete_*]}
  - name: linear
    url: https://mcp.linear.app/mcp
`

func TestParseProfiles(t *testing.T) {
	t.Parallel()
	cat, err := Parse("servers.yaml", []byte(profileServers+`profiles:
  - name: coding
    description: issues and projects
    servers:
      - server: github
        tools: [list_issues, get_issue]
        overrides:
          list_issues: {rename: issues, description: "Lists the issues of a repository."}
      - linear
  - name: all
    prefix: always
    servers: [github, linear]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Profiles) != 2 {
		t.Fatalf("profiles = %+v", cat.Profiles)
	}
	c := cat.Profiles[0]
	if c.Name != "coding" || c.Prefix != PrefixAuto || len(c.Servers) != 2 || !slices.Equal(c.Servers[0].Tools, []string{"list_issues", "get_issue"}) ||
		c.Servers[0].Overrides["list_issues"].Rename != "issues" || c.Servers[1].Server != "linear" || c.Servers[1].Tools != nil {
		t.Errorf("coding = %+v", c)
	}
	if p, ok := cat.Profile("all"); !ok || p.Prefix != PrefixAlways || !p.Uses("linear") {
		t.Errorf("all = %+v", p)
	}
}

// TestProfileErrors: every mistake is a servers.yaml error naming the line
// and the field.
func TestProfileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, profiles, want string
	}{
		{"unknown server", "profiles:\n  - name: p\n    servers: [github, gitlab]\n",
			`servers.yaml:9: profiles[0].servers[1].server: no server "gitlab" in servers (known: github, linear)`},
		{"denied tool", "profiles:\n  - name: p\n    servers:\n      - server: github\n        tools: [get_issue, delete_repo]\n",
			`servers.yaml:11: profiles[0].servers[0].tools[1]: tool "delete_repo" is not allowed by server github's tool policy`},
		{"override of a denied tool", "profiles:\n  - name: p\n    servers:\n      - server: github\n        overrides:\n          delete_repo: {rename: nuke}\n",
			`servers.yaml:12: profiles[0].servers[0].overrides.delete_repo: tool "delete_repo" is not allowed by server github's tool policy`},
		{"rename colliding with a tool", "profiles:\n  - name: p\n    servers:\n      - server: github\n        tools: [list_issues]\n      - server: linear\n        tools: [search]\n        overrides:\n          search: {rename: list_issues}\n",
			`servers.yaml:15: profiles[0].servers[1].overrides.search.rename: "list_issues" collides with tool list_issues of github (line 10) in the profile`},
		{"two renames to one name", "profiles:\n  - name: p\n    servers:\n      - server: github\n        overrides:\n          a: {rename: same}\n      - server: linear\n        overrides:\n          b: {rename: same}\n",
			`servers.yaml:15: profiles[0].servers[1].overrides.b.rename: "same" collides with the rename of github's a (line 12)`},
		{"bad rename", "profiles:\n  - name: p\n    servers:\n      - server: github\n        overrides:\n          a: {rename: \"has space\"}\n",
			`servers.yaml:12: profiles[0].servers[0].overrides.a.rename: "has space" is not a valid tool name`},
		{"override outside the selection", "profiles:\n  - name: p\n    servers:\n      - server: github\n        tools: [a]\n        overrides:\n          b: {description: x}\n",
			`servers.yaml:13: profiles[0].servers[0].overrides.b: tool "b" is not in this server's tools for the profile`},
		{"no servers", "profiles:\n  - name: p\n",
			`servers.yaml:8: profiles[0].servers: list the profile's servers`},
		{"server twice", "profiles:\n  - name: p\n    servers: [github, github]\n",
			`servers.yaml:9: profiles[0].servers[1].server: "github" is already the profile's server 0`},
		{"bad prefix", "profiles:\n  - name: p\n    prefix: sometimes\n    servers: [github]\n",
			`servers.yaml:9: profiles[0].prefix: "sometimes": use auto`},
		{"duplicate name", "profiles:\n  - name: p\n    servers: [github]\n  - name: p\n    servers: [linear]\n",
			`servers.yaml:10: profiles[1].name: "p" is already the name of profiles[0]`},
		{"unknown field", "profiles:\n  - name: p\n    server: [github]\n",
			`servers.yaml:9: profiles[0].server: unknown field; did you mean "servers"?`},
	}
	for _, tc := range tests {
		_, err := Parse("servers.yaml", []byte(profileServers+tc.profiles))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error\n%v\nwant it to contain\n%s", tc.name, err, tc.want)
		}
	}
}

func TestCompareProfiles(t *testing.T) {
	t.Parallel()
	parse := func(extra string) *Catalog {
		c, err := Parse("s.yaml", []byte(extra))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := parse(profileServers + "profiles:\n  - {name: a, servers: [github]}\n  - {name: b, servers: [linear]}\n  - {name: c, servers: [linear]}\n")
	cur := parse(strings.Replace(profileServers, "delete_*", "drop_*", 1) + "profiles:\n  - {name: a, servers: [github]}\n  - {name: b, servers: [linear, github]}\n  - {name: d, servers: [linear]}\n")
	d := CompareProfiles(old, cur)
	if !slices.Equal(d.Added, []string{"d"}) || !slices.Equal(d.Changed, []string{"a", "b"}) || !slices.Equal(d.Removed, []string{"c"}) {
		t.Errorf("diff = %+v (a changed through its server's policy)", d)
	}
}

// TestProfileEdits: profiles are written into servers.yaml keeping the
// user's comments; removing a server takes it out of its profiles.
func TestProfileEdits(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/servers.yaml"
	if err := os.WriteFile(path, []byte("# my servers\n"+profileServers+"# my profiles\nprofiles:\n  - name: solo # only linear\n    servers: [linear]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := NewFile(path)
	coding := Profile{Name: "coding", Prefix: PrefixAuto, Servers: []ProfileServer{
		{Server: "github", Tools: []string{"list_issues"}, Overrides: map[string]ToolOverride{"list_issues": {Rename: "issues"}}},
		{Server: "linear"},
	}}
	if err := f.SetProfile(coding); err != nil {
		t.Fatal(err)
	}
	cat, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := cat.Profile("coding"); !got.Equal(coding) {
		t.Errorf("written profile reads back as %+v", got)
	}
	b, _ := os.ReadFile(path)
	for _, keep := range []string{"# my servers", "# my profiles", "# only linear", "- linear\n"} {
		if !strings.Contains(string(b), keep) {
			t.Errorf("the file lost %q:\n%s", keep, b)
		}
	}
	coding.Description = "issues and projects"
	if err := f.SetProfile(coding); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove("linear"); err != nil {
		t.Fatal(err)
	}
	cat, err = f.Load()
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("after removing linear: %v\n%s", err, b)
	}
	if _, ok := cat.Profile("solo"); ok {
		t.Error("the profile left without a server is still there")
	}
	if got, _ := cat.Profile("coding"); len(got.Servers) != 1 || got.Description != "issues and projects" {
		t.Errorf("coding after removing linear = %+v", got)
	}
	if err := f.RemoveProfile("coding"); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveProfile("coding"); !errors.Is(err, ErrNoProfile) {
		t.Errorf("removing a missing profile: %v", err)
	}
}
