package proxymgr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var testPolicy = ToolPolicy{Allow: []string{"echo", "github_*", "progress", "^d.*$"}, Deny: []string{"delete_*"}}

// TestToolPolicy: tools/list results are filtered (JSON and SSE responses,
// both protocol eras) and denied calls are answered locally with -32602,
// never reaching the server.
func TestToolPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  mcp.StreamableHTTPOptions
		proto string
	}{
		{"sse-2025-11-25", mcp.StreamableHTTPOptions{}, "2025-11-25"},
		{"json-2025-06-18", mcp.StreamableHTTPOptions{JSONResponse: true}, "2025-06-18"},
		{"stateless-sse-2026-07-28", mcp.StreamableHTTPOptions{Stateless: true}, "2026-07-28"},
		{"stateless-json-2026-07-28", mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true}, "2026-07-28"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstreamWith(t, tc.opts)
			p := startProxy(t, Config{Upstream: up.url(), Policy: testPolicy})
			cs := connect(t, p.URL(), nil, tc.proto)
			ctx := ctxT(t)
			res, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := toolNames(res)
			slices.Sort(got)
			if want := []string{"echo", "github_search", "progress"}; !slices.Equal(got, want) {
				t.Fatalf("tools/list = %v, want %v", got, want)
			}
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "github_search", Arguments: map[string]any{"text": "q"}}); err != nil {
				t.Fatal(err)
			}
			for _, denied := range []string{"delete_repo", "big", "no_such_tool"} {
				_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: denied, Arguments: map[string]any{"text": "x"}})
				var werr *jsonrpc.Error
				if !errors.As(err, &werr) || werr.Code != -32602 || !strings.Contains(err.Error(), fmt.Sprintf("tool %q is not allowed by the tool policy of server testsrv", denied)) {
					t.Errorf("call %s: %v; want a -32602 error naming the policy", denied, err)
				}
			}
			if n := up.callCount("delete_repo") + up.callCount("big"); n != 0 {
				t.Fatalf("%d denied calls reached the server", n)
			}
			for _, r := range up.recorded() {
				if strings.Contains(string(r.Body), "delete_repo") || strings.Contains(string(r.Body), `"big"`) {
					t.Fatalf("a denied call reached the server: %s", r.Body)
				}
			}
			if st := p.Status(); st.Counters.Denials != 3 {
				t.Fatalf("denials = %d, want 3", st.Counters.Denials)
			}
		})
	}
}

// TestPolicyBypassAttempts: spellings that a lenient server might read as
// tools/call of a denied tool are denied or rejected, never forwarded.
func TestPolicyBypassAttempts(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, true)
	p := startProxy(t, Config{Upstream: up.url(), Policy: testPolicy})
	hdr := map[string]string{"Mcp-Protocol-Version": "2025-11-25"}
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"delete_repo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"delete_repo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete\u005frepo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_repo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","nAme":"delete_repo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","PARAMS":{"name":"echo"},"params":{"name":"delete_repo"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo"}}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big"}}`,
	} {
		code, _, resp := rawPost(t, p.URL(), hdr, body)
		if !(code == 200 && strings.Contains(resp, "-32602")) && !(code == 400 && strings.Contains(resp, "-32600")) {
			t.Errorf("%s: %d %s; want a local denial or rejection", body, code, resp)
		}
	}
	if n := len(up.recorded()); n != 0 {
		t.Fatalf("%d bypass attempts reached the server", n)
	}
}

// TestPolicyBatch (2025-03-26 batches): a denied element is answered by the
// proxy, the rest by the server, in one response; tools/list in a batch is
// filtered too.
func TestPolicyBatch(t *testing.T) {
	t.Parallel()
	for _, jsonResp := range []bool{true, false} {
		t.Run(fmt.Sprint("json=", jsonResp), func(t *testing.T) {
			t.Parallel()
			up := newUpstreamWith(t, mcp.StreamableHTTPOptions{JSONResponse: jsonResp})
			p := startProxy(t, Config{Upstream: up.url(), Policy: testPolicy})
			sid := initSession(t, p.URL())
			code, _, body := rawPost(t, p.URL(), map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-03-26"},
				`[{"jsonrpc":"2.0","id":"l","method":"tools/list"},{"jsonrpc":"2.0","id":"d","method":"tools/call","params":{"name":"delete_repo","arguments":{}}},{"jsonrpc":"2.0","id":"e","method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}]`)
			if code != 200 {
				t.Fatalf("batch: %d %s", code, body)
			}
			for _, want := range []string{`"id":"d","error":{"code":-32602`, `"id":"e","result"`, `"name":"echo"`, `"id":"l"`} {
				if !strings.Contains(body, want) {
					t.Errorf("batch answer lacks %s: %s", want, body)
				}
			}
			if strings.Contains(body, `"name":"delete_repo"`) || strings.Contains(body, `"name":"block"`) {
				t.Errorf("tools/list in a batch was not filtered: %s", body)
			}
			if up.callCount("delete_repo") != 0 || up.callCount("echo") != 1 {
				t.Fatalf("calls: delete_repo %d echo %d", up.callCount("delete_repo"), up.callCount("echo"))
			}
		})
	}
}

