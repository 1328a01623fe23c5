package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The conformance suite's OAuth client scenarios, driven through the
// product as a person uses it: keyport add, keyport login with a BROWSER
// that follows the redirects, then a go-sdk client through keyport
// connect NAME. app/oauth's TestConformanceAuth runs the same scenarios
// against the library alone.

// conformanceEnv marks the test binary run by the suite as a scenario's client.
const conformanceEnv = "KEYPORT_TEST_CONFORMANCE_CLIENT"

// conformanceMetadataURL is the Client ID Metadata Document URL the suite
// expects (it stands in for the one an organization would host).
const conformanceMetadataURL = "https://conformance-test.local/client-metadata.json"

// requirePeers returns the node binary and the npm peers directory; it
// skips locally without them and fails in CI.
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

// conformanceScenarios reads app/oauth's list of scenarios.
func conformanceScenarios(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "oauth", "testdata", "conformance-auth.txt"))
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

// scenarioOutcome is one scenario's checks.
type scenarioOutcome struct {
	pass               bool
	success, failures  int
	warnings           []string
	detail, clientLogs string
}

// runConformanceScenario runs one scenario with command as its client.
func runConformanceScenario(t *testing.T, node, peers, command, scenario string, env []string) scenarioOutcome {
	outDir := t.TempDir()
	suite := filepath.Join(peers, "@modelcontextprotocol", "conformance", "dist", "index.js")
	cmd := exec.Command(node, suite, "client", "--scenario", scenario, "--command", command, "-o", outDir, "--timeout", "90000")
	cmd.Dir = outDir
	cmd.Env = env
	out, _ := cmd.CombinedOutput()
	matches, _ := filepath.Glob(filepath.Join(outDir, scenario+"-*", "checks.json"))
	if len(matches) != 1 {
		return scenarioOutcome{detail: fmt.Sprintf("no checks.json (%d found):\n%s", len(matches), out)}
	}
	raw, err := os.ReadFile(matches[0])
	if err != nil {
		return scenarioOutcome{detail: err.Error()}
	}
	var checks []struct{ ID, Status, Description string }
	if err := json.Unmarshal(raw, &checks); err != nil {
		return scenarioOutcome{detail: err.Error()}
	}
	var r scenarioOutcome
	var failed []string
	for _, c := range checks {
		switch c.Status {
		case "SUCCESS":
			r.success++
		case "FAILURE":
			r.failures++
			failed = append(failed, c.ID+": "+c.Description)
		case "WARNING":
			r.warnings = append(r.warnings, c.ID+": "+c.Description)
		}
	}
	r.pass = r.failures == 0 && r.success > 0
	r.detail = strings.Join(failed, "\n")
	logs, _ := os.ReadFile(filepath.Join(filepath.Dir(matches[0]), "stderr.txt"))
	stdout, _ := os.ReadFile(filepath.Join(filepath.Dir(matches[0]), "stdout.txt"))
	r.clientLogs = string(stdout) + string(logs)
	return r
}

