package proxymgr

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// initSession initializes a session through the proxy with raw HTTP and
// returns its id.
func initSession(t testing.TB, url string) string {
	t.Helper()
	code, hdr, body := rawPost(t, url, nil, initBody)
	if code != 200 || hdr.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize: %d %v %s", code, hdr, body)
	}
	sid := hdr.Get("Mcp-Session-Id")
	code, _, body = rawPost(t, url, map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if code != http.StatusAccepted || body != "" {
		t.Fatalf("initialized: %d %q", code, body)
	}
	return sid
}

func TestHeadersAndBytesForwarded(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url()})
	sid := initSession(t, p.URL())
	body := "{ \"jsonrpc\":\"2.0\",\n \"id\": \"r\\u0041\", \"method\":\"tools/list\" }"
	code, hdr, resp := rawPost(t, p.URL(), map[string]string{
		"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25",
		"Mcp-Method": "tools/list", "Mcp-Name": "n", "Mcp-Param-Region": "eu",
		"X-Custom": "1", "Cookie": "local=1", "Accept-Encoding": "gzip", "Connection": "X-Hop", "X-Hop": "1",
		"Content-Type": "application/json; charset=utf-8",
	}, body)
	if code != 200 || !strings.Contains(resp, `"id":"rA"`) {
		t.Fatalf("tools/list: %d %v %s", code, hdr, resp)
	}
	var got *recorded
	for _, r := range up.recorded() {
		if bytes.Contains(r.Body, []byte(`r\u0041`)) {
			got = &r
		}
	}
	if got == nil {
		t.Fatal("the request did not reach the upstream")
	}
	if string(got.Body) != body {
		t.Errorf("body changed on the way:\n got %q\nwant %q", got.Body, body)
	}
	want := map[string]string{
		"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25", "Mcp-Method": "tools/list", "Mcp-Name": "n",
		"Mcp-Param-Region": "eu", "X-Custom": "1",
		"Accept": "application/json, text/event-stream", "Content-Type": "application/json; charset=utf-8",
	}
	for k, v := range want {
		if g := got.Header.Get(k); g != v {
			t.Errorf("upstream header %s = %q, want %q", k, g, v)
		}
	}
	for _, k := range []string{"Cookie", "X-Hop", "Accept-Encoding"} {
		if g := got.Header.Get(k); g != "" {
			t.Errorf("upstream got %s: %q; it must not be forwarded", k, g)
		}
	}
	// Last-Event-ID (stream resumption) on a GET.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL(), nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	req.Header.Set("Last-Event-ID", "0_7")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	found := false
	for _, r := range up.recorded() {
		if r.Method == http.MethodGet && r.Header.Get("Last-Event-Id") == "0_7" && r.Header.Get("Mcp-Session-Id") == sid {
			found = true
		}
	}
	if !found {
		t.Error("Last-Event-ID of a GET did not reach the upstream")
	}
}

