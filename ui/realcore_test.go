package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/zalando/go-keyring"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
	"keyport/app/remote"
)

// memKeychain is an in-memory secrets.Backend: these tests are about the
// window, the proxy and the client files, not the OS keychain (which has
// its own tests under scripts/session.sh).
type memKeychain struct {
	mu sync.Mutex
	m  map[string]string
}

func (k *memKeychain) Set(service, account, value string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[service+"\x00"+account] = value
	return nil
}

func (k *memKeychain) Get(service, account string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[service+"\x00"+account]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (k *memKeychain) Delete(service, account string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[service+"\x00"+account]; !ok {
		return keyring.ErrNotFound
	}
	delete(k.m, service+"\x00"+account)
	return nil
}

// upstream starts an in-process go-sdk MCP server with one tool.
func upstream(t *testing.T) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "ui-test-upstream", Version: "1.0.0"}, nil)
	type args struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echo the text."},
		func(ctx context.Context, req *mcp.CallToolRequest, a args) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: a.Text}}}, nil, nil
		})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// realHarness runs the window over the real core (*app.App) with a config
// dir and HOME of its own and one server in front of a go-sdk upstream:
// in-process, or (overSocket) as in the app, over the control socket the
// tray process serves (app/remote).
type realHarness struct {
	*harness
	app      *app.App
	home     string
	dir      string
	keychain *memKeychain
}

func newRealHarness(t *testing.T, overSocket bool) *realHarness {
	t.Helper()
	return newRealHarnessAt(t, overSocket, upstream(t))
}

// newRealHarnessAt is newRealHarness with the server "echo" at url.
func newRealHarnessAt(t *testing.T, overSocket bool, url string) *realHarness {
	t.Helper()
	yaml := "servers:\n  - name: echo\n    description: In-process go-sdk server\n    url: " + url + "\n    labels: {env: test}\n"
	return newRealHarnessWith(t, overSocket, yaml)
}

