package cli_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keyport/app/internal/apptest"
)

// aiClients returns the npm directory of the real AI clients (make test
// exports KEYPORT_AI_CLIENTS) and Node 22's bin directory; it skips the
// test when they are not installed, and fails it in CI.
func aiClients(t *testing.T) (modules, nodeBin string) {
	t.Helper()
	modules, node := os.Getenv("KEYPORT_AI_CLIENTS"), os.Getenv("KEYPORT_NODE")
	if _, err := os.Stat(filepath.Join(modules, ".bin", "claude")); modules == "" || node == "" || err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("KEYPORT_AI_CLIENTS (Claude Code, Gemini CLI) is not installed; make deps installs it")
		}
		t.Skip("KEYPORT_AI_CLIENTS and KEYPORT_NODE are unset or not installed: run under make test")
	}
	return modules, filepath.Dir(node)
}

// TestBinaryProfileInRealAIClients: a profile wired with the built
// keyport-cli into Claude Code's and Gemini CLI's own config files (fresh
// HOME, Node 22) and served by 'keyport-cli proxy --profile': each client's
// 'mcp list' connects to it.
func TestBinaryProfileInRealAIClients(t *testing.T) {
	modules, nodeBin := aiClients(t)
	t.Parallel()
	const token = profileToken
	b := apptest.NewBinary(t)
	profileSetup(t, b, token)
	if code, _, errOut := b.Run(t, "", "profile", "add", "coding", "gh=search,list_issues", "lin", "local"); code != 0 {
		t.Fatalf("profile add: %s", errOut)
	}
	for _, client := range []string{"claude-code", "gemini"} {
		if code, out, errOut := b.Run(t, "", "config", "--profile", "coding", "--client-config="+client); code != 0 {
			t.Fatalf("config --profile for %s: exit %d %s %s", client, code, out, errOut)
		}
	}
	port, _ := b.StartProxy(t, "--profile", "coding")
	url := "http://127.0.0.1:" + port + "/mcp"
	work := filepath.Join(b.Home, "work")
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	// Gemini CLI ignores a folder's servers until the folder is trusted.
	if err := os.WriteFile(filepath.Join(b.Home, ".gemini", "trustedFolders.json"), []byte(fmt.Sprintf("{%q: \"TRUST_FOLDER\"}", work)), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(bin string, want string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(modules, ".bin", bin), "mcp", "list")
		cmd.Dir = work
		cmd.Env = append(b.Env, "PATH="+nodeBin+string(os.PathListSeparator)+os.Getenv("PATH"), "NO_COLOR=1", "CI=1")
		out, err := cmd.CombinedOutput()
		line := ""
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "keyport-profile-coding") {
				line = l
			}
		}
		if !strings.Contains(line, url) || !strings.Contains(line, want) {
			t.Errorf("%s mcp list (err %v) does not show keyport-profile-coding at %s %s:\n%s", bin, err, url, want, out)
		}
	}
	run("claude", "✔ Connected")
	run("gemini", "Connected")
	apptest.ScanForSecret(t, token, b.Home)
}
