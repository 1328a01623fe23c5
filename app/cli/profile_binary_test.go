package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/internal/apptest"
)

// profileToken is every profile test's token: they share the session's
// keychain and server names, so they must not write different values.
const profileToken = "tok-profile-31c8-never-leaves"

// profileSetup writes three servers (each with its bearer token) and
// their upstreams, for profile tests through the built binary.
func profileSetup(t *testing.T, b *apptest.Binary, token string) (gh, lin, loc *apptest.Upstream) {
	t.Helper()
	gh = apptest.NewUpstreamWith(t, token, "search", "list_issues", "delete_repo")
	lin = apptest.NewUpstreamWith(t, token, "search", "list_projects")
	loc = apptest.NewUpstreamWith(t, token, "echo")
	b.WriteServers(t, fmt.Sprintf(`servers:
  - name: gh
    url: %s
    auth: {type: bearer}
    tools: {deny: [delete_*]}
  - name: lin
    url: %s
    auth: {type: bearer}
  - name: local
    url: %s
    auth: {type: bearer}
`, gh.URL, lin.URL, loc.URL))
	for _, name := range []string{"gh", "lin", "local"} {
		if code, _, errOut := b.Run(t, token+"\n", "secret", "set", name); code != 0 {
			t.Fatalf("secret set %s: exit %d: %s", name, code, errOut)
		}
	}
	return gh, lin, loc
}

