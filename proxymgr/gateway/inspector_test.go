package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr/internal/suite"
)

// TestInspectorCLIThroughProfile: the MCP Inspector's CLI (npm) lists and
// calls tools through a profile of three servers, each behind its proxy.
func TestInspectorCLIThroughProfile(t *testing.T) {
	node, peers := suite.NodePeers(t)
	t.Parallel()
	gh := newServer(t, "github", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "search", "list_issues") })
	lin := newServer(t, "linear", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "search", "list_projects") })
	loc := newServer(t, "local", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "echo") })
	g := startGateway(t, Config{Name: "three", Members: []Member{gh.member(), lin.member(), loc.member()}})
	inspector := func(args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		home := t.TempDir()
		argv := append([]string{filepath.Join(peers, "@modelcontextprotocol", "inspector", "clients", "launcher", "build", "index.js"),
			"--cli", g.URL(), "--transport", "http"}, args...)
		cmd := exec.CommandContext(ctx, node, argv...)
		cmd.Dir = home
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "NO_COLOR=1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("inspector: %v", err)
		}
		return stdout.String() + stderr.String(), code
	}
	out, code := inspector("--method", "tools/list")
	var list struct {
		Tools []struct{ Name string } `json:"tools"`
	}
	if code != 0 || json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &list) != nil {
		t.Fatalf("inspector tools/list: exit %d\n%s", code, out)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	if want := []string{"echo", "github_search", "linear_search", "list_issues", "list_projects"}; !slices.Equal(names, want) {
		t.Fatalf("inspector sees %v, want %v", names, want)
	}
	for tool, want := range map[string]string{"linear_search": "linear/search:via inspector", "echo": "local/echo:via inspector"} {
		out, code = inspector("--method", "tools/call", "--tool-name", tool, "--tool-arg", "text=via inspector")
		if code != 0 || !strings.Contains(out, `"text": "`+want+`"`) {
			t.Errorf("inspector tools/call %s: exit %d\n%s", tool, code, out)
		}
	}
}
