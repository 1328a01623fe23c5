package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/internal/apptest"
)

// keyportCLI is bin/keyport-cli beside KEYPORT_BIN (make test builds both
// and sets KEYPORT_BIN); the test needs the real keychain too.
func keyportCLI(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KEYPORT_BIN")
	if bin == "" || os.Getenv("KEYPORT_TEST_KEYRING") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs this test with make test (KEYPORT_BIN, scripts/session.sh)")
		}
		t.Skip("needs KEYPORT_BIN and the real keychain (make test sets both)")
	}
	cli := filepath.Join(filepath.Dir(bin), "keyport-cli")
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("keyport-cli is not beside %s: %v (make build builds both)", bin, err)
	}
	return cli
}

// echoingUpstream is a server that shows the credential it received: its
// MCP tool "whoami" returns the Authorization header (text, structured
// content, a progress message), every answer carries it in an
// X-Debug-Auth header, and /broken answers every request with a
// plain-text 500 quoting it, as debug pages and gateways do.
func echoingUpstream(t *testing.T) (mcpURL, brokenURL string) {
	t.Helper()
	srv := mcp.NewServer(&mcp.Implementation{Name: "echoing", Version: "1"}, nil)
	type none struct{}
	mcp.AddTool(srv, &mcp.Tool{Name: "whoami", Description: "shows the Authorization header"}, func(ctx context.Context, req *mcp.CallToolRequest, _ none) (*mcp.CallToolResult, any, error) {
		a := req.Extra.Header.Get("Authorization")
		if tok := req.Params.GetProgressToken(); tok != nil {
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Message: "checking " + a})
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "you sent " + a}},
			StructuredContent: map[string]any{"authorization": a}}, nil, nil
	})
	mux := http.NewServeMux()
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Debug-Auth", r.Header.Get("Authorization")) // a gateway echoing it in a header
		mcpHandler.ServeHTTP(w, r)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "internal error; request headers: Authorization="+r.Header.Get("Authorization"), 500)
	})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	base := "http://" + ln.Addr().String()
	return base + "/mcp", base + "/broken"
}

// TestBinaryNeverShowsClientsTheCredential drives the built keyport-cli as
// a user does: `add NAME URL --bearer` (the token on stdin, into the real
// keychain), `proxy NAME`, a go-sdk client through it. The servers echo
// the token they receive; every byte the client read, everything the
// processes printed and every file Keyport wrote are scanned for it.
func TestBinaryNeverShowsClientsTheCredential(t *testing.T) {
	cli := keyportCLI(t)
	const token = "tok-e2e-Redact/Me+Now=0123456789"
	mcpURL, brokenURL := echoingUpstream(t)
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "KEYPORT_CONFIG_DIR="+filepath.Join(home, "kp"))
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, args...)
		cmd.Env, cmd.Stdin = env, strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("keyport-cli %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	var printed strings.Builder
	for _, s := range [][2]string{{"redact-echo", mcpURL}, {"redact-broken", brokenURL}} {
		printed.WriteString(run(token+"\n", "add", s[0], s[1], "--bearer"))
		t.Cleanup(func() {
			cmd := exec.Command(cli, "rm", s[0], "--yes")
			cmd.Env = env
			_ = cmd.Run() // also removes its keychain item
		})
	}

	echoURL, echoLogs := startBinaryProxy(t, cli, env, "redact-echo")
	brokenProxy, brokenLogs := startBinaryProxy(t, cli, env, "redact-broken")

	// The AI client calls the echoing tool.
	rec := &apptest.Recorder{}
	var progressMsg string
	progressSeen := make(chan struct{}, 1)
	c := mcp.NewClient(&mcp.Implementation{Name: "ai-client", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			progressMsg = req.Params.Message
			progressSeen <- struct{}{}
		},
	})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: echoURL, HTTPClient: &http.Client{Transport: rec}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	params := &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}}
	params.SetProgressToken("p")
	res, err := cs.CallTool(context.Background(), params)
	if err != nil {
		t.Fatalf("the client could not use the answer: %v", err)
	}
	if txt := res.Content[0].(*mcp.TextContent).Text; txt != "you sent [REDACTED]" {
		t.Errorf("tool result %q", txt)
	}
	select {
	case <-progressSeen:
		if progressMsg != "checking [REDACTED]" {
			t.Errorf("progress message %q", progressMsg)
		}
	case <-time.After(10 * time.Second):
		t.Error("no progress notification")
	}
	cs.Close()

	// A debug page quoting the header becomes the proxy's own JSON-RPC error.
	resp, err := http.Post(brokenProxy, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rpc struct {
		Error struct{ Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &rpc); err != nil || resp.StatusCode != 500 ||
		rpc.Error.Message != "redact-broken answered 500 Internal Server Error: internal error; request headers: Authorization=[REDACTED]" {
		t.Errorf("the 500 became %d %s (%v)", resp.StatusCode, body, err)
	}

	client := append(rec.Bytes(), body...)
	if !strings.Contains(string(client), "X-Debug-Auth: [REDACTED]") {
		t.Error("the echoed header did not reach the client redacted")
	}
	if !strings.Contains(string(client), "[REDACTED]") {
		t.Fatal("no redaction in what the client read: the test proves nothing")
	}
	for what, b := range map[string]string{"the client's answers": string(client), "the CLI's output": printed.String()} {
		if s := apptest.Leak([]byte(b), token); s != "" {
			t.Errorf("%s hold the token (%q)", what, s)
		}
	}
	stopBinaryProxy(t, echoLogs)
	stopBinaryProxy(t, brokenLogs)
	for what, logs := range map[string]*proxyProcess{"redact-echo": echoLogs, "redact-broken": brokenLogs} {
		if s := apptest.Leak([]byte(logs.stderr.String()), token); s != "" {
			t.Errorf("the log of proxy %s holds the token (%q)", what, s)
		}
		if !strings.Contains(logs.stderr.String(), "Keyport removed it") {
			t.Errorf("proxy %s logged no redaction warning:\n%s", what, logs.stderr.String())
		}
	}
	apptest.ScanForSecret(t, token, home)
}

type proxyProcess struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
}

// startBinaryProxy runs `keyport-cli proxy name` and returns its URL.
func startBinaryProxy(t *testing.T, cli string, env []string, name string) (string, *proxyProcess) {
	t.Helper()
	cmd := exec.Command(cli, "proxy", name)
	cmd.Env = env
	pp := &proxyProcess{cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = pp.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	m := regexp.MustCompile(`^Proxying connections to \S+ on (127\.0\.0\.1:\d+)\n$`).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("keyport-cli proxy %s printed %q (%v); stderr:\n%s", name, line, err, pp.stderr.String())
	}
	return fmt.Sprintf("http://%s/mcp", m[1]), pp
}

// stopBinaryProxy interrupts the proxy as Ctrl-C does and waits for it.
func stopBinaryProxy(t *testing.T, pp *proxyProcess) {
	t.Helper()
	_ = pp.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- pp.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("keyport-cli proxy exited: %v; stderr:\n%s", err, pp.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Errorf("keyport-cli proxy did not stop on SIGINT")
	}
}