func TestStatusCodesPassThrough(t *testing.T) {
	t.Parallel()
	stateful := newUpstream(t, false)
	stateless := newUpstream(t, true)
	pf := startProxy(t, Config{Upstream: stateful.url()})
	ps := startProxy(t, Config{Name: "sl", Upstream: stateless.url()})

	do := func(method, url string, hdr map[string]string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, url, nil)
		req.Header.Set("Accept", "text/event-stream")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	// Stateless servers answer GET with 405 and an Allow header.
	code, hdr, body := do(http.MethodGet, ps.URL(), nil)
	if code != 405 || hdr.Get("Allow") != "POST" || !strings.Contains(body, `"jsonrpc":"2.0"`) || !strings.Contains(body, "405") {
		t.Errorf("GET stateless: %d %v %s", code, hdr, body)
	}
	// A GET without a session: 400.
	code, _, body = do(http.MethodGet, pf.URL(), nil)
	if code != 400 || !strings.Contains(body, `"code":-32600`) {
		t.Errorf("GET without session: %d %s", code, body)
	}
	sid := initSession(t, pf.URL())
	// DELETE ends the session (204), after which it is unknown (404 + JSON-RPC error).
	code, _, _ = do(http.MethodDelete, pf.URL(), map[string]string{"Mcp-Session-Id": sid})
	if code != 204 {
		t.Errorf("DELETE: %d", code)
	}
	if n := pf.Status().Counters.Sessions; n != 0 {
		t.Errorf("sessions after DELETE = %d", n)
	}
	code, _, body = rawPost(t, pf.URL(), map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}, `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`)
	if code != 404 || !strings.Contains(body, `"id":5`) || !strings.Contains(body, "-32001") {
		t.Errorf("request on a deleted session: %d %s", code, body)
	}
	code, _, body = rawPost(t, pf.URL(), map[string]string{"Mcp-Session-Id": "no-such-session", "Mcp-Protocol-Version": "2025-11-25"}, `{"jsonrpc":"2.0","id":6,"method":"ping"}`)
	if code != 404 || !strings.Contains(body, `"id":6`) || !strings.Contains(body, "404 Not Found") {
		t.Errorf("unknown session: %d %s", code, body)
	}
	if n := pf.Status().Counters.Sessions; n != 0 {
		t.Errorf("an unknown session was kept: sessions = %d", n)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url(), MaxBodyBytes: 4096})
	sid := initSession(t, p.URL())
	sess := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range sess {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	before := len(up.recorded())
	tests := []struct {
		name string
		hdr  map[string]string
		body string
		code int
		want []string
	}{
		{"malformed JSON", sess, `{"jsonrpc":"2.0","id":1,`, 400, []string{`"code":-32700`, "not valid JSON"}},
		{"not UTF-8", sess, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\xff\"}", 400, []string{`"code":-32700`}},
		{"wrong content type", with(map[string]string{"Content-Type": "text/plain"}), `{}`, 415, []string{"application/json"}},
		{"no content type", with(map[string]string{"Content-Type": ""}), `{}`, 415, []string{"Content-Type"}},
		{"oversized", sess, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 5000) + `"}}`, 413, []string{"4096-byte limit"}},
		{"method twice in case", sess, `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`, 400, []string{`"code":-32600`, `\"method\" and \"Method\"`}},
		{"exact duplicate", sess, `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}`, 400, []string{`"code":-32600`, "appears twice"}},
		{"params name in case", sess, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"delete_repo"}}`, 400, []string{`"code":-32600`, "params"}},
		{"not an object", sess, `42`, 400, []string{`"code":-32600`}},
	}
	for _, tc := range tests {
		code, hdr, body := rawPost(t, p.URL(), tc.hdr, tc.body)
		if code != tc.code || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("%s: status %d (%s), want %d", tc.name, code, hdr.Get("Content-Type"), tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: body %s lacks %q", tc.name, body, w)
			}
		}
	}
	// A chunked oversized body (no Content-Length) is refused too.
	req, _ := http.NewRequest(http.MethodPost, p.URL(), io.MultiReader(strings.NewReader(`{"x":"`), strings.NewReader(strings.Repeat("b", 8000)), strings.NewReader(`"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked oversized: %d", resp.StatusCode)
	}
	if after := len(up.recorded()); after != before {
		t.Errorf("%d bad requests reached the upstream", after-before)
	}
	// A batch: the bad element is answered by the proxy, the good one by the server.
	code, _, body := rawPost(t, p.URL(), map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-03-26"},
		`[{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","id":"b","method":"x","METHOD":"y"}]`)
	if code != 200 || !strings.Contains(body, `"id":"a","result"`) || !strings.Contains(body, `"code":-32600`) {
		t.Errorf("mixed batch: %d %s", code, body)
	}
	// Still serving.
	cs := connect(t, p.URL(), nil, "")
	if _, err := cs.ListTools(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
}

// TestUpstreamGarbage: an upstream that answers HTML or garbage gives the
// client a JSON-RPC error saying so, never a page it cannot parse.
func TestUpstreamGarbage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		handle http.HandlerFunc
		code   int
		want   string
	}{
		{"html 200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>Welcome to nginx!</body></html>")
		}, 502, "answered text/html instead of JSON"},
		{"garbage json", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc": nope`)
		}, 502, "answered invalid JSON"},
		{"html 502", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, "<html>Bad Gateway</html>")
		}, 502, "answered 502 Bad Gateway: (an HTML page)"},
		{"plain 500", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "database on fire\nsecond line", 500)
		}, 500, "answered 500 Internal Server Error: database on fire"},
		{"no content type", func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			w.Write([]byte{0, 1, 2, 3})
		}, 502, "answered no Content-Type"},
		{"broken sse", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"res")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection breaks mid-event
		}, 200, "the stream broke off"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, false)
			wr := func(http.Handler) http.Handler { return tc.handle }
			up.wrap.Store(&wr)
			p := startProxy(t, Config{Upstream: up.url()})
			code, hdr, body := rawPost(t, p.URL(), nil, initBody)
			if code != tc.code || !strings.Contains(body, tc.want) || !strings.Contains(body, `"id":1`) {
				t.Fatalf("status %d (%s) body %q; want %d with %q", code, hdr.Get("Content-Type"), body, tc.code, tc.want)
			}
			if tc.name != "broken sse" && hdr.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", hdr.Get("Content-Type"))
			}
		})
	}
}

// TestUpstreamDownAndBack: clients get -32603 "NAME unreachable: why", the
// proxy stays up and reports it, and traffic resumes when the server returns.
func TestUpstreamDownAndBack(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, true)
	p := startProxy(t, Config{Upstream: up.url()})
	cs := connect(t, p.URL(), nil, "2026-07-28")
	if _, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "a"}}); err != nil {
		t.Fatal(err)
	}
	up.stop()
	_, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "b"}})
	if err == nil || !strings.Contains(err.Error(), "testsrv unreachable: connection refused") {
		t.Fatalf("call while down: %v", err)
	}
	if st := p.Status(); st.State != StateUnreachable || !strings.Contains(st.LastError, "unreachable") {
		t.Fatalf("status while down: %+v", st)
	}
	up.start()
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if resultText(t, res) != "c" || p.Status().State != StateRunning {
		t.Fatalf("after recovery: %v %+v", res, p.Status())
	}
}

