package proxymgr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodePeers returns Node 22 and the npm peers directory (make test exports
// KEYPORT_NODE and KEYPORT_PEERS). It skips the test when they are unset,
// and fails it in CI.
func nodePeers(t *testing.T) (node, peers string) {
	t.Helper()
	node, peers = os.Getenv("KEYPORT_NODE"), os.Getenv("KEYPORT_PEERS")
	if node == "" || peers == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("KEYPORT_NODE and KEYPORT_PEERS are unset; make test exports them (run make deps first)")
		}
		t.Skip("KEYPORT_NODE and KEYPORT_PEERS are unset: run under make test, or export them as the Makefile does")
	}
	return node, peers
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// buildEverythingServer builds go-sdk's conformance/everything-server from
// the module cache.
func buildEverythingServer(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "everything-server")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build everything-server: %v\n%s", err, out)
	}
	return bin
}

// startEverythingServer runs the everything-server on a free port and
// returns its MCP URL.
func startEverythingServer(t *testing.T, bin string, stateless bool) string {
	t.Helper()
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "-http="+addr, "-stateless="+strconv.FormatBool(stateless))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "http://" + addr + "/mcp"
		}
		if time.Now().After(deadline) {
			t.Fatalf("everything-server did not listen on %s: %s", addr, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// suiteResult is what one run of the conformance suite reported.
type suiteResult struct {
	exit           int
	passed, failed int
	scenarios      map[string]string // name -> "P passed, F failed"
	output         string
}

var (
	scenarioLine = regexp.MustCompile(`(?m)^[✓✗] ([A-Za-z0-9_.-]+): (\d+) passed, (\d+) failed$`)
	totalLine    = regexp.MustCompile(`(?m)^Total: (\d+) passed, (\d+) failed`)
)

func runSuite(t *testing.T, node, peers, url, requirements string) suiteResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, node, filepath.Join(peers, "@modelcontextprotocol", "conformance", "dist", "index.js"),
		"server", "--url", url, "--requirements", requirements)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "NO_COLOR=1", "FORCE_COLOR=0")
	out, err := cmd.CombinedOutput()
	res := suiteResult{scenarios: map[string]string{}, output: string(out)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("conformance suite against %s: %v\n%s", url, err, out)
		}
		res.exit = ee.ExitCode()
	}
	m := totalLine.FindStringSubmatch(res.output)
	if m == nil {
		t.Fatalf("conformance suite against %s printed no total (exit %d):\n%s", url, res.exit, tail(res.output, 4000))
	}
	res.passed, _ = strconv.Atoi(m[1])
	res.failed, _ = strconv.Atoi(m[2])
	for _, s := range scenarioLine.FindAllStringSubmatch(res.output, -1) {
		res.scenarios[s[1]] = s[2] + " passed, " + s[3] + " failed"
	}
	if len(res.scenarios) == 0 {
		t.Fatalf("no scenario lines in the conformance output:\n%s", tail(res.output, 4000))
	}
	return res
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// TestConformanceThroughProxy runs the official MCP conformance suite
// against go-sdk's everything-server directly and through the proxy, in the
// same run, for both protocol eras, and requires the same results:
// 2025-11-25 against a stateful server, 2026-07-28 against a stateless one.
// The proxy pins tools (trust on first use) as the app's proxies do.
func TestConformanceThroughProxy(t *testing.T) {
	node, peers := nodePeers(t)
	t.Parallel()
	bin := buildEverythingServer(t)
	type run struct {
		requirements string
		stateless    bool
		proxied      bool
		res          suiteResult
	}
	runs := []*run{
		{requirements: "2025-11-25"}, {requirements: "2025-11-25", proxied: true},
		{requirements: "2026-07-28", stateless: true}, {requirements: "2026-07-28", stateless: true, proxied: true},
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		// Each run gets its own server process, so suites cannot disturb each other.
		url := startEverythingServer(t, bin, r.stateless)
		if r.proxied {
			// With tool pinning on: the first list is trusted as it is, so
			// the results must not change.
			p := startProxy(t, Config{Name: "everything", Upstream: url, Pins: pinStore(t, "everything")})
			url = p.URL()
		}
		wg.Go(func() { r.res = runSuite(t, node, peers, url, r.requirements) })
	}
	wg.Wait()
	for i := 0; i < len(runs); i += 2 {
		direct, proxied := runs[i].res, runs[i+1].res
		req := runs[i].requirements
		t.Logf("%s: direct %d passed / %d failed (exit %d); proxied %d passed / %d failed (exit %d)",
			req, direct.passed, direct.failed, direct.exit, proxied.passed, proxied.failed, proxied.exit)
		if direct.passed < 50 {
			t.Fatalf("%s: the direct run passed only %d checks; the suite did not run properly:\n%s", req, direct.passed, tail(direct.output, 4000))
		}
		var diffs []string
		for name, d := range direct.scenarios {
			if p := proxied.scenarios[name]; p != d {
				diffs = append(diffs, fmt.Sprintf("%s: direct %q, proxied %q", name, d, p))
			}
		}
		for name, p := range proxied.scenarios {
			if _, ok := direct.scenarios[name]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: only proxied (%q)", name, p))
			}
		}
		slices.Sort(diffs)
		if len(diffs) > 0 || direct.passed != proxied.passed || direct.failed != proxied.failed || direct.exit != proxied.exit {
			t.Errorf("%s: the proxy changes conformance results:\n  %s\nproxied output:\n%s", req, strings.Join(diffs, "\n  "), tail(proxied.output, 6000))
		}
		switch req {
		case "2025-11-25":
			if direct.failed != 0 {
				t.Errorf("2025-11-25 direct: %d failed checks; go-sdk's everything-server passes all", direct.failed)
			}
		case "2026-07-28":
			for name, s := range direct.scenarios {
				if !strings.HasSuffix(s, " 0 failed") && !strings.HasPrefix(name, "tasks-") {
					t.Errorf("2026-07-28 direct: scenario %s failed (%s); only the tasks-* extension is expected to", name, s)
				}
			}
		}
	}
}