// newRealHarnessWith is newRealHarness with servers.yaml holding yaml, or
// with no servers.yaml at all (a first run) when yaml is "".
func newRealHarnessWith(t *testing.T, overSocket bool, yaml string) *realHarness {
	t.Helper()
	dir, home := t.TempDir(), t.TempDir()
	if yaml != "" {
		if err := os.WriteFile(filepath.Join(dir, "servers.yaml"), []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kc := &memKeychain{m: map[string]string{}}
	core, err := app.New(app.Options{
		ConfigDir: dir, Home: home, Keychain: kc,
		KeychainService: "keyport-ui-test", Executable: "/usr/local/bin/keyport",
		Env: func(string) string { return "" },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	var windowCore Core = core
	if overSocket {
		ln, err := remote.Listen(dir)
		if err != nil {
			t.Fatal(err)
		}
		srv := remote.Serve(ln, core, remote.ServeOptions{})
		t.Cleanup(func() { srv.Close() })
		client, err := remote.Dial(context.Background(), remote.SocketPath(dir))
		if err != nil {
			t.Fatal(err)
		}
		windowCore = client
	}
	fa := test.NewTempApp(t)
	q := make(chan func(), 4096)
	h := &harness{t: t, app: fa, q: q}
	h.u = newUI(fa, windowCore, options{do: func(f func()) { q <- f }})
	t.Cleanup(func() { h.u.Close(); h.settle() })
	h.u.Window.Show()
	h.settle()
	return &realHarness{harness: h, app: core, home: home, dir: dir, keychain: kc}
}

// TestRealSwitchStartsAndStopsAProxy taps the switch of a server in front of
// a real go-sdk upstream: the row turns running, an MCP client reaches the
// upstream's tool through the local URL, and off stops the proxy.
func TestRealSwitchStartsAndStopsAProxy(t *testing.T) {
	bothWays(t, testRealSwitchStartsAndStopsAProxy)
}

// bothWays runs a real-core test with the window in-process and over the
// control socket, as the app runs it.
func bothWays(t *testing.T, f func(t *testing.T, overSocket bool)) {
	t.Run("in-process", func(t *testing.T) { f(t, false) })
	t.Run("over-socket", func(t *testing.T) { f(t, true) })
}

func testRealSwitchStartsAndStopsAProxy(t *testing.T, overSocket bool) {
	h := newRealHarness(t, overSocket)
	r := h.row("echo")
	if r.dot.state != app.ProxyStopped {
		t.Fatalf("fresh server is %s, want stopped", r.dot.state)
	}
	test.Tap(r.sw)
	h.waitFor("echo running", func() bool { return h.row("echo").dot.state == app.ProxyRunning })
	local := h.row("echo").view.LocalURL
	if !strings.HasPrefix(local, "http://127.0.0.1:") {
		t.Fatalf("local URL %q", local)
	}
	// The proxy really forwards: list the tools through it.
	ctx := context.Background()
	c := mcp.NewClient(&mcp.Implementation{Name: "ui-test-client", Version: "1.0.0"}, nil)
	sess, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: local}, nil)
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	res, err := sess.ListTools(ctx, nil)
	sess.Close()
	if err != nil || len(res.Tools) != 1 || res.Tools[0].Name != "echo" {
		t.Fatalf("tools through the proxy: %v, %v", res, err)
	}

	test.Tap(h.row("echo").sw)
	h.waitFor("echo stopped", func() bool {
		r := h.row("echo")
		return r.dot.state == app.ProxyStopped && !r.sw.Disabled()
	})
	resp, err := http.Post(local, "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
		t.Error("the proxy still answers after the switch turned it off")
	}
}

// TestRealCursorAddWritesTheFileAndFollowsOutsideEdits adds the server to
// Cursor from the Clients tab (preview, write), checks the file in the temp
// HOME, then edits the file outside Keyport and sees the row follow.
func TestRealCursorAddWritesTheFileAndFollowsOutsideEdits(t *testing.T) {
	bothWays(t, testRealCursorAdd)
}

func testRealCursorAdd(t *testing.T, overSocket bool) {
	h := newRealHarness(t, overSocket)
	h.selectServer("echo")
	h.selectTab("Clients")
	ct := h.u.Detail.clients
	row := ct.rows["cursor"]
	if row == nil {
		t.Fatalf("no Cursor row; rows: %v", ct.rows)
	}
	if row.Action.Text != "Add" {
		t.Fatalf("Cursor action %q, want Add", row.Action.Text)
	}
	test.Tap(row.Action)
	h.waitFor("preview", func() bool { return ct.Preview != nil })
	if !strings.Contains(ct.Preview.Diff.String(), "echo") {
		t.Errorf("preview does not mention the entry: %q", ct.Preview.Diff.String())
	}
	path := filepath.Join(h.home, ".cursor", "mcp.json")
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the file exists before the preview was confirmed: %v", err)
	}
	ct.Preview.Confirm()
	h.waitFor("Cursor connected", func() bool { return ct.rows["cursor"].State.text == "connected" })
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		MCPServers map[string]json.RawMessage `json:"mcpServers"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.MCPServers["keyport-echo"] == nil {
		t.Fatalf("Cursor file has no keyport-echo entry (%v):\n%s", err, b)
	}
	if !ct.rows["cursor"].Undo.Visible() {
		t.Error("no Undo after the write")
	}

	// An outside edit removes the entry: the row follows without a click.
	if err := os.WriteFile(path, []byte(`{"mcpServers": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	h.waitFor("Cursor missing after the outside edit", func() bool { return ct.rows["cursor"].State.text == "not added" })
}

// TestRealToolPolicyAndAudit lists the tools through the running proxy,
// denies the only tool with its checkbox, saves, and sees the denial of a
// real tools/call in the audit tab.
func TestRealToolPolicyAndAudit(t *testing.T) { bothWays(t, testRealToolPolicyAndAudit) }

func testRealToolPolicyAndAudit(t *testing.T, overSocket bool) {
	h := newRealHarness(t, overSocket)
	test.Tap(h.row("echo").sw)
	h.waitFor("echo running", func() bool { return h.row("echo").dot.state == app.ProxyRunning })
	h.selectServer("echo")
	h.selectTab("Tools")
	tools := h.u.Detail.tools
	h.waitFor("tools listed", func() bool { return len(tools.tools) == 1 })
	if tools.tools[0].Name != "echo" || !tools.allowed["echo"] {
		t.Fatalf("tools = %+v, allowed %v", tools.tools, tools.allowed)
	}
	tools.setTool("echo", false)
	h.waitFor("preview", func() bool { return strings.HasPrefix(tools.Preview.Text, "No tool is allowed") })
	test.Tap(tools.Save)
	h.waitFor("saved", func() bool { return strings.HasPrefix(tools.Status.Text, "Policy saved") })

	ctx := context.Background()
	c := mcp.NewClient(&mcp.Implementation{Name: "ui-test-client", Version: "1.0.0"}, nil)
	sess, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: h.row("echo").view.LocalURL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, callErr := sess.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	sess.Close()
	if callErr == nil {
		t.Fatal("a denied tool was called through the proxy")
	}
	// The audit writer may flush a moment after the call returns.
	h.waitFor("the denial in the audit log", func() bool {
		entries, _ := h.app.Audit("echo", 50)
		for _, e := range entries {
			if e.Tool == "echo" && e.Outcome == "denied" {
				return true
			}
		}
		return false
	})
	h.selectTab("Audit")
	a := h.u.Detail.audit
	h.waitFor("the denial in the audit tab", func() bool {
		for _, e := range a.shown {
			if e.Tool == "echo" && e.Outcome == "denied" {
				return true
			}
		}
		return false
	})
}

// TestRealAddServerKeepsTheSecretInTheKeychain adds a server with a bearer
// token through the dialog: it appears in the list with its credential set,
// servers.yaml names it without the token, and the keychain holds the token.
func TestRealAddServerKeepsTheSecretInTheKeychain(t *testing.T) {
	bothWays(t, testRealAddServer)
}

func testRealAddServer(t *testing.T, overSocket bool) {
	h := newRealHarness(t, overSocket)
	test.Tap(h.u.AddButton)
	d := h.u.AddDialog
	test.Type(d.URL, "https://mcp.notion.com/mcp")
	d.Auth.SetSelected("Bearer token")
	const token = "ntn-s3cret-token-123"
	test.Type(d.Secret, token)
	test.Tap(d.Submit)
	h.waitFor("notion listed", func() bool { return slices.Contains(h.shownNames(), "notion") })
	if h.u.AddDialog != nil {
		t.Errorf("the dialog stays open: %q", d.Err.Text)
	}
	h.waitFor("credential shown as stored", func() bool {
		return h.u.selected == "notion" && h.u.Detail.overview.Credential.Text == "Stored in your OS keychain (Bearer token)."
	})
	yaml, err := os.ReadFile(filepath.Join(h.dir, "servers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(yaml), "https://mcp.notion.com/mcp") || strings.Contains(string(yaml), token) {
		t.Errorf("servers.yaml must name the server and never hold its token:\n%s", yaml)
	}
	found := false
	h.keychain.mu.Lock()
	for _, v := range h.keychain.m {
		found = found || strings.Contains(v, token)
	}
	h.keychain.mu.Unlock()
	if !found {
		t.Error("the token is not in the keychain")
	}
}

// TestRealAddOAuthPreregisteredClient adds an OAuth server with a
// pre-registered client through the dialog: servers.yaml gets the client
// ID and never the secret, the keychain gets the secret, the detail view
// says "pre-registered client", and the Client… dialog edits the ID.
func TestRealAddOAuthPreregisteredClient(t *testing.T) {
	bothWays(t, func(t *testing.T, overSocket bool) {
		h := newRealHarness(t, overSocket)
		test.Tap(h.u.AddButton)
		d := h.u.AddDialog
		test.Type(d.URL, "https://api.githubcopilot.com/mcp/")
		d.Name.SetText("github")
		d.Auth.SetSelected("OAuth sign-in")
		if !d.ClientID.Visible() || !d.ClientSecret.Visible() || !d.ClientSecret.Password || d.Secret.Visible() {
			t.Fatal("OAuth must show Client ID and a masked Client secret, and no token field")
		}
		const secret = "gh-client-s3cret-42"
		test.Type(d.ClientSecret, secret)
		test.Tap(d.Submit)
		if !d.Err.Visible() || !strings.Contains(d.Err.Text, "client ID") {
			t.Errorf("a secret without a client ID: error %q", d.Err.Text)
		}
		test.Type(d.ClientID, "Ov23liABCDEF")
		test.Tap(d.Submit)
		h.waitFor("github listed", func() bool { return slices.Contains(h.shownNames(), "github") })
		h.waitFor("the client mode shown", func() bool {
			return h.u.selected == "github" && strings.Contains(h.u.Detail.overview.Auth.Text, "pre-registered client")
		})
		yaml, err := os.ReadFile(filepath.Join(h.dir, "servers.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(yaml), "client_id: Ov23liABCDEF") || strings.Contains(string(yaml), secret) {
			t.Errorf("servers.yaml must hold the client ID and never its secret:\n%s", yaml)
		}
		h.keychain.mu.Lock()
		stored := false
		for k, v := range h.keychain.m {
			stored = stored || (strings.Contains(k, "github/oauth/client-secret") && v == secret)
		}
		h.keychain.mu.Unlock()
		if !stored {
			t.Error("the client secret is not in the keychain under github/oauth/client-secret")
		}

		// The Client… dialog: the ID is shown and edited in place.
		test.Tap(h.u.Detail.overview.SetCred)
		sd := h.u.SecretDialog
		if sd == nil || sd.Entries["client-id"] == nil || sd.Entries["client-id"].Text != "Ov23liABCDEF" || !sd.Entries["client-secret"].Password {
			t.Fatalf("Client dialog: %+v", sd)
		}
		sd.Entries["client-id"].SetText("Ov23liXYZ")
		test.Tap(sd.Submit)
		h.waitFor("the new client ID in servers.yaml", func() bool {
			b, _ := os.ReadFile(filepath.Join(h.dir, "servers.yaml"))
			return strings.Contains(string(b), "client_id: Ov23liXYZ")
		})
	})
}

// TestRealDemoFirstRunHasNoWarning: on a first run (no servers.yaml) the
// demo greets the user without any warning: its token is created when it
// is turned on, not missing. Once on, the row is green and the credential
// section says where the token is.
func TestRealDemoFirstRunHasNoWarning(t *testing.T) { bothWays(t, testRealDemoFirstRun) }

func testRealDemoFirstRun(t *testing.T, overSocket bool) {
	h := newRealHarnessWith(t, overSocket, "")
	if got := h.shownNames(); !slices.Equal(got, []string{"demo"}) {
		t.Fatalf("first run lists %q, want the demo", got)
	}
	h.selectServer("demo")
	r, d, ov := h.row("demo"), h.u.Detail, h.u.Detail.overview
	if r.prob.Visible() {
		t.Errorf("the demo's row shows %q (importance %v) before its first start", r.prob.Text, r.prob.Importance)
	}
	if d.Status.Importance != widget.MediumImportance || !strings.HasPrefix(d.Status.Text, "Stopped.") {
		t.Errorf("the demo's status is %q (importance %v)", d.Status.Text, d.Status.Importance)
	}
	if ov.Credential.Importance == widget.WarningImportance || ov.Credential.Importance == widget.DangerImportance ||
		!strings.Contains(ov.Credential.Text, "when you turn the demo on") {
		t.Errorf("the demo's credential says %q (importance %v)", ov.Credential.Text, ov.Credential.Importance)
	}
	if ov.SetCred.Visible() || ov.ClearCred.Visible() {
		t.Error("the demo's own token offers Set or Clear")
	}
	test.Tap(r.sw)
	h.waitFor("demo running", func() bool { return h.row("demo").dot.state == app.ProxyRunning })
	h.waitFor("token stored", func() bool { return ov.Credential.Importance == widget.SuccessImportance })
	if !strings.Contains(ov.Credential.Text, "keeps it in your OS keychain") || strings.Contains(ov.Credential.Text, "()") {
		t.Errorf("once on, the demo's credential says %q", ov.Credential.Text)
	}
}
