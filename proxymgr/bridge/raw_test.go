package bridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr/bridge"
)

// rawBridge runs the bridge in-process and talks raw lines to it.
type rawBridge struct {
	t     *testing.T
	in    *io.PipeWriter
	lines chan string
	done  chan error
}

func startRaw(t *testing.T, cfg bridge.Config) *rawBridge {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	cfg.In, cfg.Out = inR, outW
	if cfg.RequestWait == 0 {
		cfg.RequestWait = 2 * time.Second
	}
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	r := &rawBridge{t: t, in: inW, lines: make(chan string, 100), done: make(chan error, 1)}
	go func() {
		r.done <- bridge.Run(context.Background(), cfg)
		outW.Close()
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	t.Cleanup(func() {
		inW.Close()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("the bridge did not stop after its input closed")
		}
	})
	return r
}

func (r *rawBridge) send(line string) {
	r.t.Helper()
	if _, err := io.WriteString(r.in, line+"\n"); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawBridge) recv() string {
	r.t.Helper()
	select {
	case l, ok := <-r.lines:
		if !ok {
			r.t.Fatal("the bridge closed its output")
		}
		if !json.Valid([]byte(l)) {
			r.t.Fatalf("the bridge wrote a line that is not JSON: %q", l)
		}
		return l
	case <-time.After(10 * time.Second):
		r.t.Fatal("no message from the bridge")
	}
	return ""
}

// errorOf decodes an error response.
func errorOf(t *testing.T, line string) (id string, code int, msg string) {
	t.Helper()
	var v struct {
		ID    json.RawMessage `json:"id"`
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(line), &v); err != nil || v.Error == nil {
		t.Fatalf("not an error response: %s", line)
	}
	return string(v.ID), v.Error.Code, v.Error.Message
}

const initLine = `{"jsonrpc":"2.0","id":%s,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// TestIDsForwardedExactly: whatever the server makes of an id (go-sdk reads
// 1.5 as 1 and re-encodes "\u0061" as "a"), the client gets its own bytes.
func TestIDsForwardedExactly(t *testing.T) {
	t.Parallel()
	for _, json := range []bool{false, true} {
		up := startUpstream(t, upstreamOptions{jsonResponse: json})
		r := startRaw(t, bridge.Config{URL: up.url()})
		r.send(strings.Replace(initLine, "%s", "1.50", 1))
		if got := r.recv(); !strings.HasPrefix(got, `{"jsonrpc":"2.0","id":1.50,"result":`) {
			t.Fatalf("initialize response %s", got)
		}
		r.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		for _, id := range []string{`"\u0061"`, `9007199254740993`, `"x y"`, `0`} {
			r.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/list"}`)
			if got := r.recv(); !strings.HasPrefix(got, `{"jsonrpc":"2.0","id":`+id+`,"result":{`) || !strings.Contains(got, `"tools":[`) {
				t.Errorf("json=%v: tools/list with id %s answered %.80s", json, id, got)
			}
		}
	}
}

// TestHeaderFuncError: a failing Header function answers the request with
// its text, so the user learns what to do.
func TestHeaderFuncError(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{})
	r := startRaw(t, bridge.Config{Name: "docs", URL: up.url(), Header: func(context.Context) (http.Header, error) {
		return nil, errors.New("sign in to docs in Keyport")
	}})
	r.send(strings.Replace(initLine, "%s", `"init"`, 1))
	id, code, msg := errorOf(t, r.recv())
	if id != `"init"` || code != -32603 || msg != "sign in to docs in Keyport" {
		t.Errorf("got id %s code %d message %q", id, code, msg)
	}
	if n := len(up.seen(http.MethodPost)); n != 0 {
		t.Errorf("%d requests reached the server without their headers", n)
	}
}

// TestUpstreamHTTPErrors: a hop's JSON-RPC error body is passed on as is
// (with the client's id); bare HTTP errors become messages saying what to do.
func TestUpstreamHTTPErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		body   string
		code   int
		has    []string
	}{
		{503, `{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"sign in to docs in Keyport","data":{"x":1}}}`, -32001, []string{"sign in to docs in Keyport"}},
		{401, "Unauthorized\n", -32603, []string{"docs refused the request (HTTP 401 Unauthorized", "sign in to docs in Keyport"}},
		{502, "bad gateway", -32603, []string{"docs unreachable (HTTP 502 Bad Gateway: bad gateway)"}},
		{429, "", -32603, []string{"rate limiting", "retry later"}},
		{400, "Bad Request: Unsupported protocol version", -32603, []string{`answered "initialize" with HTTP 400 Bad Request: Bad Request: Unsupported protocol version`}},
		{200, "<html>hi</html>", -32603, []string{`unexpected Content-Type`, "is http://"}},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if tc.status == 200 {
				w.Header().Set("Content-Type", "text/html")
			} else {
				w.Header().Set("Content-Type", "application/json")
			}
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		}))
		r := startRaw(t, bridge.Config{Name: "docs", URL: srv.URL + "/mcp?token=secret"})
		r.send(strings.Replace(initLine, "%s", "7", 1))
		line := r.recv()
		id, code, msg := errorOf(t, line)
		if id != "7" || code != tc.code {
			t.Errorf("HTTP %d: id %s code %d", tc.status, id, code)
		}
		for _, h := range tc.has {
			if !strings.Contains(msg, h) {
				t.Errorf("HTTP %d: message %q lacks %q", tc.status, msg, h)
			}
		}
		if strings.Contains(line, "secret") {
			t.Errorf("HTTP %d: the URL's query reached the client: %s", tc.status, line)
		}
		if tc.status == 503 && !strings.Contains(line, `"data":{"x":1}`) {
			t.Errorf("error data dropped: %s", line)
		}
		srv.Close()
	}
}

