package proxymgr

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// This file is the regression suite of the trust gate: every class of probe
// a local attacker tried against the proxy (issue 13), sent to a real proxy
// in front of a go-sdk server that records what reached it. The assertion
// is always on what the server saw — a denied tool never ran and its name
// never reached the server — not only on the status code.

// gateProbe is one attack on the gate.
type gateProbe struct {
	name   string
	method string            // HTTP method; POST when empty
	header map[string]string // added to the request ("Host" sets the Host)
	body   string            // %[1]s: the session id
	want   int               // the status the client must get
	code   string            // the JSON-RPC error code it must carry ("" : any)
	text   string            // a text the answer must hold ("" : any)
	// auditTool, when set, is the tool the audit log must name for the
	// refused request: the one the server would have run.
	auditTool string
}

// delCall and echoCall are tools/call bodies: delete_repo is denied by
// testPolicy (deny delete_*) and records a call if it ever runs.
const (
	delParams  = `{"name":"delete_repo","arguments":{"text":"all"}}`
	echoParams = `{"name":"echo","arguments":{"text":"x"}}`
)

func gateProbes() []gateProbe {
	call := func(id, params string, extra string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":` + params + extra + `}`
	}
	s, sEsc := "param\u017f", `param\u017f` // U+017F LATIN SMALL LETTER LONG S folds to s
	return []gateProbe{
		// Key folding (the critical bypass): the proxy must never read the
		// allowed tool while the server reads the denied one.
		{name: "long s, 9 members", body: call("3", delParams, `,"`+s+`":`+echoParams+`,"x1":1,"x2":2,"x3":3,"x4":4`), want: 400, code: "-32600", auditTool: "delete_repo"},
		{name: "long s, 5 members", body: call("3", delParams, `,"`+s+`":`+echoParams), want: 400, code: "-32600", auditTool: "delete_repo"},
		{name: "long s escaped", body: call("3", delParams, `,"`+sEsc+`":`+echoParams+`,"x1":1,"x2":2,"x3":3,"x4":4`), want: 400, code: "-32600", auditTool: "delete_repo"},
		{name: "long s first", body: `{"jsonrpc":"2.0","id":3,"method":"tools/call","` + s + `":` + echoParams + `,"params":` + delParams + `,"x1":1,"x2":2,"x3":3,"x4":4}`, want: 400, code: "-32600", auditTool: "delete_repo"},
		{name: "long s in a batch", header: map[string]string{"Mcp-Protocol-Version": "2025-03-26"},
			body: `[` + call("3", delParams, `,"`+s+`":`+echoParams+`,"x1":1,"x2":2,"x3":3,"x4":4`) + `]`, want: 200, code: "-32600", auditTool: "delete_repo"},
		{name: "upper-case duplicate", body: call("3", delParams, `,"PARAMS":`+echoParams), want: 400, code: "-32600", auditTool: "delete_repo"},
		{name: "NAME beside name", body: call("3", `{"name":"delete_repo","NAME":"echo","arguments":{}}`, ""), want: 400, code: "-32600", auditTool: "delete_repo"},
		{name: "exact duplicate name", body: call("3", `{"name":"echo","name":"delete_repo"}`, ""), want: 400, code: "-32600", auditTool: "delete_repo"},
		{name: "only Params", body: `{"jsonrpc":"2.0","id":3,"method":"tools/call","Params":` + delParams + `}`, want: 400, code: "-32600"},
		{name: "only Method", body: `{"jsonrpc":"2.0","id":3,"Method":"tools/call","params":` + delParams + `}`, want: 400, code: "-32600"},
		{name: "only Name", body: call("3", `{"Name":"delete_repo"}`, ""), want: 400, code: "-32600"},
		{name: "unrelated key beside name", body: call("3", `{"name":"echo","namex":1}`, ""), want: 200, code: ""}, // a control: other keys are fine
		// The tool name must be readable, or the call does not pass.
		{name: "escaped tool name", body: call("3", `{"name":"delete\u005frepo"}`, ""), want: 200, code: "-32602"},
		{name: "tool name with NUL", body: call("3", `{"name":"delete_repo\u0000"}`, ""), want: 200, code: "-32602", text: "control characters"},
		{name: "tool name with a leading space", body: call("3", `{"name":" delete_repo"}`, ""), want: 200, code: "-32602", text: "surrounding spaces"},
		{name: "denied tool in upper case", body: call("3", `{"name":"DELETE_REPO"}`, ""), want: 200, code: "-32602"},
		{name: "escaped method", body: `{"jsonrpc":"2.0","id":3,"method":"tools\/call","params":` + delParams + `}`, want: 200, code: "-32602"},
		{name: "null id", body: call("null", delParams, ""), want: 200, code: "-32602"},
		{name: "name as array", body: call("3", `{"name":["delete_repo"]}`, ""), want: 200, code: "-32602"},
		{name: "params as array", body: call("3", `["delete_repo",{}]`, ""), want: 200, code: "-32602"},
		{name: "no params", body: `{"jsonrpc":"2.0","id":3,"method":"tools/call"}`, want: 200, code: "-32602"},
		{name: "as a notification", body: `{"jsonrpc":"2.0","method":"tools/call","params":` + delParams + `}`, want: 400, code: "-32600"},
		// Standard headers a gateway may route on must match the body.
		{name: "Mcp-Name of another tool", header: map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "delete_repo"}, body: call("3", echoParams, ""), want: 400, code: "-32020"},
		{name: "Mcp-Method of another method", header: map[string]string{"Mcp-Method": "tools/list"}, body: call("3", echoParams, ""), want: 400, code: "-32020"},
		// Only POST bodies are inspected, so only POSTs may have one.
		{name: "PUT with a message", method: http.MethodPut, body: call("3", delParams, ""), want: 405, code: "-32600"},
		{name: "PATCH with a message", method: http.MethodPatch, body: call("3", delParams, ""), want: 405, code: "-32600"},
		{name: "DELETE with a message", method: http.MethodDelete, body: call("3", delParams, ""), want: 400, code: "-32600"},
		{name: "GET with a message", method: http.MethodGet, body: call("3", delParams, ""), want: 400, code: "-32600"},
		// Bodies that are not one JSON text.
		{name: "two JSON texts", body: call("3", echoParams, "") + call("4", delParams, ""), want: 400, code: "-32700"},
		{name: "trailing garbage", body: call("3", echoParams, "") + `x`, want: 400, code: "-32700"},
		{name: "byte order mark", body: "\ufeff" + call("3", delParams, ""), want: 400, code: "-32700"},
		{name: "invalid UTF-8", body: call("3", "{\"name\":\"delete_repo\xff\"}", ""), want: 400, code: "-32700"},
		{name: "text/plain", header: map[string]string{"Content-Type": "text/plain"}, body: call("3", delParams, ""), want: 415, code: "-32600"},
		{name: "too large", body: call("3", `{"name":"delete_repo","arguments":{"text":"`+strings.Repeat("a", 5000)+`"}}`, ""), want: 413, code: "-32600"},
		// Host and Origin (DNS rebinding, browsers).
		{name: "two Origins", header: map[string]string{"Origin": "http://localhost", "Origin2": "http://evil.example.com"}, body: call("3", echoParams, ""), want: 403, code: "-32600"},
		{name: "two Hosts", header: map[string]string{"Host2": "evil.example.com"}, body: call("3", echoParams, ""), want: 400}, // net/http refuses it before the proxy
		{name: "foreign Origin", header: map[string]string{"Origin": "http://evil.example.com"}, body: call("3", echoParams, ""), want: 403, code: "-32600"},
		{name: "foreign Host", header: map[string]string{"Host": "evil.example.com"}, body: call("3", echoParams, ""), want: 403, code: "-32600"},
	}
}

