// Package suite runs the outside MCP test peers Keyport's tests measure
// against: the official conformance suite and go-sdk's conformance
// everything-server (npm peers under .tools, Node 22; see the Makefile).
package suite

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// NodePeers returns Node 22 and the npm peers directory (make test exports
// KEYPORT_NODE and KEYPORT_PEERS). It skips the test when they are unset,
// and fails it in CI.
func NodePeers(t testing.TB) (node, peers string) {
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

// BuildEverythingServer builds go-sdk's conformance/everything-server from
// the module cache.
func BuildEverythingServer(t testing.TB) string {
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

// StartEverythingServer runs the everything-server on a free port until
// the test ends and returns its MCP URL.
func StartEverythingServer(t testing.TB, bin string, stateless bool) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
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

// Result is what one run of the conformance suite reported.
type Result struct {
	Exit           int
	Passed, Failed int
	Scenarios      map[string]string // name -> "P passed, F failed"
	Output         string
}

var (
	scenarioLine = regexp.MustCompile(`(?m)^[✓✗] ([A-Za-z0-9_.-]+): (\d+) passed, (\d+) failed$`)
	totalLine    = regexp.MustCompile(`(?m)^Total: (\d+) passed, (\d+) failed`)
)

// Run runs the server conformance suite for requirements against url.
func Run(t testing.TB, node, peers, url, requirements string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, node, filepath.Join(peers, "@modelcontextprotocol", "conformance", "dist", "index.js"),
		"server", "--url", url, "--requirements", requirements)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "NO_COLOR=1", "FORCE_COLOR=0")
	out, err := cmd.CombinedOutput()
	res := Result{Scenarios: map[string]string{}, Output: string(out)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("conformance suite against %s: %v\n%s", url, err, out)
		}
		res.Exit = ee.ExitCode()
	}
	m := totalLine.FindStringSubmatch(res.Output)
	if m == nil {
		t.Fatalf("conformance suite against %s printed no total (exit %d):\n%s", url, res.Exit, Tail(res.Output, 4000))
	}
	res.Passed, _ = strconv.Atoi(m[1])
	res.Failed, _ = strconv.Atoi(m[2])
	for _, s := range scenarioLine.FindAllStringSubmatch(res.Output, -1) {
		res.Scenarios[s[1]] = s[2] + " passed, " + s[3] + " failed"
	}
	if len(res.Scenarios) == 0 {
		t.Fatalf("no scenario lines in the conformance output:\n%s", Tail(res.Output, 4000))
	}
	return res
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