// TestUnreachableAnswered: with nothing listening, a request is answered
// with "NAME unreachable" within the request wait, never left hanging.
func TestUnreachableAnswered(t *testing.T) {
	t.Parallel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	r := startRaw(t, bridge.Config{Name: "docs", URL: "http://" + addr + "/mcp", RequestWait: 300 * time.Millisecond})
	r.send(strings.Replace(initLine, "%s", "1", 1))
	_, code, msg := errorOf(t, r.recv())
	if code != -32603 || !strings.HasPrefix(msg, "docs unreachable: ") || !strings.Contains(msg, "connection refused") {
		t.Errorf("code %d message %q", code, msg)
	}
}

// TestInvalidInput: bad lines get JSON-RPC errors and do not stop the bridge.
func TestInvalidInput(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{})
	r := startRaw(t, bridge.Config{URL: up.url(), MaxMessageSize: 4096})
	for _, tc := range []struct {
		line, id string
		code     int
	}{
		{`this is not json`, "null", -32700},
		{`{"jsonrpc":"2.0","id":1,"method":"a"`, "null", -32700},
		{`{"jsonrpc":"2.0","id":5,"method":"a","method":"b"}`, "5", -32600},
		{`{"jsonrpc":"2.0","id":6}`, "null", -32600},
		{`"just a string"`, "null", -32600},
		{`[]`, "null", -32700},
		{`{"jsonrpc":"2.0","id":1,"method":"x","params":"` + strings.Repeat("a", 5000) + `"}`, "null", -32600},
	} {
		r.send(tc.line)
		id, code, _ := errorOf(t, r.recv())
		if id != tc.id || code != tc.code {
			t.Errorf("%.40s: id %s code %d, want %s %d", tc.line, id, code, tc.id, tc.code)
		}
	}
	// Still working, and batches (from pre-2025-06-18 clients) are split.
	r.send(`[` + strings.Replace(initLine, "%s", "1", 1) + `]`)
	if got := r.recv(); !strings.Contains(got, `"serverInfo"`) {
		t.Errorf("initialize in a batch: %s", got)
	}
	r.send(`[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"tools/list"},{"jsonrpc":"2.0","id":3,"method":"prompts/list"}]`)
	got := r.recv() + r.recv()
	if !strings.Contains(got, `{"jsonrpc":"2.0","id":2,"result":{`) || !strings.Contains(got, `{"jsonrpc":"2.0","id":3,"result":{`) ||
		!strings.Contains(got, `"tools":[`) || !strings.Contains(got, `"prompts":[`) {
		t.Errorf("batch answers: %s", got)
	}
	// A request id in flight cannot be reused.
	r.send(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"slow","arguments":{}}}`)
	<-up.started
	r.send(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`)
	if id, code, msg := errorOf(t, r.recv()); id != "9" || code != -32600 || !strings.Contains(msg, "already in use") {
		t.Errorf("duplicate id: %s %d %q", id, code, msg)
	}
	close(up.releaseSlow)
	if got := r.recv(); !strings.Contains(got, "released") {
		t.Errorf("slow call: %s", got)
	}
}

