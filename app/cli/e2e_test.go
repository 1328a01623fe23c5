package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app"
	"keyport/app/internal/apptest"
)

// cliEnv is a temp home and config dir and the App options pointing there.
type cliEnv struct {
	home, dir string
	opts      app.Options
}

func newCLIEnv(t *testing.T) cliEnv {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, ".config", "keyport")
	kc, service := apptest.Keychain(t)
	env := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, ".config")}
	return cliEnv{home: home, dir: dir, opts: app.Options{
		ConfigDir: dir, Home: home, Keychain: kc, KeychainService: service,
		Executable: "/opt/keyport/bin/keyport", Env: func(k string) string { return env[k] },
	}}
}

func (c cliEnv) run(t *testing.T, stdin string, argv ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = MainWith(context.Background(), argv, IO{In: strings.NewReader(stdin), Out: &out, Err: &errb}, c.opts)
	return code, out.String(), errb.String()
}

// startProxy runs `keyport proxy argv...` until the test ends and returns
// the port it announced.
func (c cliEnv) startProxy(t *testing.T, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- MainWith(ctx, append([]string{"proxy"}, argv...), IO{In: strings.NewReader(""), Out: pw, Err: &errb}, c.opts)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("proxy exited %d: %s", code, errb.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("proxy did not stop within 10s of its context ending")
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("proxy printed nothing: %v (stderr %s)", err, errb.String())
	}
	m := regexp.MustCompile(`^Proxying connections to (\S+) on 127\.0\.0\.1:(\d+)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("proxy announced %q, want exactly \"Proxying connections to NAME on 127.0.0.1:PORT\"", line)
	}
	go io.Copy(io.Discard, pr)
	return m[2]
}

// TestEndToEndBearerServer: keyport add a server that requires a bearer
// token → keyport proxy → a go-sdk client lists and calls tools → the
// upstream saw the token → nothing Keyport wrote holds it.
func TestEndToEndBearerServer(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a-never-in-a-file"
	c := newCLIEnv(t)
	up := apptest.NewUpstream(t, token)

	code, out, errOut := c.run(t, token+"\n", "add", "acme", up.URL, "--bearer",
		"--description", "Acme tools", "--label", "team=data")
	if code != 0 {
		t.Fatalf("add: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "Added acme") {
		t.Errorf("add output %q", out)
	}

	port := c.startProxy(t, "acme")
	s, clientSaw := apptest.ConnectRecording(t, "http://127.0.0.1:"+port+"/mcp")
	if got := apptest.ToolNames(t, s); strings.Join(got, ",") != "delete_all,search" {
		t.Errorf("tools through the proxy = %v", got)
	}
	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.IsError {
		t.Fatalf("tools/call: %v %+v", err, res)
	}
	if txt := res.Content[0].(*mcp.TextContent).Text; txt != "search:hi" {
		t.Errorf("tools/call answered %q", txt)
	}
	if !up.SawOnly("Bearer " + token) {
		t.Error("the upstream did not get the bearer token on every request")
	}
	s.Close()
	if leak := apptest.Leak(clientSaw.Bytes(), token); leak != "" || len(clientSaw.Bytes()) == 0 {
		t.Errorf("the client's answers hold the token (%q)", leak)
	}

	// Wiring clients writes the local proxy, never the token.
	if code, out, errOut := c.run(t, "", "config", "acme", "--client-config=cursor"); code != 0 ||
		!strings.Contains(out, "Updated client configuration at: "+filepath.Join(c.home, ".cursor", "mcp.json")) {
		t.Fatalf("config cursor: exit %d: %s %s", code, out, errOut)
	}
	if code, _, errOut := c.run(t, "", "config", "acme", "--client-config=claude"); code != 0 {
		t.Fatalf("config claude: exit %d: %s", code, errOut)
	}
	cursor, err := os.ReadFile(filepath.Join(c.home, ".cursor", "mcp.json"))
	if err != nil || !strings.Contains(string(cursor), `"keyport-acme"`) || !strings.Contains(string(cursor), "http://127.0.0.1:") {
		t.Errorf("cursor config: %v\n%s", err, cursor)
	}
	claude, err := os.ReadFile(filepath.Join(c.home, ".config", "Claude", "claude_desktop_config.json"))
	if err != nil || !strings.Contains(string(claude), `"/opt/keyport/bin/keyport"`) || !strings.Contains(string(claude), `"connect"`) {
		t.Errorf("claude config: %v\n%s", err, claude)
	}

	// The audit log has the call; the token is nowhere on disk.
	time.Sleep(300 * time.Millisecond) // the audit writer is asynchronous
	audit, err := os.ReadFile(filepath.Join(c.dir, "audit", "acme.jsonl"))
	if err != nil || !strings.Contains(string(audit), `"tool":"search"`) {
		t.Errorf("audit log: %v\n%s", err, audit)
	}
	apptest.ScanForSecret(t, token, c.home)
}

// TestConnectByName drives `keyport connect NAME` over pipes with a go-sdk
// client: with no app running it runs its own proxy with the keychain's
// credentials.
func TestConnectByName(t *testing.T) {
	const token = "tok-connect-123456"
	c := newCLIEnv(t)
	up := apptest.NewUpstream(t, token)
	c.addAcme(t, up, token)
	b := c.startConnect(t, "acme")
	if got := apptest.ToolNames(t, b.s); len(got) != 2 {
		t.Errorf("tools over the bridge = %v", got)
	}
	if !up.SawOnly("Bearer " + token) {
		t.Error("the upstream did not get the bearer token")
	}
	b.stop(t) // closes stdin: the bridge ends
	apptest.ScanForSecret(t, token, c.home)
}

// TestProxyFollowsServersYaml: `keyport proxy NAME` applies an edit of
// servers.yaml to its clients' running sessions, on the same port.
func TestProxyFollowsServersYaml(t *testing.T) {
	const token = "tok-proxy-follow-1234"
	c := newCLIEnv(t)
	up := apptest.NewUpstream(t, token)
	c.addAcme(t, up, token)
	port := c.startProxy(t, "acme")
	s := apptest.Connect(t, "http://127.0.0.1:"+port+"/mcp")
	if got := apptest.ToolNames(t, s); len(got) != 2 {
		t.Fatalf("tools = %v", got)
	}
	editor, err := app.New(c.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer editor.Close()
	if err := editor.SetToolPolicy("acme", []string{"search"}, nil); err != nil {
		t.Fatal(err)
	}
	awaitTools(t, s, 1, &strings.Builder{})
}

// TestConnectOutlivesTheApp: with the tray app's proxy running, `keyport
// connect NAME` goes through it (one audit log, one policy); when the user
// quits Keyport, the bridge starts its own proxy and the AI client's next
// calls still work, in the same session.
func TestConnectOutlivesTheApp(t *testing.T) {
	const token = "tok-failover-123456"
	c := newCLIEnv(t)
	up := apptest.NewUpstream(t, token)
	c.addAcme(t, up, token)
	// The tray app, with acme's proxy on.
	tray, err := app.New(c.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := tray.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	trayClosed := false
	defer func() {
		if !trayClosed {
			tray.Close()
		}
	}()
	if err := tray.SetProxyEnabled(context.Background(), "acme", true); err != nil {
		t.Fatal(err)
	}
	view := func() app.ServerView {
		for _, s := range tray.Servers() {
			if s.Name == "acme" {
				return s
			}
		}
		t.Fatal("acme is not in the app")
		return app.ServerView{}
	}

	b := c.startConnect(t, "acme")
	if got := apptest.ToolNames(t, b.s); len(got) != 2 {
		t.Errorf("tools through the app's proxy = %v", got)
	}
	sharedURL := view().LocalURL
	if n := view().Counters.Requests; n < 2 {
		t.Errorf("the app's proxy counted %d requests; the bridge did not use it", n)
	}

	// The user edits the policy in the app: its proxy takes the new
	// configuration on the same socket, so the bridge stays with it (no
	// takeover) and the next calls see the new policy.
	if err := tray.SetToolPolicy("acme", nil, []string{"delete_*"}); err != nil {
		t.Fatal(err)
	}
	awaitTools(t, b.s, 1, b.errb)
	if strings.Contains(b.errb.String(), "now runs its own") {
		t.Fatalf("a policy edit made the bridge leave the app's proxy:\n%s", b.errb.String())
	}

	// The user quits Keyport: its proxy stops.
	if err := tray.Close(); err != nil {
		t.Fatal(err)
	}
	trayClosed = true
	// Every call keeps working: first on the old proxy's open connections,
	// then, once they are gone, on the bridge's own proxy, which has the
	// policy servers.yaml has now.
	deadline := time.Now().Add(20 * time.Second)
	for calls := 0; ; calls++ {
		tools, err := b.s.ListTools(context.Background(), nil)
		if err != nil || len(tools.Tools) != 1 {
			t.Fatalf("call %d after the app quit: tools = %v, %v; stderr:\n%s", calls, tools, err, b.errb.String())
		}
		if strings.Contains(b.errb.String(), "now runs its own") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bridge never took over (the app's proxy is gone: %s); stderr:\n%s", refused(sharedURL), b.errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	res, err := b.s.CallTool(context.Background(), &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"text": "x"}})
	if err != nil || res.IsError {
		t.Errorf("a call on the bridge's own proxy: %v %v", res, err)
	}
	b.stop(t)
	apptest.ScanForSecret(t, token, c.home)
}

// TestConnectFollowsServersYaml: a bridge running its own proxy (Keyport
// is not running) applies a policy edit of servers.yaml (from the app, the
// CLI or an editor) to the AI client's running session.
func TestConnectFollowsServersYaml(t *testing.T) {
	const token = "tok-follow-123456"
	c := newCLIEnv(t)
	up := apptest.NewUpstream(t, token)
	c.addAcme(t, up, token)
	b := c.startConnect(t, "acme")
	if got := apptest.ToolNames(t, b.s); len(got) != 2 {
		t.Fatalf("tools = %v", got)
	}
	editor, err := app.New(c.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer editor.Close()
	if err := editor.SetToolPolicy("acme", nil, []string{"delete_*"}); err != nil {
		t.Fatal(err)
	}
	awaitTools(t, b.s, 1, b.errb)
	if res, err := b.s.CallTool(context.Background(), &mcp.CallToolParams{Name: "delete_all", Arguments: map[string]any{"text": "x"}}); err == nil && !res.IsError {
		t.Error("delete_all ran after the policy denied it")
	}
	if logs := b.errb.String(); !strings.Contains(logs, "applies the new configuration") || !strings.Contains(logs, "proxy started") {
		t.Errorf("the bridge's log lacks its proxy's start or the edit; stderr:\n%s", logs)
	}
	b.stop(t)
	apptest.ScanForSecret(t, token, c.home)
}

// addAcme adds server acme (upstream up, bearer token) to c's catalog.
func (c cliEnv) addAcme(t *testing.T, up *apptest.Upstream, token string) {
	t.Helper()
	if code, _, errOut := c.run(t, token+"\n", "add", "acme", up.URL, "--bearer"); code != 0 {
		t.Fatalf("add: %s", errOut)
	}
}

// bridgeRun is `keyport connect NAME` running on pipes, with a go-sdk
// client session over them.
type bridgeRun struct {
	s    *mcp.ClientSession
	errb *syncBuffer // connect's standard error
	done chan int    // its exit code
}

// startConnect runs `keyport connect name` and connects a client to it. The
// client's input closes when the test ends, whatever happens, so connect
// ends too and the upstream server can close.
func (c cliEnv) startConnect(t *testing.T, name string) *bridgeRun {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	b := &bridgeRun{errb: &syncBuffer{}, done: make(chan int, 1)}
	go func() {
		b.done <- MainWith(context.Background(), []string{"connect", name}, IO{In: inR, Out: outW, Err: b.errb}, c.opts)
		outW.Close()
	}()
	t.Cleanup(func() { inW.Close() })
	client := mcp.NewClient(&mcp.Implementation{Name: "stdio-client", Version: "1"}, nil)
	s, err := client.Connect(context.Background(), &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatalf("connect: %v (stderr %s)", err, b.errb.String())
	}
	b.s = s
	return b
}

// stop closes the client's session (its stdin) and checks that connect
// exits 0 soon after.
func (b *bridgeRun) stop(t *testing.T) {
	t.Helper()
	b.s.Close()
	select {
	case code := <-b.done:
		if code != 0 {
			t.Errorf("connect exited %d: %s", code, b.errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("connect did not exit after stdin closed")
	}
}

// awaitTools lists s's tools until there are want of them (every call
// must succeed), failing after 10 s; logs is shown on failure.
func awaitTools(t *testing.T, s *mcp.ClientSession, want int, logs fmt.Stringer) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		tools, err := s.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatalf("a call while waiting for %d tools: %v; logs:\n%s", want, err, logs)
		}
		if len(tools.Tools) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d tools after 10 s, want %d; logs:\n%s", len(tools.Tools), want, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refused describes what a new connection to url meets.
func refused(url string) string {
	resp, err := http.Post(url, "application/json", strings.NewReader("{}"))
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	return "it still answers " + resp.Status
}

func TestLsFormats(t *testing.T) {
	c := newCLIEnv(t)
	for _, argv := range [][]string{
		{"add", "alpha", "https://alpha.example.com/mcp", "--description", "Alpha  search\nservice", "--label", "env=prod", "--label", "team=data"},
		{"add", "beta", "http://127.0.0.1:9/mcp"},
	} {
		if code, _, errOut := c.run(t, "", argv...); code != 0 {
			t.Fatalf("%v: %s", argv, errOut)
		}
	}
	// A policy that denies everything is flagged.
	if err := os.WriteFile(filepath.Join(c.dir, "servers.yaml"), []byte(strings.Replace(mustRead(t, filepath.Join(c.dir, "servers.yaml")),
		"url: http://127.0.0.1:9/mcp", "url: http://127.0.0.1:9/mcp\n    tools:\n      deny: [\"*\"]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, text, _ := c.run(t, "", "ls")
	golden(t, "ls.txt", text)
	_, js, _ := c.run(t, "", "ls", "--format", "json")
	golden(t, "ls.json", js)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(js), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("ls json: %v %s", err, js)
	}
	_, filtered, _ := c.run(t, "", "ls", "--labels", "env=prod", "--format", "yaml")
	golden(t, "ls-labels.yaml", filtered)
	_, searched, _ := c.run(t, "", "ls", "--search", "BETA")
	if !strings.Contains(searched, "beta") || strings.Contains(searched, "alpha") {
		t.Errorf("ls --search BETA:\n%s", searched)
	}
	if code, _, errOut := c.run(t, "", "ls", "--format", "xml"); code != ExitUsage || !strings.Contains(errOut, "text, json or yaml") {
		t.Errorf("ls --format xml: exit %d %q", code, errOut)
	}
}

func TestAddRejectsBadInputWithoutWriting(t *testing.T) {
	c := newCLIEnv(t)
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"add", "Bad_Name", "https://x.example.com/mcp"}, "lowercase"},
		{[]string{"add", "plain", "http://example.com/mcp"}, "https"},
		{[]string{"add", "twice", "https://x.example.com/mcp", "--bearer", "--oauth"}, "one of"},
	} {
		code, _, errOut := c.run(t, "tok\n", tc.argv...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want it to mention %q", tc.argv, code, errOut, tc.want)
		}
	}
	_, out, _ := c.run(t, "", "ls", "--format", "json")
	var rows []map[string]any
	json.Unmarshal([]byte(out), &rows)
	for _, r := range rows {
		if r["name"] != "demo" {
			t.Errorf("a rejected add left %v in the catalog", r["name"])
		}
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// golden compares got with testdata/name; KEYPORT_UPDATE_GOLDEN=1 rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if os.Getenv("KEYPORT_UPDATE_GOLDEN") == "1" {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with KEYPORT_UPDATE_GOLDEN=1 to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs:\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}
