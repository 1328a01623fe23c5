package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// conformanceRun is one client scenario of the official MCP conformance
// suite, run at one protocol revision.
type conformanceRun struct {
	scenario, version string
}

// conformanceRuns are the client scenarios that apply to a bridge: every
// scenario of the 2025-11-25 and 2026-07-28 requirement sets except the
// auth/* ones (OAuth is the Keyport proxy's job, not the bridge's), plus
// json-schema-2020-12-preservation (added after release), at each revision
// they belong to.
var conformanceRuns = []conformanceRun{
	{"initialize", "2025-11-25"},
	{"tools_call", "2025-11-25"},
	{"elicitation-sep1034-client-defaults", "2025-11-25"},
	{"sse-retry", "2025-11-25"},
	{"json-schema-2020-12-preservation", "2025-11-25"},
	{"tools_call", "2026-07-28"},
	{"request-metadata", "2026-07-28"},
	{"sep-2322-client-request-state", "2026-07-28"},
	{"http-standard-headers", "2026-07-28"},
	{"http-custom-headers", "2026-07-28"},
	{"http-invalid-tool-headers", "2026-07-28"},
	{"json-schema-ref-no-deref", "2026-07-28"},
	{"json-schema-2020-12-preservation", "2026-07-28"},
}

// TestConformance runs the conformance suite's client scenarios with a
// go-sdk client that reaches each scenario's server through the bridge
// (the wrapper below), so the suite checks what the bridge puts on the
// wire. Needs Node 22 and the npm peers (make test provides them).
func TestConformance(t *testing.T) {
	peers := os.Getenv("KEYPORT_PEERS")
	if peers == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("KEYPORT_PEERS is not set; run the tests with make test")
		}
		t.Skip("KEYPORT_PEERS is not set (make test sets it): skipping the MCP conformance scenarios")
	}
	node := os.Getenv("KEYPORT_NODE")
	if node == "" {
		node = "node"
	}
	cli := filepath.Join(peers, "@modelcontextprotocol", "conformance", "dist", "index.js")
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("the conformance suite is not installed: %v (run make deps)", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(exe, " \t'\"$") {
		t.Skipf("the test binary's path %q cannot go through the suite's --command (split on spaces)", exe)
	}
	t.Parallel()
	slots := make(chan struct{}, 3) // a few Node processes at a time: the machine has 2 cores
	for _, run := range conformanceRuns {
		t.Run(run.scenario+"@"+run.version, func(t *testing.T) {
			t.Parallel()
			slots <- struct{}{}
			defer func() { <-slots }()
			out := t.TempDir()
			cmd := exec.Command(node, cli, "client", "--command", exe+" conformance-client",
				"--scenario", run.scenario, "--spec-version", run.version, "--timeout", "60000", "-o", out)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			output, err := cmd.CombinedOutput()
			checks, cerr := readChecks(out)
			if cerr != nil {
				t.Fatalf("no results (%v); conformance output:\n%s", cerr, output)
			}
			var failed []string
			counts := map[string]int{}
			for _, c := range checks {
				counts[c.Status]++
				if c.Status == "FAILURE" {
					failed = append(failed, fmt.Sprintf("%s: %s %s", c.ID, c.Description, c.ErrorMessage))
				}
			}
			t.Logf("%s @ %s: %d SUCCESS, %d WARNING, %d FAILURE, %d INFO", run.scenario, run.version,
				counts["SUCCESS"], counts["WARNING"], counts["FAILURE"], counts["INFO"])
			if len(failed) > 0 || err != nil || counts["SUCCESS"] == 0 {
				t.Errorf("scenario %s at %s failed (exit: %v):\n  %s\nconformance output:\n%s",
					run.scenario, run.version, err, strings.Join(failed, "\n  "), output)
			}
		})
	}
}

type conformanceCheck struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	Description  string `json:"description"`
	ErrorMessage string `json:"errorMessage"`
}

// readChecks reads the checks.json the suite wrote under dir.
func readChecks(dir string) ([]conformanceCheck, error) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "checks.json"))
	if len(matches) == 0 {
		matches, _ = filepath.Glob(filepath.Join(dir, "checks.json"))
	}
	if len(matches) == 0 {
		return nil, fmt.Errorf("no checks.json under %s", dir)
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		return nil, err
	}
	var checks []conformanceCheck
	return checks, json.Unmarshal(data, &checks)
}