// TestPolicyResponseOnAnotherStream: in 2025-11-25 a server may end the POST
// stream early and deliver the tools/list answer on the GET stream the client
// resumes with; the proxy matches it by id per session and filters it.
func TestPolicyResponseOnAnotherStream(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	listAnswer := make(chan string, 1)
	wr := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Mcp-Session-Id", "S1")
			switch r.Method {
			case http.MethodPost: // priming event, then the server closes the stream (SSE polling)
				w.WriteHeader(200)
				io.WriteString(w, "id: 1\nretry: 10\ndata:\n\n")
			case http.MethodGet:
				w.WriteHeader(200)
				io.WriteString(w, "id: 2\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"x\"}}\n\n")
				io.WriteString(w, "id: 3\ndata: "+<-listAnswer+"\n\n")
			}
		})
	}
	up.wrap.Store(&wr)
	p := startProxy(t, Config{Upstream: up.url(), Policy: testPolicy})
	hdr := map[string]string{"Mcp-Session-Id": "S1", "Mcp-Protocol-Version": "2025-11-25"}
	code, _, body := rawPost(t, p.URL(), hdr, `{"jsonrpc":"2.0","id":42,"method":"tools/list"}`)
	if code != 200 || !strings.Contains(body, "retry: 10") {
		t.Fatalf("POST: %d %q", code, body)
	}
	listAnswer <- `{"jsonrpc":"2.0","id":42.0,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"delete_repo","inputSchema":{"type":"object"}},{"inputSchema":{}}]}}`
	req, _ := http.NewRequest(http.MethodGet, p.URL(), nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "1")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := sseReader{bufio.NewReader(resp.Body)}
	ev1, _ := rd.next()
	ev2, _ := rd.next()
	if !strings.Contains(ev1, "notifications/message") {
		t.Fatalf("first event %q", ev1)
	}
	if want := "id: 3\ndata: {\"jsonrpc\":\"2.0\",\"id\":42.0,\"result\":{\"tools\":[{\"name\":\"echo\",\"inputSchema\":{\"type\":\"object\"}}]}}\n\n"; ev2 != want {
		t.Fatalf("tools/list on the GET stream:\n got %q\nwant %q", ev2, want)
	}
}

// TestToolsListChangedFilteredAgain: after a list_changed notification the
// client lists again and still sees only allowed tools.
func TestToolsListChangedFilteredAgain(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url(), Policy: ToolPolicy{Deny: []string{"*_repo", "added_*"}}})
	changed := make(chan struct{}, 4)
	cs := connect(t, p.URL(), &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} }}, "2025-11-25")
	if _, err := cs.ListTools(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	srv := up.server()
	mcp.AddTool(srv, &mcp.Tool{Name: "added_secret"}, func(context.Context, *mcp.CallToolRequest, echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{}, nil, nil
	})
	mcp.AddTool(srv, &mcp.Tool{Name: "shiny"}, func(context.Context, *mcp.CallToolRequest, echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{}, nil, nil
	})
	<-changed
	res, err := cs.ListTools(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	names := toolNames(res)
	if !slices.Contains(names, "shiny") || slices.Contains(names, "added_secret") || slices.Contains(names, "delete_repo") {
		t.Fatalf("after list_changed: %v", names)
	}
}

// TestOversizedToolsListFailsClosed: a tools/list answer too large for the
// proxy to filter (above MaxInspectBytes, in an event stream) never reaches
// the client unfiltered: it gets a JSON-RPC error saying why, the session
// goes on, and a large answer to anything else still streams through.
func TestOversizedToolsListFailsClosed(t *testing.T) {
	t.Parallel()
	srv := mcp.NewServer(&mcp.Implementation{Name: "big-lister", Version: "1"}, nil)
	long := strings.Repeat("a very long tool description ", 40) // ~1.2 KB
	for i := range 150 {
		name := fmt.Sprintf("tool_%03d", i)
		if i == 77 {
			name = "delete_everything"
		}
		mcp.AddTool(srv, &mcp.Tool{Name: name, Description: long}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Repeat("x", 200<<10)}}}, nil, nil
		})
	}
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	t.Cleanup(up.Close)
	p := startProxy(t, Config{Upstream: up.URL, MaxInspectBytes: 64 << 10, Policy: ToolPolicy{Deny: []string{"delete_*"}}})
	cs := connect(t, p.URL(), nil, "2025-11-25")
	res, err := cs.ListTools(ctxT(t), nil)
	if err == nil {
		if slices.Contains(toolNames(res), "delete_everything") {
			t.Fatal("an oversized tools/list reached the client unfiltered, with a denied tool")
		}
		t.Fatalf("an oversized tools/list was answered with %d tools; want an error", len(res.Tools))
	}
	if !strings.Contains(err.Error(), "too large for Keyport to apply the tool policy") {
		t.Errorf("error = %v", err)
	}
	// The session goes on; a large tools/call answer is not a tools/list.
	r, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "tool_001", Arguments: map[string]any{}})
	if err != nil || len(resultText(t, r)) != 200<<10 {
		t.Fatalf("a large tools/call answer after the refused list: %v", err)
	}
}
