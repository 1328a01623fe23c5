package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/internal/apptest"
	"keyport/app/state"
)

// waitFor polls cond (reading memory only) until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func serversYAML(servers ...string) string {
	return "servers:\n" + strings.Join(servers, "")
}

func acmeYAML(url, extra string) string {
	return "  - name: acme\n    url: " + url + "\n    auth:\n      type: bearer\n" + extra
}

func writeServers(t *testing.T, te testEnv, body string) {
	t.Helper()
	if err := os.MkdirAll(te.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Save as editors do: write a temp file and rename it over.
	tmp := filepath.Join(te.dir, ".servers.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(te.dir, "servers.yaml")); err != nil {
		t.Fatal(err)
	}
}

// TestDemoOnFirstRun: an empty catalog shows the demo server; its proxy
// runs with a token created in the keychain, and whoami sees that token.
func TestDemoOnFirstRun(t *testing.T) {
	te := newTestEnv(t)
	a := newTestApp(t, te)
	if _, err := os.Stat(filepath.Join(te.dir, "servers.yaml")); err != nil {
		t.Fatalf("first run wrote no example servers.yaml: %v", err)
	}
	vs := a.Servers()
	if len(vs) != 1 || vs[0].Name != DemoName || !vs[0].Demo {
		t.Fatalf("first-run servers = %+v, want the demo alone", vs)
	}
	// Before its first start the demo's token is not missing in a way the
	// user should act on: Keyport creates it when the proxy starts.
	if c := vs[0].Credential; c.Set || !c.CreatedOnStart || !slices.Equal(c.Kinds, []string{"bearer"}) {
		t.Errorf("demo credential before the first start = %+v, want not set yet, created on start, kinds [bearer]", c)
	}
	if err := a.SetProxyEnabled(context.Background(), DemoName, true); err != nil {
		t.Fatal(err)
	}
	v, _ := a.Server(DemoName)
	if v.State != ProxyRunning || v.LocalURL == "" || !v.Credential.Set {
		t.Fatalf("demo after toggle: %+v", v)
	}
	if c := v.Credential; c.CreatedOnStart || !slices.Equal(c.Kinds, []string{"bearer"}) || len(c.Missing) != 0 {
		t.Errorf("demo credential once started = %+v, want set, kinds [bearer]", c)
	}
	s := apptest.Connect(t, v.LocalURL)
	res, err := s.CallTool(context.Background(), &mcpCallWhoami)
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %+v", err, res)
	}
	if txt := textOf(res); !strings.Contains(strings.ToLower(txt), "valid") && !strings.Contains(strings.ToLower(txt), "authenticated") {
		t.Errorf("whoami through the proxy says %q; want it to have got the demo token", txt)
	}
	if err := a.SetDemoHidden(true); err != nil {
		t.Fatal(err)
	}
	if vs := a.Servers(); len(vs) != 0 {
		t.Errorf("hidden demo still listed: %+v", vs)
	}
}

