package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr"
	"keyport/proxymgr/audit"
	"keyport/proxymgr/peercred"
	"keyport/proxymgr/peercred/peertest"
)

// The pass-through (passthrough.go) and the in-process hop to a member's
// proxy (proxymgr.LocalTransport) from the attacker's side: what a passed
// call may do is what the member's proxy decides, exactly as for a call
// on the go-sdk path or a direct client.

const passToken = "tok-pass-7c41e09b2a5d"

// passMember is a server "files" (echo, delete_all, whoami) behind a proxy
// a Manager runs (so its configuration can change under a live session),
// with an injected credential and an audit log; it returns the server,
// the manager, the proxy's configuration and the audit file.
func passMember(t *testing.T) (*server, *proxymgr.Manager, proxymgr.Config, string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	files := newServer(t, "files", nil, func(s *server, m *mcp.Server) {
		addEcho(s, m, "echo", "delete_all")
		mcp.AddTool(m, &mcp.Tool{Name: "whoami"}, func(_ context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
			s.ran("whoami")
			mu.Lock()
			got = append(got, req.Extra.Header.Get("Authorization"))
			mu.Unlock()
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "you sent " + req.Extra.Header.Get("Authorization")}}}, nil, nil
		})
	})
	files.stopProxy() // the manager runs it
	auditFile := filepath.Join(t.TempDir(), "files.jsonl")
	cfg := files.cfg
	cfg.Port = 0
	cfg.Audit = proxymgr.AuditConfig{File: auditFile, Params: proxymgr.AuditParamsNone}
	cfg.Credentials = func(context.Context) (http.Header, error) {
		return http.Header{"Authorization": {"Bearer " + passToken}}, nil
	}
	m := proxymgr.NewManager(proxymgr.ManagerOptions{Logger: testLogger(t)})
	st, err := m.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = st.Port
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range got {
			if a != "Bearer "+passToken {
				t.Errorf("the server got Authorization %q; want the injected credential", a)
			}
		}
	})
	return files, m, cfg, auditFile
}

// rawCall POSTs body on session sid of g as a 2025-11-25 client and
// returns the status and the answer.
func rawCall(t *testing.T, g *Gateway, sid, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.URL(), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPassedCallsMeetTheProxysDecisions: calls that pass through as bytes
// and reach the member's proxy in process get the proxy's credential, its
// redaction, its tool policy (changed under the live session, so the
// gateway still routes the now-denied tool) and one audit record each;
// requests shaped to make the pass-through read a different tool than the
// member run nothing the proxy would refuse.
func TestPassedCallsMeetTheProxysDecisions(t *testing.T) {
	files, m, cfg, auditFile := passMember(t)
	g := startGateway(t, Config{Members: []Member{{Server: "files", URL: "http://127.0.0.1:" + strconv.Itoa(cfg.Port) + "/mcp"}}})
	cs := connect(t, g, nil)
	if names := toolNames(t, cs); !slices.Equal(names, []string{"delete_all", "echo", "whoami"}) {
		t.Fatalf("tools = %v", names)
	}
	inProcess := proxymgr.InProcessRequests()
	passed := g.passed.Load()

	// The credential is injected, and redacted from what comes back.
	if out, err := callText(t, cs, "whoami", ""); err != nil || strings.Contains(out, passToken) || !strings.Contains(out, "[REDACTED]") {
		t.Errorf("whoami = %q, %v; want the credential redacted", out, err)
	}
	if out, err := callText(t, cs, "echo", "one"); err != nil || out != "files/echo:one" {
		t.Errorf("echo = %q, %v", out, err)
	}

	// The user denies delete_* while the session lives: the gateway still
	// routes delete_all (its list is from before), the proxy refuses it.
	cfg.Policy = proxymgr.ToolPolicy{Deny: []string{"delete_*"}}
	if _, err := m.Restart(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if out, err := callText(t, cs, "delete_all", "x"); err == nil || !strings.Contains(err.Error(), "not allowed by the tool policy") {
		t.Errorf("the denied delete_all through the profile: %q, %v", out, err)
	}

	// Bodies whose fields a lenient reader could take for another tool.
	sid := cs.ID()
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":"dup-1","method":"tools/call","params":{"name":"delete_all","name":"echo","arguments":{"text":"dup"}}}`,
		`{"jsonrpc":"2.0","id":"dup-2","method":"tools/call","params":{"name":"echo","Name":"delete_all","arguments":{"text":"case"}}}`,
		`{"jsonrpc":"2.0","id":"dup-3","method":"tools/call","params":{"name":"echo","nam\u017f":"delete_all","arguments":{"text":"fold"}}}`,
		`{"jsonrpc":"2.0","id":"dup-4","method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}},"param\u017f":{"name":"delete_all"}}`,
	} {
		if status, answer := rawCall(t, g, sid, body); strings.Contains(answer, "files/delete_all") {
			t.Errorf("%s: %d %s", body, status, answer)
		}
	}

	if n := g.passed.Load() - passed; n < 4 {
		t.Errorf("%d calls passed through; want at least whoami, echo, delete_all and the first probe", n)
	}
	if proxymgr.InProcessRequests() == inProcess {
		t.Error("no request reached the member's proxy in process")
	}
	if ran := files.ranTools(); slices.Contains(ran, "delete_all") {
		t.Fatalf("the server ran delete_all: %v", ran)
	}

	// One audit record per call that reached the proxy, attributed to the
	// profile; the denied one recorded as denied.
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls := auditCalls(t, auditFile)
	seen := map[string]int{}
	var denied int
	for _, e := range calls {
		seen[string(e.ID)]++
		if !strings.HasPrefix(e.Via, "profile test; tool=") {
			t.Errorf("an audit record of %s via %q; want the profile", e.Tool, e.Via)
		}
		if e.Tool == "delete_all" && e.Outcome == audit.OutcomeDenied {
			denied++
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("request %s has %d audit records; want 1", id, n)
		}
	}
	ran := files.ranTools()
	if len(calls) != len(ran)+denied || denied < 1 {
		t.Errorf("%d tools/call records (%d denied delete_all); the server ran %v: want one record per call it ran, plus the denied ones", len(calls), denied, ran)
	}
}

// auditCalls reads the tools/call records of an audit log.
func auditCalls(t *testing.T, file string) []audit.Event {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if e.Method == "tools/call" {
			out = append(out, e)
		}
	}
	return out
}