// TestConformanceAuthThroughProduct runs every scenario of
// conformance-auth.txt against the built binaries under the real keychain
// (scripts/session.sh): each must pass, without a warning (go-sdk's own
// client has none in these scenarios).
func TestConformanceAuthThroughProduct(t *testing.T) {
	node, peers := requirePeers(t)
	requireRealKeychain(t)
	bin := keyportBinary(t)
	scenarios := conformanceScenarios(t)
	if only := os.Getenv("KEYPORT_CONFORMANCE_ONLY"); only != "" {
		scenarios = strings.Split(only, ",")
	}
	command := "'" + os.Args[0] + "' -test.run='^TestConformanceScenarioClient$' -test.timeout=5m"
	env := append(os.Environ(), conformanceEnv+"=1", "KEYPORT_TEST_KEYPORT="+bin, "KEYPORT_TEST_KEYPORT_CLI="+cliBinary(t, bin))

	results := map[string]scenarioOutcome{}
	var mu sync.Mutex
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for _, s := range scenarios {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r := runConformanceScenario(t, node, peers, command, s, env)
			mu.Lock()
			results[s] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	var table []string
	for _, s := range scenarios {
		r := results[s]
		status := "pass"
		switch {
		case !r.pass:
			status = "FAIL"
			t.Errorf("%s failed through the product:\n%s\nclient output:\n%s", s, r.detail, r.clientLogs)
		case len(r.warnings) > 0:
			status = "WARN"
			t.Errorf("%s passed with warnings through the product:\n%s\nclient output:\n%s", s, strings.Join(r.warnings, "\n"), r.clientLogs)
		}
		table = append(table, fmt.Sprintf("%-45s %s (%d checks passed, %d warnings)", s, status, r.success, len(r.warnings)))
	}
	sort.Strings(table)
	t.Logf("conformance client auth scenarios through keyport add/login/connect:\n%s", strings.Join(table, "\n"))
}

// TestConformanceScenarioClient is not a test: it is the client the suite
// runs for a scenario (TestConformanceAuthThroughProduct), with the
// scenario's server URL as its last argument. It does what a person does:
// keyport add (with the client the suite pre-registered, if any), keyport
// login with a BROWSER that follows the redirects, then an AI client (a
// go-sdk client) through keyport connect NAME listing and calling tools.
func TestConformanceScenarioClient(t *testing.T) {
	if os.Getenv(conformanceEnv) == "" {
		t.Skip("the conformance suite's client for TestConformanceAuthThroughProduct")
	}
	args := flag.Args()
	if len(args) == 0 {
		t.Fatal("no server URL")
	}
	serverURL := args[len(args)-1]
	keyport, cli := os.Getenv("KEYPORT_TEST_KEYPORT"), os.Getenv("KEYPORT_TEST_KEYPORT_CLI")
	var suiteCtx struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if raw := os.Getenv("MCP_CONFORMANCE_CONTEXT"); raw != "" {
		_ = json.Unmarshal([]byte(raw), &suiteCtx)
	}
	dir := t.TempDir()
	script, _ := browserScript(t, dir)
	name := "conf-" + strings.ToLower(rand.Text()[:10])
	env := append(os.Environ(), "KEYPORT_CONFIG_DIR="+filepath.Join(dir, "config"), "BROWSER="+script)
	env = slicesWithout(env, conformanceEnv)
	run := func(stdin string, argv ...string) error {
		cmd := exec.Command(keyport, argv...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		fmt.Fprintf(os.Stderr, "$ keyport %s\n%s", strings.Join(argv, " "), out)
		return err
	}
	defer run("", "rm", name, "--yes") // and its keychain items

	add := []string{"add", name, serverURL, "--oauth", "--client-metadata-url", conformanceMetadataURL,
		"--callback-port", fmt.Sprint(freePort(t))}
	stdin := ""
	if suiteCtx.ClientID != "" {
		add = append(add, "--client-id", suiteCtx.ClientID)
		if suiteCtx.ClientSecret != "" {
			add = append(add, "--client-secret")
			stdin = suiteCtx.ClientSecret + "\n"
		}
	}
	if err := run(stdin, add...); err != nil {
		t.Fatalf("keyport add: %v", err)
	}
	if err := run("", "login", name, "--timeout", "40s"); err != nil {
		t.Fatalf("keyport login: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Second)
	defer cancel()
	connect := exec.Command(cli, "connect", name)
	connect.Env = env
	connect.Stderr = os.Stderr
	client := mcp.NewClient(&mcp.Implementation{Name: "conformance-ai-client", Version: "1.0.0"}, nil)
	session, err := client.Connect(ctx, &mcp.CommandTransport{Command: connect}, nil)
	if err != nil {
		t.Fatalf("connect through keyport connect: %v", err)
	}
	defer session.Close()
	if _, err := session.ListTools(ctx, nil); err != nil {
		t.Fatalf("list tools: %v", err)
	}
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "test-tool", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("call test-tool: %v %+v", err, res)
	}
}

// freePort returns a loopback port free now.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// slicesWithout drops the variable name from env.
func slicesWithout(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
