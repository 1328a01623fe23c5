package oauth

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// requirePeers returns the node binary and the npm peers directory, skips
// when they are not configured locally, and fails in CI.
func requirePeers(t *testing.T) (node, peers string) {
	t.Helper()
	node, peers = os.Getenv("KEYPORT_NODE"), os.Getenv("KEYPORT_PEERS")
	if node != "" && peers != "" {
		return node, peers
	}
	if os.Getenv("CI") != "" {
		t.Fatal("KEYPORT_NODE and KEYPORT_PEERS must be set in CI (make test sets them)")
	}
	t.Skip("conformance tests need KEYPORT_NODE and KEYPORT_PEERS (make test sets them)")
	return "", ""
}

// buildCmd builds a Go main package into dir and returns the binary.
func buildCmd(t *testing.T, dir, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// conformanceScenarios reads testdata/conformance-auth.txt.
func conformanceScenarios(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "conformance-auth.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// scenarioResult is one scenario's outcome.
type scenarioResult struct {
	pass              bool
	success, failures int
	warnings          int
	detail            string
}

// runScenario runs one conformance client scenario against command.
func runScenario(t *testing.T, node, peers, command, scenario string) scenarioResult {
	outDir := t.TempDir()
	cli := filepath.Join(peers, "@modelcontextprotocol", "conformance", "dist", "index.js")
	cmd := exec.Command(node, cli, "client", "--scenario", scenario, "--command", command, "-o", outDir, "--timeout", "60000")
	cmd.Dir = outDir
	out, _ := cmd.CombinedOutput()
	matches, _ := filepath.Glob(filepath.Join(outDir, scenario+"-*", "checks.json"))
	if len(matches) != 1 {
		return scenarioResult{detail: fmt.Sprintf("no checks.json (%d found):\n%s", len(matches), out)}
	}
	raw, err := os.ReadFile(matches[0])
	if err != nil {
		return scenarioResult{detail: err.Error()}
	}
	var checks []struct {
		ID, Status, Description string
	}
	if err := json.Unmarshal(raw, &checks); err != nil {
		return scenarioResult{detail: err.Error()}
	}
	var r scenarioResult
	var failed []string
	for _, c := range checks {
		switch c.Status {
		case "SUCCESS":
			r.success++
		case "FAILURE":
			r.failures++
			failed = append(failed, c.ID+": "+c.Description)
		case "WARNING":
			r.warnings++
		}
	}
	r.pass = r.failures == 0 && r.success > 0
	r.detail = strings.Join(failed, "\n")
	if !r.pass {
		stderr, _ := os.ReadFile(filepath.Join(filepath.Dir(matches[0]), "stderr.txt"))
		r.detail += "\nclient stderr:\n" + string(stderr)
	}
	return r
}

// runScenarios runs scenarios against command, three at a time.
func runScenarios(t *testing.T, node, peers, command string, scenarios []string) map[string]scenarioResult {
	results := map[string]scenarioResult{}
	var mu sync.Mutex
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for _, s := range scenarios {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r := runScenario(t, node, peers, command, s)
			mu.Lock()
			results[s] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	return results
}

// TestConformanceAuth runs the official MCP conformance client auth
// scenarios against Keyport's sign-in (internal/conformanceclient) and
// requires every scenario go-sdk's own client passes. With
// KEYPORT_CONFORMANCE_COMPARE=1 it also builds and runs go-sdk's
// everything-client and checks Keyport passes at least what it passes.
func TestConformanceAuth(t *testing.T) {
	node, peers := requirePeers(t)
	t.Parallel()
	dir := t.TempDir()
	keyport := buildCmd(t, dir, "keyport/app/oauth/internal/conformanceclient", "keyport-conformance")
	scenarios := conformanceScenarios(t)
	results := runScenarios(t, node, peers, keyport, scenarios)

	var table []string
	for _, s := range scenarios {
		r := results[s]
		status := "pass"
		if !r.pass {
			status = "FAIL"
			t.Errorf("%s failed: %s", s, r.detail)
		}
		table = append(table, fmt.Sprintf("%-45s %s (%d checks passed, %d warnings)", s, status, r.success, r.warnings))
	}
	t.Logf("conformance client auth scenarios, Keyport:\n%s", strings.Join(table, "\n"))

	if os.Getenv("KEYPORT_CONFORMANCE_COMPARE") != "1" {
		return
	}
	gosdk := buildCmd(t, dir, "github.com/modelcontextprotocol/go-sdk/conformance/everything-client", "gosdk-everything-client")
	theirs := runScenarios(t, node, peers, gosdk, scenarios)
	var passed []string
	for s, r := range theirs {
		if r.pass {
			passed = append(passed, s)
			if !results[s].pass {
				t.Errorf("go-sdk's client passes %s but Keyport does not", s)
			}
		}
	}
	sort.Strings(passed)
	t.Logf("go-sdk's everything-client passes %d of %d listed scenarios", len(passed), len(scenarios))
}
