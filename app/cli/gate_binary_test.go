package cli_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keyport/app/internal/apptest"
)

// TestBinaryGateRefusesAmbiguousCalls drives the built keyport-cli as a
// person does — servers.yaml with a deny rule, the token stored with
// `keyport-cli secret set`, `keyport-cli proxy NAME` — and sends the
// reproduction of issue 13 (params beside param\u017f), its escaped and
// batch forms. The upstream never runs the denied tool, and the audit log
// names it as the tool the server would have run.
func TestBinaryGateRefusesAmbiguousCalls(t *testing.T) {
	t.Parallel()
	const token = "tok-gate-7d1e5b-never-leaves"
	b := apptest.NewBinary(t)
	up := apptest.NewUpstream(t, token)
	b.WriteServers(t, fmt.Sprintf(`servers:
  - name: gate-e2e
    url: %s
    auth: {type: bearer}
    tools: {deny: [delete_*]}
`, up.URL))
	if code, _, errOut := b.Run(t, token+"\n", "secret", "set", "gate-e2e"); code != 0 {
		t.Fatalf("secret set: exit %d: %s", code, errOut)
	}
	port, logs := b.StartProxy(t, "gate-e2e")
	addr := "127.0.0.1:" + port

	sid := initRaw(t, addr)
	call := func(params string) string {
		return `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":` + params + `}`
	}
	del, echo := `{"name":"delete_all","arguments":{"text":"x"}}`, `{"name":"search","arguments":{"text":"x"}}`
	fill := `,"x1":1,"x2":2,"x3":3,"x4":4`
	probes := map[string]string{
		"as reported": strings.TrimSuffix(call(del), "}") + `,"param` + "\u017f" + `":` + echo + fill + `}`,
		"escaped":     strings.TrimSuffix(call(del), "}") + `,"param\u017f":` + echo + fill + `}`,
		"five keys":   strings.TrimSuffix(call(del), "}") + `,"param` + "\u017f" + `":` + echo + `}`,
		"batch":       `[` + strings.TrimSuffix(call(del), "}") + `,"param` + "\u017f" + `":` + echo + fill + `}]`,
	}
	for name, body := range probes {
		proto := "2025-11-25"
		if name == "batch" {
			proto = "2025-03-26"
		}
		status, answer := postRaw(t, addr, sid, proto, body)
		if !strings.Contains(answer, `"code":-32600`) || strings.Contains(answer, "delete_all:") {
			t.Errorf("%s: the client got %d %s; want a -32600 refusal", name, status, answer)
		}
	}
	// The control: an allowed call through the same proxy runs.
	if _, answer := postRaw(t, addr, sid, "2025-11-25", call(echo)); !strings.Contains(answer, "search:x") {
		t.Fatalf("an allowed call did not run: %s", answer)
	}
	for _, c := range up.Called() {
		if c == "delete_all" {
			t.Fatalf("the upstream ran the denied tool; calls %v; proxy log:\n%s", up.Called(), logs.String())
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(b.ConfigDir, "audit", "gate-e2e.jsonl"))
		if n := strings.Count(string(b), `"tool":"delete_all"`); n >= len(probes) && strings.Contains(string(b), `"outcome":"rejected"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit log does not name delete_all for each refused request:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	apptest.ScanForSecret(t, token, b.Home)
}

// initRaw opens a 2025-11-25 session with raw HTTP and returns its id.
func initRaw(t *testing.T, addr string) string {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
	}
	status, _ := postRaw(t, addr, sid, "2025-11-25", `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if status != http.StatusAccepted {
		t.Fatalf("initialized: %d", status)
	}
	return sid
}

// postRaw POSTs body as written (raw TCP: no client re-encodes it).
func postRaw(t *testing.T, addr, sid, proto, body string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"+
		"Mcp-Session-Id: %s\r\nMcp-Protocol-Version: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", addr, sid, proto, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
