package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/telemetry/telemetrytest"
)

// TestTeamsThroughTheBinary drives what an organization's user runs: the
// built binary with a managed settings file that adds a server, forces a
// deny pattern and requires export to a real OpenTelemetry collector.
// `keyport ls --format json` shows what is managed, `keyport rm` refuses a
// managed server, a proxy started by the binary exports its audit events
// to the collector, `keyport telemetry status` says so, and a broken
// managed file keeps the last good one, loudly.
func TestTeamsThroughTheBinary(t *testing.T) {
	bin := cliBinary(t, keyportBinary(t))
	col := telemetrytest.Start(t)

	s := mcp.NewServer(&mcp.Implementation{Name: "corp", Version: "1"}, nil)
	type in struct {
		Text string `json:"text"`
	}
	for _, name := range []string{"echo", "delete_all"} {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(ctx context.Context, req *mcp.CallToolRequest, in in) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	}
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	defer up.Close()

	home := t.TempDir()
	managed := filepath.Join(home, "etc", "keyport", "managed.yaml")
	os.MkdirAll(filepath.Dir(managed), 0o755)
	good := "servers:\n  - name: corp-echo\n    url: " + up.URL + "/mcp\n    description: the organization's server\n" +
		"rules:\n  - deny: [delete_*]\n    pinning: hold\n" +
		"telemetry: {endpoint: \"" + col.HTTPEndpoint() + "\"}\n"
	if err := os.WriteFile(managed, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+home, "KEYPORT_CONFIG_DIR="+filepath.Join(home, "cfg"), "KEYPORT_MANAGED_FILE="+managed,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	run := func(argv ...string) (int, string, string) {
		cmd := exec.Command(bin, argv...)
		cmd.Env = env
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errb.String()
	}

	code, out, errs := run("ls", "--format", "json")
	var rows []serverRow
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 {
		t.Fatalf("ls: %d %s %s", code, out, errs)
	}
	if r := rows[0]; r.Name != "corp-echo" || !r.Managed || !slices.Equal(r.ManagedDeny, []string{"delete_*"}) || r.ManagedPinning != "hold" || !slices.Contains(r.Deny, "delete_*") {
		t.Errorf("ls row = %+v", r)
	}
	if !strings.Contains(out, `"managed": true`) {
		t.Errorf("ls --format json lacks the managed field:\n%s", out)
	}
	if code, _, errs := run("rm", "corp-echo", "--yes"); code != 1 || !strings.Contains(errs, "set by your organization") {
		t.Errorf("rm of a managed server: exit %d, %s", code, errs)
	}
	if code, _, errs := run("add", "corp-echo", "https://elsewhere.example.com/mcp"); code != 1 || !strings.Contains(errs, "set by your organization") {
		t.Errorf("add under a managed name: exit %d, %s", code, errs)
	}

	// A proxy started by the binary exports to the organization's collector.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proxy := exec.CommandContext(ctx, bin, "proxy", "corp-echo")
	proxy.Env = env
	stdout, _ := proxy.StdoutPipe()
	var perr strings.Builder
	proxy.Stderr = &perr
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); proxy.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	m := regexp.MustCompile(`127\.0\.0\.1:(\d+)`).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("proxy said %q (%v): %s", line, err, perr.String())
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://127.0.0.1:" + m[1] + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}}); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "delete_all", Arguments: map[string]any{"text": "x"}}); err == nil && !res.IsError {
		t.Error("the managed deny pattern did not hold")
	}
	cs.Close()
	deadline := time.Now().Add(60 * time.Second)
	calls, denials := 0, 0
	for time.Now().Before(deadline) {
		calls, denials = 0, 0
		for _, l := range col.Logs() {
			if l.Attrs["keyport.server"] == "corp-echo" && l.Attrs["gen_ai.tool.name"] == "echo" {
				calls++
			}
			if l.Attrs["keyport.server"] == "corp-echo" && l.Attrs["keyport.outcome"] == "denied" {
				denials++
			}
		}
		if calls == 5 && denials == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if calls != 5 || denials != 1 {
		t.Fatalf("the collector got %d calls and %d denials, want 5 and 1; proxy said:\n%s", calls, denials, perr.String())
	}

	code, out, errs = run("telemetry", "status", "--format", "json")
	var st struct {
		Enabled, Managed, Active bool
		PID                      int
		Signals                  []struct {
			Signal       string
			Connected    bool
			BacklogBytes int64 `json:"backlog_bytes"`
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("telemetry status: %d %s %s", code, out, errs)
	}
	if !st.Enabled || !st.Managed || !st.Active || st.PID != proxy.Process.Pid || len(st.Signals) != 3 {
		t.Errorf("telemetry status = %s", out)
	}
	if _, out, _ := run("telemetry", "status"); !strings.Contains(out, "set by your organization") || !strings.Contains(out, "logs") {
		t.Errorf("telemetry status (text):\n%s", out)
	}

	// A broken managed file: the last good one applies, and every verb says so.
	os.WriteFile(managed, []byte("rules: [{deny: [delete_*]\n"), 0o644)
	code, out, errs = run("ls", "--format", "json")
	if code != 0 || !strings.Contains(errs, "invalid") || !strings.Contains(errs, "last valid version") || !strings.Contains(out, `"managed": true`) {
		t.Errorf("ls with a broken managed file: %d\n%s\n%s", code, out, errs)
	}
}

// TestAllowedURLsThroughTheBinary: with allowed_urls set by the
// organization, a user cannot add a server on another host by writing the
// allowed domain into its path, neither with keyport add nor by editing
// servers.yaml: the shipped binary refuses the one and leaves the other
// out of the catalog in effect.
func TestAllowedURLsThroughTheBinary(t *testing.T) {
	bin := cliBinary(t, keyportBinary(t))
	home := t.TempDir()
	managed := filepath.Join(home, "etc", "keyport", "managed.yaml")
	os.MkdirAll(filepath.Dir(managed), 0o755)
	if err := os.WriteFile(managed, []byte("allowed_urls: [\"https://*.corp.example/*\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(home, "cfg")
	env := append(os.Environ(), "HOME="+home, "KEYPORT_CONFIG_DIR="+cfg, "KEYPORT_MANAGED_FILE="+managed, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	run := func(argv ...string) (int, string) {
		cmd := exec.Command(bin, argv...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	const evil = "https://evil.example/.corp.example/mcp"
	if code, out := run("add", "sneaky", evil); code == 0 || !strings.Contains(out, "outside the allowed URL patterns") {
		t.Errorf("keyport add sneaky %s: exit %d, %s", evil, code, out)
	}
	if code, out := run("add", "fine", "https://a.corp.example/mcp"); code != 0 {
		t.Errorf("keyport add of an allowed URL: exit %d, %s", code, out)
	}
	yaml, _ := os.ReadFile(filepath.Join(cfg, "servers.yaml"))
	edited := string(yaml) + "  - name: edited\n    url: https://evil.example?.corp.example/\n"
	if err := os.WriteFile(filepath.Join(cfg, "servers.yaml"), []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := run("ls", "--format", "json")
	var rows []serverRow
	if code != 0 || json.Unmarshal([]byte(out[strings.Index(out, "["):]), &rows) != nil {
		t.Fatalf("ls: %d %s", code, out)
	}
	for _, r := range rows {
		if r.Name == "sneaky" || r.Name == "edited" {
			t.Errorf("the catalog in effect has %s, whose URL is outside the allowed URLs", r.Name)
		}
	}
}