// TestPassedCallOfAnotherUser: another OS user who learned a session id of
// the owner's profile session sends a tool call the pass-through would
// take: it is refused with 403 before anything reads it, and runs
// nothing; the same user sending it straight to the member's proxy, which
// the gateway reaches in process, is refused by that proxy's own check.
func TestPassedCallOfAnotherUser(t *testing.T) {
	peertest.RequireRoot(t)
	if s := peercred.Supported(); !s.Active {
		t.Skipf("no peer check on this system: %v", s)
	}
	files, _, cfg, _ := passMember(t)
	member := "http://127.0.0.1:" + strconv.Itoa(cfg.Port) + "/mcp"
	g := startGateway(t, Config{Members: []Member{{Server: "files", URL: member}}})
	cs := connect(t, g, nil)
	toolNames(t, cs)
	if out, err := callText(t, cs, "echo", "owner"); err != nil || out != "files/echo:owner" || g.passed.Load() != 1 {
		t.Fatalf("the owner's call: %q, %v (passed %d)", out, err, g.passed.Load())
	}
	call := `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"echo","arguments":{"text":"sent-by-uid-65534"}}}`
	hdr := map[string]string{"Mcp-Protocol-Version": "2025-11-25", "Mcp-Session-Id": cs.ID()}
	got := peertest.Do(t, peertest.Nobody,
		peertest.Request{URL: g.URL(), Header: hdr, Body: call},
		peertest.Request{URL: member, Body: call, Header: map[string]string{"Mcp-Protocol-Version": "2025-11-25"}},
	)
	if got[0].Status != http.StatusForbidden || !strings.Contains(got[0].Body, "another user") {
		t.Errorf("another user's call on the owner's profile session: %d %s", got[0].Status, got[0].Body)
	}
	if got[1].Status != http.StatusForbidden || !strings.Contains(got[1].Body, "another user") {
		t.Errorf("another user's call at the member's proxy: %d %s", got[1].Status, got[1].Body)
	}
	if n := g.passed.Load(); n != 1 {
		t.Errorf("%d calls passed through; want only the owner's", n)
	}
	if ran := files.ranTools(); !slices.Equal(ran, []string{"echo"}) {
		t.Errorf("the server ran %v; want only the owner's echo", ran)
	}
	// The owner's session is untouched.
	if out, err := callText(t, cs, "echo", "again"); err != nil || out != "files/echo:again" {
		t.Errorf("the owner's next call: %q, %v", out, err)
	}
}
