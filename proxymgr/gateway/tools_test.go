package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr"
)

// TestToolsMergedRenamedAndRouted: three servers behind their proxies; the
// profile narrows github to two tools and renames one with a description
// of the user's; names that collide are prefixed; every call reaches the
// right server under its own name; a tool the server's policy denies is
// never seen and never runs, even when asked for by name.
func TestToolsMergedRenamedAndRouted(t *testing.T) {
	t.Parallel()
	gh := newServer(t, "github", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "search", "list_issues", "create_issue", "delete_repo") })
	gh.cfg.Policy.Deny = []string{"delete_*"}
	auditFile := filepath.Join(t.TempDir(), "github.jsonl")
	gh.cfg.Audit = proxymgr.AuditConfig{File: auditFile}
	gh.stopProxy()
	gh.startProxy()
	lin := newServer(t, "linear", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "search", "list_projects") })
	loc := newServer(t, "local", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "echo") })
	ghm := gh.member()
	ghm.Tools = []string{"search", "list_issues", "delete_repo"}
	ghm.Overrides = map[string]Override{"list_issues": {Name: "issues", Description: "The user's own words."}}
	g := startGateway(t, Config{Members: []Member{ghm, lin.member(), loc.member()}})
	cs := connect(t, g, nil)

	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tl := range res.Tools {
		got[tl.Name] = tl.Description
	}
	want := map[string]string{
		"github_search": "search of github", "issues": "The user's own words.",
		"linear_search": "search of linear", "list_projects": "list_projects of linear", "echo": "echo of local",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tools through the profile:\n got %v\nwant %v", got, want)
	}
	for name, reply := range map[string]string{
		"github_search": "github/search:x", "issues": "github/list_issues:x", "linear_search": "linear/search:x", "echo": "local/echo:x",
	} {
		if out, err := callText(t, cs, name, "x"); err != nil || out != reply {
			t.Errorf("call %s: %q, %v; want %q", name, out, err, reply)
		}
	}
	for _, name := range []string{"delete_repo", "github_delete_repo", "create_issue", "list_issues", "search"} {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
		if err == nil && !res.IsError {
			t.Errorf("calling %s through the profile succeeded; it is not in the profile", name)
		} else if err != nil && !strings.Contains(err.Error(), "unknown tool") {
			t.Errorf("calling %s: %v; want unknown tool", name, err)
		}
	}
	ran := gh.ranTools()
	slices.Sort(ran)
	if !slices.Equal(ran, []string{"list_issues", "search"}) {
		t.Errorf("github ran %v; want search and list_issues only", ran)
	}

	// The server's own proxy audits every call once, naming the profile
	// and what it changed; the server never sees that header.
	auditWant := `"tool":"list_issues"`
	waitFor(t, "the audit line of the renamed call", func() bool {
		b, _ := os.ReadFile(auditFile)
		return strings.Contains(string(b), auditWant)
	})
	b, _ := os.ReadFile(auditFile)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, auditWant) && !strings.Contains(line, `"via":"profile test; tool=issues; overrides=rename,description"`) {
			t.Errorf("the audit line of the renamed call lacks the profile's attribution: %s", line)
		}
	}
	if strings.Count(string(b), auditWant) != 1 {
		t.Errorf("the renamed call is audited %d times; auditWant once:\n%s", strings.Count(string(b), auditWant), b)
	}
	gh.mu.Lock()
	leaked := gh.leaked
	gh.mu.Unlock()
	if leaked {
		t.Error("the server received the Keyport-Profile header")
	}
}