// TestBinaryProfile drives profiles through the built keyport-cli as a
// person does: profile add (a denied tool refused), profile ls, ls, config
// --profile (one keyport-profile-NAME entry, its endpoint's state), proxy
// --profile on that entry's port, a go-sdk client listing and calling tools
// of three servers through it, connect --profile for stdio clients, and
// profile rm taking the entry away. The servers got their tokens; no file
// Keyport wrote holds one.
func TestBinaryProfile(t *testing.T) {
	t.Parallel()
	const token = profileToken
	b := apptest.NewBinary(t)
	gh, lin, loc := profileSetup(t, b, token)

	if code, _, errOut := b.Run(t, "", "profile", "add", "coding", "gh=search,delete_repo", "lin"); code != 1 ||
		!strings.Contains(errOut, `tool "delete_repo" is not allowed by server gh's tool policy`) {
		t.Fatalf("adding a profile with a denied tool: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := b.Run(t, "", "profile", "add", "coding", "gh=search,list_issues", "lin", "nosuch"); code != 1 || !strings.Contains(errOut, `no server "nosuch"`) {
		t.Fatalf("adding a profile with an unknown server: exit %d, stderr %q", code, errOut)
	}
	if code, out, errOut := b.Run(t, "", "profile", "add", "coding", "gh=search,list_issues", "lin", "local", "--description", "issues and projects"); code != 0 || !strings.Contains(out, "Added profile coding") {
		t.Fatalf("profile add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	code, out, errOut := b.Run(t, "", "profile", "ls", "--format", "json")
	var rows []struct {
		Name     string `json:"name"`
		Endpoint string `json:"endpoint"`
		Servers  []struct {
			Server string   `json:"server"`
			Tools  []string `json:"tools"`
		} `json:"servers"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0].Name != "coding" || len(rows[0].Servers) != 3 ||
		!slices.Equal(rows[0].Servers[0].Tools, []string{"search", "list_issues"}) || rows[0].Servers[1].Tools == nil {
		t.Fatalf("profile ls --format json: exit %d, %s %s", code, out, errOut)
	}
	if code, out, _ := b.Run(t, "", "ls"); code != 0 || !strings.Contains(out, "Profile") || !strings.Contains(out, "gh=search,list_issues lin local") {
		t.Errorf("ls does not show the profile after the servers:\n%s", out)
	}

	code, out, errOut = b.Run(t, "", "config", "--profile", "coding", "--client-config=cursor")
	raw, _ := os.ReadFile(filepath.Join(b.Home, ".cursor", "mcp.json"))
	var cfg struct {
		MCPServers map[string]struct {
			URL string `json:"url"`
		} `json:"mcpServers"`
	}
	if code != 0 || json.Unmarshal(raw, &cfg) != nil || len(cfg.MCPServers) != 1 || cfg.MCPServers["keyport-profile-coding"].URL == "" {
		t.Fatalf("config --profile: exit %d, stdout %q, stderr %q, file %s", code, out, errOut, raw)
	}
	entry := cfg.MCPServers["keyport-profile-coding"].URL
	if !strings.Contains(out, "profile coding: "+entry+" is not running") || !strings.Contains(out, "keyport proxy --profile coding") {
		t.Errorf("config --profile before it runs says %q", out)
	}

	port, logs := b.StartProxy(t, "--profile", "coding")
	if want := "http://127.0.0.1:" + port + "/mcp"; want != entry {
		t.Fatalf("proxy --profile serves %s; the client entry says %s", want, entry)
	}
	// Another process sees the endpoint running; no client has used it
	// yet, so its servers are idle, not down.
	if got := profileMembers(t, b, "coding"); got != "gh=idle lin=idle local=idle" {
		t.Errorf("profile ls before any client: members %q", got)
	}
	s := apptest.Connect(t, entry)
	if got := apptest.ToolNames(t, s); !slices.Equal(sorted(got), []string{"echo", "gh_search", "lin_search", "list_issues", "list_projects"}) {
		t.Fatalf("tools through the profile = %v; logs:\n%s", got, logs.String())
	}
	for name, want := range map[string]string{"gh_search": "search:x", "lin_search": "search:x", "list_issues": "list_issues:x", "echo": "echo:x"} {
		res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: map[string]any{"text": "x"}})
		if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != want {
			t.Errorf("call %s: %v %v", name, res, err)
		}
	}
	if res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "delete_repo", Arguments: map[string]any{}}); err == nil && !res.IsError {
		t.Error("delete_repo ran through the profile")
	}
	if slices.Contains(gh.Called(), "delete_repo") || !slices.Contains(gh.Called(), "search") || !slices.Contains(lin.Called(), "search") || !slices.Contains(loc.Called(), "echo") {
		t.Errorf("calls reaching the servers: gh %v, lin %v, local %v", gh.Called(), lin.Called(), loc.Called())
	}
	for _, u := range []*apptest.Upstream{gh, lin, loc} {
		if !u.SawOnly("Bearer " + token) {
			t.Error("a server did not get its token on every request")
		}
	}
	if got := profileMembers(t, b, "coding"); got != "gh=up lin=up local=up" {
		t.Errorf("profile ls after the calls: members %q", got)
	}
	if code, out, _ := b.Run(t, "", "config", "--profile", "coding", "--client-config=cursor"); code != 0 || !strings.Contains(out, "is running.") {
		t.Errorf("config --profile while it runs: %q", out)
	}
	// Each server's own audit log has the call, attributed to the profile.
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, _ := os.ReadFile(filepath.Join(b.ConfigDir, "audit", "gh.jsonl"))
		if strings.Contains(string(a), `"tool":"list_issues"`) && strings.Contains(string(a), `"via":"profile coding; tool=list_issues"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gh's audit log lacks the profile's call:\n%s", a)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A stdio client reaches the same tools with connect --profile.
	c := mcp.NewClient(&mcp.Implementation{Name: "stdio-client", Version: "1"}, nil)
	bs, err := c.Connect(context.Background(), &mcp.CommandTransport{Command: b.Command("connect", "--profile", "coding")}, nil)
	if err != nil {
		t.Fatalf("connect --profile: %v", err)
	}
	if got := apptest.ToolNames(t, bs); len(got) != 5 {
		t.Errorf("tools over connect --profile = %v", got)
	}
	bs.Close()

	if code, out, errOut := b.Run(t, "", "profile", "rm", "coding"); code != 0 || !strings.Contains(out, "Removed profile coding") {
		t.Fatalf("profile rm: exit %d %q %q", code, out, errOut)
	}
	raw, _ = os.ReadFile(filepath.Join(b.Home, ".cursor", "mcp.json"))
	if strings.Contains(string(raw), "keyport-profile-coding") {
		t.Errorf("the client entry survived profile rm:\n%s", raw)
	}
	apptest.ScanForSecret(t, token, b.Home)
}

// TestBinaryProfileBadInput: a hand-edited profile naming an unknown
// server, a denied tool or a colliding rename is a servers.yaml error
// naming the line, and the CLI says so.
func TestBinaryProfileBadInput(t *testing.T) {
	t.Parallel()
	b := apptest.NewBinary(t)
	servers := `servers:
  - name: gh
    url: https://gh.example/mcp
    tools: {deny: [delete_*]}
  - name: lin
    url: https://lin.example/mcp
`
	for _, tc := range []struct{ profiles, want string }{
		{"profiles:\n  - name: p\n    servers: [gh, gitlab]\n", `servers.yaml:9: profiles[0].servers[1].server: no server "gitlab"`},
		{"profiles:\n  - name: p\n    servers:\n      - server: gh\n        tools: [delete_repo]\n", `servers.yaml:11: profiles[0].servers[0].tools[0]: tool "delete_repo" is not allowed`},
		{"profiles:\n  - name: p\n    servers:\n      - server: gh\n        tools: [search]\n      - server: lin\n        overrides:\n          find: {rename: search}\n",
			`servers.yaml:14: profiles[0].servers[1].overrides.find.rename: "search" collides with tool search of gh`},
	} {
		b.WriteServers(t, servers+tc.profiles)
		if code, out, errOut := b.Run(t, "", "profile", "ls"); code != 1 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("profile ls with\n%s\nexit %d, stdout %q, stderr %q; want it to name %q", tc.profiles, code, out, errOut, tc.want)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// profileMembers runs `keyport profile ls --format json` and returns the
// state of profile name's servers as "server=state ...", after checking
// the row says it is running.
func profileMembers(t *testing.T, b *apptest.Binary, name string) string {
	t.Helper()
	code, out, errOut := b.Run(t, "", "profile", "ls", "--format", "json")
	var rows []struct {
		Name    string `json:"name"`
		State   string `json:"state"`
		Servers []struct {
			Server string `json:"server"`
			Member string `json:"member"`
			Up     *bool  `json:"up"`
		} `json:"servers"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("profile ls --format json: exit %d, %s %s", code, out, errOut)
	}
	var parts []string
	for _, r := range rows {
		if r.Name != name {
			continue
		}
		if r.State != "running" {
			t.Errorf("profile %s: state %q while its endpoint runs", name, r.State)
		}
		for _, s := range r.Servers {
			if (s.Member == "idle") != (s.Up == nil) {
				t.Errorf("server %s: member %q with up %v", s.Server, s.Member, s.Up)
			}
			parts = append(parts, s.Server+"="+s.Member)
		}
	}
	return strings.Join(parts, " ")
}