// TestLiveReload: edits of servers.yaml reach the running app: a changed
// policy restarts the proxy with it, an invalid edit keeps the last good
// catalog and reports the error, a removed server's proxy stops.
func TestLiveReload(t *testing.T) {
	te := newTestEnv(t)
	up := apptest.NewUpstream(t, "tok-live")
	writeServers(t, te, serversYAML(acmeYAML(up.URL, "")))
	a := newTestApp(t, te)
	events, cancel := a.Subscribe()
	defer cancel()
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.SetSecret("acme", "bearer", "tok-live"); err != nil {
		t.Fatal(err)
	}
	if err := a.SetProxyEnabled(context.Background(), "acme", true); err != nil {
		t.Fatal(err)
	}
	v, _ := a.Server("acme")
	port := v.Port
	if got := apptest.ToolNames(t, apptest.Connect(t, v.LocalURL)); len(got) != 2 {
		t.Fatalf("tools = %v", got)
	}

	writeServers(t, te, serversYAML(acmeYAML(up.URL, "    tools:\n      deny: [delete_*]\n")))
	waitFor(t, "the new policy to apply through the restarted proxy", func() bool {
		got, err := apptest.TryToolNames(v.LocalURL)
		return err == nil && strings.Join(got, ",") == "search"
	})
	v, _ = a.Server("acme")
	if v.Port != port || v.State != ProxyRunning {
		t.Errorf("the restarted proxy is %s on port %d, was on %d", v.State, v.Port, port)
	}

	writeServers(t, te, "servers:\n  - name: acme\n    url: [broken\n")
	waitFor(t, "the catalog error", func() bool { return a.CatalogError() != "" })
	if !strings.Contains(a.CatalogError(), "servers.yaml") {
		t.Errorf("catalog error %q does not name the file", a.CatalogError())
	}
	if v, err := a.Server("acme"); err != nil || v.State != ProxyRunning {
		t.Errorf("a bad edit must keep the last good catalog running: %+v %v", v, err)
	}
	sawError := false
	for len(events) > 0 {
		if ev := <-events; ev.Kind == EventCatalogError && ev.Err != "" {
			sawError = true
		}
	}
	if !sawError {
		t.Error("no EventCatalogError was published")
	}

	writeServers(t, te, serversYAML("  - name: other\n    url: https://other.example.com/mcp\n"))
	waitFor(t, "acme to go", func() bool { _, err := a.Server("acme"); return err != nil })
	if a.CatalogError() != "" {
		t.Errorf("the error did not clear: %s", a.CatalogError())
	}
	waitFor(t, "the removed server's proxy to stop", func() bool {
		st, ok := a.manager().Status("acme")
		return !ok || st.State == "stopped"
	})
}

// TestProxiesComeBackOnTheirPorts: a proxy left on is restored at the next
// start, on the same port.
func TestProxiesComeBackOnTheirPorts(t *testing.T) {
	te := newTestEnv(t)
	up := apptest.NewUpstream(t, "tok-restore")
	writeServers(t, te, serversYAML(acmeYAML(up.URL, "")))
	a, err := New(te.opts)
	if err != nil {
		t.Fatal(err)
	}
	a.SetSecret("acme", "bearer", "tok-restore")
	if err := a.SetProxyEnabled(context.Background(), "acme", true); err != nil {
		t.Fatal(err)
	}
	v, _ := a.Server("acme")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	b := newTestApp(t, te)
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the proxy to come back", func() bool {
		w, _ := b.Server("acme")
		return w.State == ProxyRunning
	})
	w, _ := b.Server("acme")
	if w.Port != v.Port || w.LocalURL != v.LocalURL {
		t.Errorf("restored on %s, was %s", w.LocalURL, v.LocalURL)
	}
	if got := apptest.ToolNames(t, apptest.Connect(t, w.LocalURL)); len(got) != 2 {
		t.Errorf("tools = %v", got)
	}
}