// TestMultilineBodies: pretty-printed JSON from the server still reaches
// the client as one line per message.
func TestMultilineBodies(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Method == "initialize" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "{\r\n  \"jsonrpc\": \"2.0\",\n  \"id\": "+string(req.ID)+",\n  \"result\": {\n    \"protocolVersion\": \"2025-06-18\",\n\t\"serverInfo\": {\"name\": \"pretty\", \"version\": \"1\"}\n  }\n}\n")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\ndata:  \"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"a\\nb\"}}\n\n")
		io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":"+string(req.ID)+",\ndata: \"result\":{}}\n\n")
	}))
	t.Cleanup(srv.Close) // after the bridge stops (cleanups run last-in first-out)
	r := startRaw(t, bridge.Config{URL: srv.URL})
	r.send(strings.Replace(initLine, "%s", "1", 1))
	if got := r.recv(); !strings.Contains(got, `"name": "pretty"`) {
		t.Errorf("initialize: %s", got)
	}
	r.send(`{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	if got := r.recv(); !strings.Contains(got, `"data":"a\nb"`) {
		t.Errorf("notification: %s", got)
	}
	if got := r.recv(); !strings.Contains(got, `"id":2`) {
		t.Errorf("response: %s", got)
	}
}

// TestInvalidToolAnnotationsDropped: as the HTTP client, the bridge leaves
// out of tools/list the tools whose x-mcp-header annotations are invalid
// (SEP-2243), whatever the stdio client knows about them, and mirrors the
// valid ones into Mcp-Param-* headers.
func TestInvalidToolAnnotationsDropped(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var callHeaders http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		switch req.Method {
		case "tools/list":
			io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(req.ID)+`,"result":{"tools":[
				{"name":"ok","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}},
				{"name":"bad","inputSchema":{"type":"object","properties":{"n":{"type":"number","x-mcp-header":"N"}}}}]}}`)
		default:
			mu.Lock()
			callHeaders = r.Header.Clone()
			mu.Unlock()
			io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(req.ID)+`,"result":{"content":[]}}`)
		}
	}))
	t.Cleanup(srv.Close) // after the bridge stops (cleanups run last-in first-out)
	r := startRaw(t, bridge.Config{URL: srv.URL})
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	r.send(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + meta + `}}`)
	got := r.recv()
	if !strings.Contains(got, `"name":"ok"`) || strings.Contains(got, `"bad"`) {
		t.Errorf("tools/list: %s", got)
	}
	r.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ok","arguments":{"region":"eu"},` + meta + `}}`)
	r.recv()
	mu.Lock()
	defer mu.Unlock()
	if callHeaders.Get("Mcp-Param-Region") != "eu" || callHeaders.Get("Mcp-Name") != "ok" || callHeaders.Get("Mcp-Method") != "tools/call" ||
		callHeaders.Get("Mcp-Protocol-Version") != "2026-07-28" || callHeaders.Get("Mcp-Session-Id") != "" {
		t.Errorf("tools/call headers: %v", callHeaders)
	}
}

// TestConfigErrors: a bad Config is refused with what to fix.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  bridge.Config
		want string
	}{
		{bridge.Config{In: strings.NewReader(""), Out: io.Discard}, "no server URL"},
		{bridge.Config{URL: "ftp://x/y", In: strings.NewReader(""), Out: io.Discard}, "http:// or https://"},
		{bridge.Config{URL: "/relative", In: strings.NewReader(""), Out: io.Discard}, "absolute"},
		{bridge.Config{URL: "http://x/mcp"}, "In and Out"},
	} {
		err := bridge.Run(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg.URL, err, tc.want)
		}
	}
}

// TestPlainNameFallback: Mcp-Name is base64-encoded when the name is not
// plain ASCII, as the specification requires; a server that compares it
// without decoding (go-sdk v1.8.0) answers HeaderMismatch, and the bridge
// sends the request again once with the plain name, then keeps doing so.
func TestPlainNameFallback(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{stateless: true})
	up.mcpServer().AddTool(&mcp.Tool{Name: "héllo", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) { return textResult("hi"), nil })
	r := startRaw(t, bridge.Config{URL: up.url()})
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	for id := range 2 {
		r.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"h\u00e9llo","arguments":{},%s}}`, id, meta))
		if got := r.recv(); !strings.Contains(got, `"text":"hi"`) {
			t.Fatalf("call %d: %s", id, got)
		}
	}
	var names []string
	for _, h := range up.postsFor("tools/call") {
		names = append(names, h.Get("Mcp-Name"))
	}
	if strings.Join(names, ",") != "=?base64?aMOpbGxv?=,héllo,héllo" {
		t.Errorf("Mcp-Name headers sent: %q", names)
	}
}

// TestResponseOnGETStream: a server may accept a request with 202 and send
// its response on the standalone GET stream; the bridge routes it by id.
func TestResponseOnGETStream(t *testing.T) {
	t.Parallel()
	events := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			for {
				select {
				case ev := <-events:
					io.WriteString(w, "data: "+ev+"\n\n")
					w.(http.Flusher).Flush()
				case <-r.Context().Done():
					return
				}
			}
		case http.MethodDelete:
			return
		}
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		switch req.Method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "s1")
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(req.ID)+`,"result":{"protocolVersion":"2025-03-26","serverInfo":{"name":"old","version":"1"},"capabilities":{}}}`)
		case "tools/call":
			w.WriteHeader(http.StatusAccepted)
			events <- `{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":{"content":[{"type":"text","text":"via GET"}]}}`
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	t.Cleanup(srv.Close) // after the bridge stops (cleanups run last-in first-out)
	r := startRaw(t, bridge.Config{URL: srv.URL})
	r.send(fmt.Sprintf(initLine, "1"))
	r.recv()
	r.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	r.send(`{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"x","arguments":{}}}`)
	if got := r.recv(); !strings.Contains(got, `"id":"c1"`) || !strings.Contains(got, "via GET") {
		t.Errorf("response: %s", got)
	}
}