// TestGateProbes sends every probe through a real proxy in front of a
// recording go-sdk server (a 2025-11-25 session, JSON answers) and checks
// what the server saw and what the client and the audit log got.
func TestGateProbes(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	auditFile := filepath.Join(t.TempDir(), "audit.jsonl")
	p := startProxy(t, Config{Upstream: up.url(), Policy: testPolicy, Audit: AuditConfig{File: auditFile}, MaxBodyBytes: 4096})
	sid := initSession(t, p.URL())
	for _, pr := range gateProbes() {
		before := len(up.recorded())
		status, body := sendProbe(t, p, sid, pr)
		if status != pr.want || (pr.code != "" && !strings.Contains(body, `"code":`+pr.code)) || !strings.Contains(body, pr.text) {
			t.Errorf("%s: got %d %.300s; want %d with code %s", pr.name, status, body, pr.want, pr.code)
		}
		for _, r := range up.recorded()[before:] {
			if strings.Contains(string(r.Body), "delete_repo") || (pr.want >= 400 && strings.Contains(string(r.Body), `"echo"`)) {
				t.Errorf("%s: the request reached the server: %s", pr.name, r.Body)
			}
		}
	}
	if n := up.callCount("delete_repo"); n != 0 {
		t.Fatalf("the denied tool ran %d times", n)
	}
	// The control: an allowed call does reach the server through the same
	// path, so the checks above could fail.
	if status, body := sendProbe(t, p, sid, gateProbe{body: `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":` + echoParams + `}`}); status != 200 || up.callCount("echo") == 0 {
		t.Fatalf("an allowed call did not run: %d %s", status, body)
	}
	shutdown(t, p)
	entries := readAudit(t, auditFile)
	for _, pr := range gateProbes() {
		if pr.auditTool == "" {
			continue
		}
		found := false
		for _, e := range entries {
			if e["outcome"] == "rejected" && e["tool"] == pr.auditTool && strings.Contains(fmt.Sprint(e["error"]), "invalid request") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no audit event names %s as refused; the audit log:\n%v", pr.name, pr.auditTool, entries)
		}
	}
}