// TestClientsWiring: one click wires a server into Cursor and Claude
// Desktop in a temp HOME; status follows; Undo restores; an outside edit is
// seen by the watcher.
func TestClientsWiring(t *testing.T) {
	te := newTestEnv(t)
	writeServers(t, te, serversYAML("  - name: acme\n    url: https://acme.example.com/mcp\n"))
	a := newTestApp(t, te)
	events, cancel := a.Subscribe()
	defer cancel()
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	state := func(id string) ClientView {
		for _, c := range a.Clients("acme") {
			if c.ID == id {
				return c
			}
		}
		t.Fatalf("no client %s", id)
		return ClientView{}
	}
	if st := state("cursor"); st.State != ClientMissing {
		t.Fatalf("cursor before: %+v", st)
	}
	prev, err := a.PreviewClient("cursor", "acme", true)
	if err != nil || !strings.Contains(prev.Diff, "keyport-acme") || prev.Wrote {
		t.Fatalf("preview: %+v %v", prev, err)
	}
	cursorFile := filepath.Join(te.home, ".cursor", "mcp.json")
	if _, err := os.Stat(cursorFile); err == nil {
		t.Fatal("preview wrote the file")
	}
	if _, err := a.ApplyClient("cursor", "acme", true); err != nil {
		t.Fatal(err)
	}
	st := state("cursor")
	if st.State != ClientOK || !st.CanUndo || st.Path != cursorFile {
		t.Fatalf("cursor after add: %+v", st)
	}
	body, _ := os.ReadFile(cursorFile)
	v, _ := a.Server("acme")
	if !strings.Contains(string(body), v.LocalURL) {
		t.Errorf("cursor file does not point at %s:\n%s", v.LocalURL, body)
	}
	if _, err := a.ApplyClient("claude", "acme", true); err != nil {
		t.Fatal(err)
	}
	if st := state("claude"); st.State != ClientOK || st.NeedsRestart == "" {
		t.Errorf("claude: %+v", st)
	}

	// An outside edit (the port changed by hand) makes the entry stale and
	// reaches subscribers.
	for len(events) > 0 {
		<-events
	}
	edited := strings.Replace(string(body), v.LocalURL, "http://127.0.0.1:1/mcp", 1)
	tmp := cursorFile + ".tmp"
	os.WriteFile(tmp, []byte(edited), 0o600)
	os.Rename(tmp, cursorFile)
	deadline := time.After(10 * time.Second)
	for got := false; !got; {
		select {
		case ev := <-events:
			got = ev.Kind == EventClients
		case <-deadline:
			t.Fatal("no EventClients after an outside edit")
		}
	}
	if st := state("cursor"); st.State != ClientStale {
		t.Errorf("cursor after the outside edit: %+v", st)
	}

	if err := a.UndoClient("claude"); err != nil {
		t.Fatal(err)
	}
	if st := state("claude"); st.State != ClientMissing {
		t.Errorf("claude after undo: %+v", st)
	}

	// Removing the server removes its entries.
	if err := a.RemoveServer("acme"); err != nil {
		t.Fatal(err)
	}
	body, _ = os.ReadFile(cursorFile)
	if strings.Contains(string(body), "keyport-acme") {
		t.Errorf("removed server still in cursor:\n%s", body)
	}
}

// TestToolsPolicyAndAudit: the policy editor sees every tool marked by the
// policy, a denied call never reaches the upstream, and the audit tail has
// the calls.
func TestToolsPolicyAndAudit(t *testing.T) {
	te := newTestEnv(t)
	up := apptest.NewUpstream(t, "tok-tools")
	writeServers(t, te, serversYAML(acmeYAML(up.URL, "    tools:\n      deny: [delete_*]\n")))
	a := newTestApp(t, te)
	a.SetSecret("acme", "bearer", "tok-tools")
	tools, err := a.Tools(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, tl := range tools {
		got[tl.Name] = tl.Allowed
	}
	if len(got) != 2 || !got["search"] || got["delete_all"] {
		t.Errorf("Tools = %+v, want search allowed and delete_all denied", tools)
	}
	allowed, err := a.CheckPolicy([]string{"^s.*$"}, nil, []string{"search", "delete_all"})
	if err != nil || len(allowed) != 1 || allowed[0] != "search" {
		t.Errorf("CheckPolicy = %v, %v", allowed, err)
	}
	if _, err := a.CheckPolicy([]string{"^(bad$"}, nil, nil); err == nil {
		t.Error("CheckPolicy accepted a broken regexp")
	}

	if err := a.SetProxyEnabled(context.Background(), "acme", true); err != nil {
		t.Fatal(err)
	}
	v, _ := a.Server("acme")
	s := apptest.Connect(t, v.LocalURL)
	if _, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"text": "x"}}); err != nil {
		t.Fatal(err)
	}
	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "delete_all", Arguments: map[string]any{"text": "x"}})
	if err == nil && (res == nil || !res.IsError) {
		t.Fatal("a denied tool call succeeded")
	}
	if c := up.Called(); len(c) != 1 || c[0] != "search" {
		t.Errorf("the upstream saw calls %v; the denied one must never reach it", c)
	}
	waitFor(t, "the audit log to show both calls", func() bool {
		es, _ := a.Audit("acme", 50)
		var search, denied bool
		for _, e := range es {
			search = search || (e.Tool == "search" && e.Outcome == "ok")
			denied = denied || (e.Tool == "delete_all" && e.Outcome == "denied")
		}
		return search && denied
	})
	if es, _ := a.Audit("acme", 1); len(es) != 1 {
		t.Errorf("Audit(n=1) returned %d entries", len(es))
	}
}