// TestRecoversWithoutTraffic: the background probe notices the upstream is
// back even when no client sends anything.
func TestRecoversWithoutTraffic(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, true)
	up.stop()
	p := startProxy(t, Config{Upstream: up.url()})
	waitState(t, p, StateUnreachable)
	up.start()
	waitState(t, p, StateRunning)
}

func waitState(t testing.TB, p *Proxy, want State) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for p.Status().State != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %s, want %s (%+v)", p.Status().State, want, p.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sseReader reads SSE events from a response body.
type sseReader struct{ r *bufio.Reader }

// next returns the next event's raw text (through its blank line).
func (s sseReader) next() (string, error) {
	var b strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\n" || line == "\r\n" {
			return b.String(), nil
		}
	}
}

// TestSSEImmediateFlush: each event reaches the client while the server is
// still working. The server waits for the test to see event i before it
// sends event i+1, so a proxy that buffered would deadlock the test.
func TestSSEImmediateFlush(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	up := newUpstream(t, false)
	wr := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			for i := range 5 {
				fmt.Fprintf(w, "id: %d\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":%d}}\n\n", i, i)
				w.(http.Flusher).Flush()
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			}
		})
	}
	up.wrap.Store(&wr)
	p := startProxy(t, Config{Upstream: up.url(), Policy: ToolPolicy{Deny: []string{"x"}}})
	req, _ := http.NewRequest(http.MethodPost, p.URL(), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := sseReader{bufio.NewReader(resp.Body)}
	for i := range 5 {
		ev, err := rd.next()
		if err != nil || !strings.Contains(ev, fmt.Sprintf(`"progress":%d`, i)) {
			t.Fatalf("event %d: %q %v", i, ev, err)
		}
		gate <- struct{}{}
	}
}

// TestSSEByteForByte: ids, retry, comments, empty priming events, CRLF and
// multi-line data reach the client unchanged, with and without a tools/list
// pending (when events are held to be inspected).
func TestSSEByteForByte(t *testing.T) {
	t.Parallel()
	stream := ": comment\r\nid: 0\r\nretry: 1500\r\n\r\n" + // an empty priming event with CRLF
		"event: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\n" + "data: \"method\":\"notifications/message\"}\n\n" +
		":keepalive\n\n" +
		"id: 2\rdata: {\"jsonrpc\":\"2.0\",\"id\":99,\"result\":{}}\r\r" +
		"data\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[]}}\n\n"
	for _, tc := range []struct {
		name string
		pol  ToolPolicy
	}{{"no policy", ToolPolicy{}}, {"policy, held events", ToolPolicy{Allow: []string{"echo"}}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, false)
			wr := func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/event-stream")
					w.WriteHeader(200)
					for i := 0; i < len(stream); i += 7 { // in small, odd pieces
						io.WriteString(w, stream[i:min(i+7, len(stream))])
						w.(http.Flusher).Flush()
					}
				})
			}
			up.wrap.Store(&wr)
			p := startProxy(t, Config{Upstream: up.url(), Policy: tc.pol})
			_, hdr, body := rawPost(t, p.URL(), nil, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
			if body != stream {
				t.Fatalf("stream changed:\n got %q\nwant %q", body, stream)
			}
			if hdr.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("Content-Type %q", hdr.Get("Content-Type"))
			}
		})
	}
}

// TestHugeSSEEvent: an event larger than the inspection limit streams
// through whole; the proxy does not buffer it.
func TestHugeSSEEvent(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url(), MaxInspectBytes: 1 << 20})
	cs := connect(t, p.URL(), nil, "2025-11-25")
	for _, n := range []int{900 << 10, 3 << 20} {
		res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "big", Arguments: map[string]any{"bytes": n}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(resultText(t, res)); got != n {
			t.Fatalf("got %d bytes, want %d", got, n)
		}
	}
}

// TestClientDisconnectCancelsUpstream: when the client goes away mid-stream,
// the upstream request is cancelled.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	var mu sync.Mutex
	cancelled := 0
	wr := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			if r.Method == http.MethodPost && r.Context().Err() != nil {
				mu.Lock()
				cancelled++
				mu.Unlock()
			}
		})
	}
	up.wrap.Store(&wr)
	p := startProxy(t, Config{Upstream: up.url()})
	sid := initSession(t, p.URL())
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL(), strings.NewReader(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"block"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for up.callCount("block.started") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the tool never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	for {
		mu.Lock()
		n := cancelled
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upstream request was not cancelled when the client went away")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for p.Status().Counters.Streams != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream count did not drop")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