// sendProbe sends one probe on a fresh connection, over raw TCP so that
// duplicate headers and odd methods reach the proxy as written.
func sendProbe(t *testing.T, p *Proxy, sid string, pr gateProbe) (int, string) {
	t.Helper()
	method := pr.method
	if method == "" {
		method = http.MethodPost
	}
	var req strings.Builder
	fmt.Fprintf(&req, "%s /mcp HTTP/1.1\r\n", method)
	host := p.Addr()
	if h, ok := pr.header["Host"]; ok {
		host = h
	}
	fmt.Fprintf(&req, "Host: %s\r\n", host)
	hdr := map[string]string{
		"Content-Type":         "application/json",
		"Accept":               "application/json, text/event-stream",
		"Mcp-Session-Id":       sid,
		"Mcp-Protocol-Version": "2025-11-25",
	}
	for k, v := range pr.header {
		hdr[k] = v
	}
	for k, v := range hdr {
		switch k {
		case "Host":
		case "Origin2":
			fmt.Fprintf(&req, "Origin: %s\r\n", v)
		case "Host2":
			fmt.Fprintf(&req, "Host: %s\r\n", v)
		default:
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprintf(&req, "Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(pr.body), pr.body)
	return rawExchange(t, p.Addr(), req.String())
}

// rawExchange writes a raw HTTP/1.1 request and reads the first response.
func rawExchange(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() { _, _ = io.WriteString(c, req) }() // the proxy may answer 413 before reading it all
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestGateSmuggling: request framings that could hide a second message from
// the gate. Whatever net/http makes of them, the server never runs the
// denied tool and never sees its name.
func TestGateSmuggling(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url(), Policy: testPolicy})
	sid := initSession(t, p.URL())
	hidden := `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":` + delParams + `}`
	echo := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":` + echoParams + `}`
	head := "POST /mcp HTTP/1.1\r\nHost: " + p.Addr() + "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: " + sid + "\r\nMcp-Protocol-Version: 2025-11-25\r\nConnection: close\r\n"
	for name, req := range map[string]string{
		"CL and TE": head + fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n%s", len(echo), len(echo), echo, hidden),
		"two CLs":   head + fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s%s", len(echo), len(echo)+len(hidden), echo, hidden),
		"TE gzip":   head + fmt.Sprintf("Transfer-Encoding: gzip, chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(hidden), hidden),
		"short CL":  head + fmt.Sprintf("Content-Length: %d\r\n\r\n%s%s", len(echo), echo, hidden),
		"LF only":   strings.ReplaceAll(head, "\r\n", "\n") + fmt.Sprintf("Content-Length: %d\n\n%s", len(hidden), hidden),
	} {
		// The answers vary (400, or 200 for the echo, then a denial of the
		// pipelined rest); only what reached the server matters.
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, req)
		_, _ = io.ReadAll(c)
		c.Close()
		for _, r := range up.recorded() {
			if strings.Contains(string(r.Body), "delete_repo") {
				t.Errorf("%s: the hidden call reached the server: %s", name, r.Body)
			}
		}
	}
	if n := up.callCount("delete_repo"); n != 0 {
		t.Fatalf("the denied tool ran %d times", n)
	}
}

// TestGateAmbiguousToolsList: the server is not trusted either. A tools/list
// answer the proxy cannot read one way only (keys equal up to case) is
// replaced by an error, so the client never reads tools the policy could
// not filter; JSON and SSE answers alike.
func TestGateAmbiguousToolsList(t *testing.T) {
	t.Parallel()
	answers := []string{
		`{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]},"Result":{"tools":[{"name":"delete_repo","inputSchema":{"type":"object"}}]}}`,
		`{"jsonrpc":"2.0","ID":7,"id":7,"result":{"tools":[{"name":"delete_repo","inputSchema":{"type":"object"}}]}}`,
		`{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"delete_repo","inputSchema":{"type":"object"}}],"TOOLS":[]}}`,
	}
	for _, sse := range []bool{false, true} {
		for i, answer := range answers {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if sse {
					w.Header().Set("Content-Type", "text/event-stream")
					fmt.Fprintf(w, "event: message\ndata: %s\n\n", answer)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, answer)
			}))
			t.Cleanup(srv.Close)
			p := startProxy(t, Config{Upstream: srv.URL, Policy: testPolicy})
			code, _, body := rawPost(t, p.URL(), map[string]string{"Mcp-Protocol-Version": "2025-11-25"}, `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)
			if code != 200 || strings.Contains(body, "delete_repo") || !strings.Contains(body, "-32603") {
				t.Errorf("answer %d (sse=%v): the client got %d %s; want an error instead of the tools", i, sse, code, body)
			}
		}
	}
}