// TestProxyThatCannotStartSaysWhy: a port taken by another program gives
// the row state error and a reason naming the port, until turned off.
func TestProxyThatCannotStartSaysWhy(t *testing.T) {
	te := newTestEnv(t)
	writeServers(t, te, serversYAML("  - name: acme\n    url: https://acme.example.com/mcp\n"))
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port
	os.WriteFile(filepath.Join(te.dir, "state.json"),
		[]byte(fmt.Sprintf(`{"version":1,"proxies":{"acme":{"enabled":true,"port":%d}}}`, port)), 0o600)
	a := newTestApp(t, te)
	events, cancel := a.Subscribe()
	defer cancel()
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restore to fail", func() bool {
		v, _ := a.Server("acme")
		return v.State == ProxyError
	})
	v, _ := a.Server("acme")
	if !strings.Contains(v.LastError, strconv.Itoa(port)) {
		t.Errorf("LastError %q does not name port %d", v.LastError, port)
	}
	if len(events) == 0 {
		t.Error("no event told subscribers")
	}
	if err := a.SetProxyEnabled(context.Background(), "acme", false); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Server("acme"); v.State != ProxyStopped || v.LastError != "" {
		t.Errorf("after turning it off: %s %q", v.State, v.LastError)
	}
}

// TestAutostartStartsInTheTray: the start-at-login entry runs this keyport
// with --background, and turns off again.
func TestAutostartStartsInTheTray(t *testing.T) {
	te := newTestEnv(t)
	te.opts.AutostartDir = t.TempDir()
	a := newTestApp(t, te)
	if a.Autostart() {
		t.Fatal("autostart on before anything enabled it")
	}
	if err := a.SetAutostart(true); err != nil {
		t.Fatal(err)
	}
	if !a.Autostart() {
		t.Fatal("autostart still off")
	}
	ents, _ := os.ReadDir(te.opts.AutostartDir)
	if len(ents) != 1 {
		t.Fatalf("autostart dir holds %d entries", len(ents))
	}
	body, _ := os.ReadFile(filepath.Join(te.opts.AutostartDir, ents[0].Name()))
	if !strings.Contains(string(body), "/opt/keyport/bin/keyport --background") {
		t.Errorf("entry does not start keyport in the background:\n%s", body)
	}
	if err := a.SetAutostart(false); err != nil || a.Autostart() {
		t.Errorf("turning it off: %v, still on: %v", err, a.Autostart())
	}
}

// TestAuditAcrossARotation: right after the log rotated, the audit tab
// still shows the newest entries, the older ones coming from FILE.1.
func TestAuditAcrossARotation(t *testing.T) {
	te := newTestEnv(t)
	a := newTestApp(t, te)
	path := a.AuditPath("acme")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	lines := func(from, to int) []byte {
		var b []byte
		for i := from; i <= to; i++ {
			b = fmt.Appendf(b, `{"time":"2026-11-26T10:00:%02dZ","event":"request","server":"acme","method":"tools/call","tool":"t%d","outcome":"ok"}`+"\n", i, i)
		}
		return b
	}
	if err := os.WriteFile(path+".1", lines(1, 8), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, lines(9, 10), 0o600); err != nil {
		t.Fatal(err)
	}
	es, err := a.Audit("acme", 5)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Tool)
	}
	if strings.Join(got, ",") != "t6,t7,t8,t9,t10" {
		t.Errorf("Audit(5) after a rotation = %v, want t6…t10 oldest first", got)
	}
	if es, _ := a.Audit("acme", 2); len(es) != 2 || es[0].Tool != "t9" {
		t.Errorf("Audit(2) = %+v, want t9, t10 from the current file only", es)
	}
}