// conformanceClient is the client command the suite runs:
// TESTBIN conformance-client SERVER_URL. It starts the bridge on
// SERVER_URL as its stdio subprocess and acts out the scenario named in
// MCP_CONFORMANCE_SCENARIO through it, with a go-sdk client.
func conformanceClient(args []string) int {
	log.SetFlags(0)
	log.SetPrefix("conformance-client: ")
	if len(args) != 1 {
		log.Print("usage: conformance-client SERVER_URL")
		return 2
	}
	scenario := os.Getenv("MCP_CONFORMANCE_SCENARIO")
	var scenarioCtx struct {
		ToolCalls []struct {
			Name      string         `json:"name"`
			Arguments map[string]any `json:"arguments"`
		} `json:"toolCalls"`
	}
	if raw := os.Getenv("MCP_CONFORMANCE_CONTEXT"); raw != "" {
		_ = json.Unmarshal([]byte(raw), &scenarioCtx)
	}
	exe, err := os.Executable()
	if err != nil {
		log.Print(err)
		return 1
	}
	bridgeCmd := exec.Command(exe, "bridge-child", "-name", "conformance", "-url", args[0], "-request-wait", "10s")
	bridgeCmd.Stderr = os.Stderr

	opts := &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			if scenario == "sep-2322-client-request-state" {
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirmed": true}}, nil
			}
			// Accept with nothing filled in: the client applies the
			// schema's defaults (SEP-1034).
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{}}, nil
		},
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "keyport-bridge-conformance", Version: "1.0.0"}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	var sessOpts *mcp.ClientSessionOptions
	if v := os.Getenv("MCP_CONFORMANCE_PROTOCOL_VERSION"); v != "" {
		sessOpts = &mcp.ClientSessionOptions{ProtocolVersion: v}
	}
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: bridgeCmd}, sessOpts)
	if err != nil {
		log.Printf("connect through the bridge: %v", err)
		return 1
	}
	defer cs.Close()

	call := func(name string, arguments map[string]any) error {
		if arguments == nil {
			arguments = map[string]any{}
		}
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: arguments})
		if err != nil {
			log.Printf("call %s: %v", name, err)
		}
		return err
	}
	listTools := func() ([]*mcp.Tool, error) {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("tools/list: %w", err)
		}
		return res.Tools, nil
	}
	find := func(tools []*mcp.Tool, name string) *mcp.Tool {
		i := slices.IndexFunc(tools, func(t *mcp.Tool) bool { return t.Name == name })
		if i < 0 {
			return nil
		}
		return tools[i]
	}

	err = func() error {
		switch scenario {
		case "initialize", "json-schema-ref-no-deref":
			_, err := listTools()
			return err
		case "request-metadata":
			return nil // connecting is the scenario
		case "tools_call", "sse-retry", "elicitation-sep1034-client-defaults":
			tool := map[string]string{"tools_call": "add_numbers", "sse-retry": "test_reconnection",
				"elicitation-sep1034-client-defaults": "test_client_elicitation_defaults"}[scenario]
			tools, err := listTools()
			if err != nil {
				return err
			}
			if find(tools, tool) == nil {
				return fmt.Errorf("the server lists no %q tool", tool)
			}
			args := map[string]any{}
			if tool == "add_numbers" {
				args = map[string]any{"a": 5, "b": 3}
			}
			return call(tool, args)
		case "json-schema-2020-12-preservation":
			tools, err := listTools()
			if err != nil {
				return err
			}
			focal := find(tools, "json_schema_2020_12_tool")
			if focal == nil {
				return fmt.Errorf("no json_schema_2020_12_tool")
			}
			return call("json_schema_echo", map[string]any{"schema": focal.InputSchema})
		case "sep-2322-client-request-state":
			for _, name := range []string{"test_mrtr_echo_state", "test_mrtr_no_state", "test_mrtr_unrelated", "test_mrtr_no_result_type"} {
				_ = call(name, nil) // some are meant to be refused
			}
			return nil
		case "http-standard-headers":
			if tools, err := listTools(); err == nil && len(tools) > 0 {
				_ = call(tools[0].Name, nil)
			}
			if res, err := cs.ListResources(ctx, nil); err == nil && len(res.Resources) > 0 {
				_, _ = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: res.Resources[0].URI})
			}
			if res, err := cs.ListPrompts(ctx, nil); err == nil && len(res.Prompts) > 0 {
				_, _ = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: res.Prompts[0].Name, Arguments: map[string]string{}})
			}
			return nil
		case "http-custom-headers":
			if _, err := listTools(); err != nil {
				return err
			}
			for _, c := range scenarioCtx.ToolCalls {
				_ = call(c.Name, c.Arguments)
			}
			return nil
		case "http-invalid-tool-headers":
			tools, err := listTools()
			if err != nil {
				return err
			}
			for _, tool := range tools {
				_ = call(tool.Name, map[string]any{"region": "us-west1"})
			}
			return nil
		}
		return fmt.Errorf("unknown scenario %q", scenario)
	}()
	if err != nil {
		log.Printf("scenario %s: %v", scenario, err)
		return 1
	}
	return 0
}