// TestInspectorCLIThroughProxy: the MCP Inspector's CLI lists and calls tools
// through the proxy at its root URL, and sees the tool policy.
func TestInspectorCLIThroughProxy(t *testing.T) {
	node, peers := nodePeers(t)
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url(), Policy: ToolPolicy{Deny: []string{"delete_*"}}})
	root := "http://" + p.Addr()
	inspector := func(args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		home := t.TempDir()
		argv := append([]string{filepath.Join(peers, "@modelcontextprotocol", "inspector", "clients", "launcher", "build", "index.js"),
			"--cli", root, "--transport", "http"}, args...)
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
	if !slices.Contains(names, "echo") || slices.Contains(names, "delete_repo") {
		t.Fatalf("inspector sees tools %v", names)
	}
	out, code = inspector("--method", "tools/call", "--tool-name", "echo", "--tool-arg", "text=through keyport")
	if code != 0 || !strings.Contains(out, `"text": "through keyport"`) {
		t.Fatalf("inspector tools/call: exit %d\n%s", code, out)
	}
	// The inspector looks the tool up in the (filtered) list first: a denied
	// tool is simply not there.
	out, code = inspector("--method", "tools/call", "--tool-name", "delete_repo", "--tool-arg", "text=x")
	if code == 0 || !strings.Contains(out, "not found") {
		t.Fatalf("inspector call of a denied tool: exit %d\n%q", code, out)
	}
	if up.callCount("delete_repo") != 0 || up.callCount("echo") != 1 {
		t.Fatalf("calls reaching the server: echo %d, delete_repo %d", up.callCount("echo"), up.callCount("delete_repo"))
	}
}