// TestStdioEntriesRunTheLeanCLI: Claude Desktop's entry runs keyport-cli
// when it sits next to the app's binary (half the memory per bridge), and
// the app's binary when a package lacks it or it is not executable.
func TestStdioEntriesRunTheLeanCLI(t *testing.T) {
	for _, c := range []struct {
		name string
		mode os.FileMode // keyport-cli's mode; 0: absent
		want string
	}{
		{"next to the app", 0o755, "keyport-cli"},
		{"absent", 0, "keyport"},
		{"not executable", 0o644, "keyport"},
	} {
		t.Run(c.name, func(t *testing.T) {
			te := newTestEnv(t)
			bin := filepath.Join(te.home, "opt", "bin")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			te.opts.Executable = filepath.Join(bin, "keyport")
			if c.mode != 0 {
				if err := os.WriteFile(filepath.Join(bin, "keyport-cli"), []byte("#!/bin/sh\n"), c.mode); err != nil {
					t.Fatal(err)
				}
			}
			writeServers(t, te, serversYAML("  - name: acme\n    url: https://acme.example.com/mcp\n"))
			a := newTestApp(t, te)
			if _, err := a.ApplyClient("claude", "acme", true); err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				MCPServers map[string]struct {
					Command string
					Args    []string
				} `json:"mcpServers"`
			}
			body, err := os.ReadFile(filepath.Join(te.home, ".config", "Claude", "claude_desktop_config.json"))
			if err != nil || json.Unmarshal(body, &cfg) != nil {
				t.Fatalf("claude config: %v\n%s", err, body)
			}
			e := cfg.MCPServers["keyport-acme"]
			if want := filepath.Join(bin, c.want); e.Command != want || strings.Join(e.Args, " ") != "connect acme" {
				t.Errorf("entry runs %q %v, want %q connect acme", e.Command, e.Args, want)
			}
		})
	}
}

// TestCredentialKinds: a server's view names every credential kind it
// uses, set or not, so the window can say what is stored ("Stored in your
// OS keychain (Bearer token)") and offer Replace for each.
func TestCredentialKinds(t *testing.T) {
	te := newTestEnv(t)
	writeServers(t, te, serversYAML(acmeYAML("https://acme.example.com/mcp", ""),
		"  - name: hdr\n    url: https://hdr.example.com/mcp\n    auth:\n      type: headers\n      secret_headers: [X-API-Key]\n"))
	a := newTestApp(t, te)
	for _, tt := range []struct{ name, kind string }{{"acme", "bearer"}, {"hdr", "header/X-Api-Key"}} {
		v, err := a.Server(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if c := v.Credential; c.Set || c.CreatedOnStart || !slices.Equal(c.Kinds, []string{tt.kind}) || !slices.Equal(c.Missing, []string{tt.kind}) {
			t.Errorf("%s before Set: %+v", tt.name, c)
		}
		if err := a.SetSecret(tt.name, tt.kind, "s3cret"); err != nil {
			t.Fatal(err)
		}
		v, _ = a.Server(tt.name)
		if c := v.Credential; !c.Set || !slices.Equal(c.Kinds, []string{tt.kind}) || len(c.Missing) != 0 {
			t.Errorf("%s after Set: %+v, want set with kinds [%s]", tt.name, c, tt.kind)
		}
	}
}

// TestWindowPrefs: the window's size and divider position survive a
// restart (state.json), keep the other window preferences, and nonsense is
// refused.
func TestWindowPrefs(t *testing.T) {
	te := newTestEnv(t)
	a := newTestApp(t, te)
	if p := a.WindowPrefs(); p != (WindowPrefs{}) {
		t.Fatalf("first run: %+v, want none recorded", p)
	}
	if err := a.state.Update(func(st *state.State) error { st.Window.StartHidden = true; return nil }); err != nil {
		t.Fatal(err)
	}
	want := WindowPrefs{Width: 1180, Height: 740, Split: 0.38}
	if err := a.SetWindowPrefs(want); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []WindowPrefs{{Width: -1}, {Split: 1.5}, {Split: -0.1}} {
		if err := a.SetWindowPrefs(bad); err == nil {
			t.Errorf("SetWindowPrefs(%+v) accepted", bad)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := newTestApp(t, te)
	if p := b.WindowPrefs(); p != want {
		t.Errorf("after a restart: %+v, want %+v", p, want)
	}
	if !b.state.Get().Window.StartHidden {
		t.Error("SetWindowPrefs dropped another window preference")
	}
}
