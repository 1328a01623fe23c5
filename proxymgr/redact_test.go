package proxymgr

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// echoToken is the credential the tests inject: it has bytes JSON and URL
// encoders escape (/ + =), so every spelling differs.
const echoToken = "kp-test-S3cr3t/T0ken+Value=42"

func bearerCreds(tok string) CredentialsFunc {
	return func(context.Context) (http.Header, error) {
		return http.Header{"Authorization": {"Bearer " + tok}}, nil
	}
}

// spellingsOf are the ways a server may write tok: as is, JSON-escaped
// (with and without \/, every byte as \u00XX), percent-encoded.
func spellingsOf(tok string) []string {
	b, _ := json.Marshal(tok)
	j := string(b[1 : len(b)-1])
	var u, pct strings.Builder
	for i := 0; i < len(tok); i++ {
		fmt.Fprintf(&u, `\u%04x`, tok[i])
		fmt.Fprintf(&pct, "%%%02x", tok[i])
	}
	return []string{tok, j, strings.ReplaceAll(j, "/", `\/`), u.String(), url.QueryEscape(tok), url.PathEscape(tok), pct.String()}
}

// leak returns the spelling of tok found in b, or "".
func leak(b []byte, tok string) string {
	for _, s := range spellingsOf(tok) {
		if bytes.Contains(b, []byte(s)) {
			return s
		}
	}
	// Also the text a client decodes: JSON strings anywhere in b.
	var v any
	if json.Unmarshal(b, &v) == nil && strings.Contains(fmt.Sprint(v), tok) {
		return "(decoded JSON)"
	}
	return ""
}

// checkAudit reads the audit log (after the proxy stopped) and fails if
// any spelling of tok is in it.
func checkAudit(t *testing.T, path, tok string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if s := leak(line, tok); s != "" {
			t.Errorf("the audit log holds the token (%q): %s", s, line)
		}
	}
}

// TestEchoedCredentialNeverReachesClient: an upstream that quotes the
// Authorization header it received — in an error page, a JSON result, an
// event stream split anywhere, escaped or percent-encoded — never gets it
// to the client, whose answer stays valid JSON or SSE.
func TestEchoedCredentialNeverReachesClient(t *testing.T) {
	t.Parallel()
	auth := func(r *http.Request) string { return r.Header.Get("Authorization") }
	jsonForms := func(r *http.Request) string {
		a := auth(r)
		b, _ := json.Marshal(a)
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"result":{"raw":%s,"slashes":"%s","u":"%s","query":"?t=%s"}}`,
			b, strings.ReplaceAll(string(b[1:len(b)-1]), "/", `\/`), spellingsOf(a)[3], url.QueryEscape(a))
	}
	tests := []struct {
		name   string
		method string
		handle http.HandlerFunc
		status int
		want   string // in the client's body
		sse    bool
	}{
		{"plain 500", "POST", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream saw "+auth(r), 500)
		}, 500, `"code":-32603,"message":"testsrv answered 500 Internal Server Error: upstream saw [REDACTED]"`, false},
		{"plain 403", "POST", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "forbidden for Authorization: "+auth(r)+" (debug)", 403)
		}, 403, `"code":-32600,"message":"testsrv answered 403 Forbidden: forbidden for Authorization: [REDACTED] (debug)"`, false},
		{"403 percent-encoded", "POST", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "denied https://gw/check?auth="+url.QueryEscape(auth(r)), 403)
		}, 403, `denied https://gw/check?auth=[REDACTED]`, false},
		{"invalid JSON 500", "POST", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(500)
			fmt.Fprintf(w, `{"error": "bad token %s"`, auth(r))
		}, 500, `bad token [REDACTED]`, false},
		{"JSON result, escaped", "POST", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, jsonForms(r))
		}, 200, `"raw":"[REDACTED]","slashes":"[REDACTED]","u":"[REDACTED]","query":"?t=[REDACTED]"`, false},
		{"SSE split across reads and events", "POST", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			a := auth(r)
			b, _ := json.Marshal(a)
			stream := fmt.Sprintf("id: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":%s}}\n\n", b) +
				fmt.Sprintf("id: 2\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":\"%s\"}}\n\n", spellingsOf(a)[3]) +
				"id: 3\ndata: " + jsonForms(r) + "\n\n"
			for i := 0; i < len(stream); i += 5 { // every token is split across reads
				io.WriteString(w, stream[i:min(i+5, len(stream))])
				w.(http.Flusher).Flush()
			}
		}, 200, `"params":{"data":"[REDACTED]"}`, true},
		{"DELETE text body", "DELETE", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "session closed for "+auth(r))
		}, 200, "session closed for [REDACTED]", false},
		{"echoed in headers, JSON", "POST", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Debug-Auth", auth(r))
			w.Header().Set("Link", "<https://gw/check?auth="+url.QueryEscape(auth(r))+">; rel=help")
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
		}, 200, `"result":{}`, false},
		{"echoed in headers, SSE", "POST", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Debug-Auth", "received "+auth(r))
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			io.WriteString(w, "id: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")
		}, 200, `"result":{}`, true},
		{"JSON too large to inspect", "POST", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			pad := strings.Repeat("x", 16<<10-7)
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":1,"result":{"a":"%s%s","b":"%s%s","c":"%s%s"}}`, pad, auth(r), pad, auth(r), pad+pad+pad+pad, auth(r))
		}, 200, `x[REDACTED]"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, false)
			wr := func(http.Handler) http.Handler { return tc.handle }
			up.wrap.Store(&wr)
			auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
			p := startProxy(t, Config{Upstream: up.url(), Credentials: bearerCreds(echoToken), MaxInspectBytes: 64 << 10,
				Audit: AuditConfig{File: auditPath, Params: AuditParamsFull}})
			var reqBody io.Reader
			if tc.method == http.MethodPost { // only POSTs may carry a body (gate.go)
				reqBody = strings.NewReader(initBody)
			}
			req, _ := http.NewRequest(tc.method, p.URL(), reqBody)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("reading the answer: %v (a Content-Length that does not fit the body?)", err)
			}
			if got := up.recorded(); len(got) == 0 || got[0].Header.Get("Authorization") != "Bearer "+echoToken {
				t.Fatal("the upstream did not get the token: the test proves nothing")
			}
			if s := leak(body, echoToken); s != "" {
				t.Fatalf("the client got the token (%q):\n%s", s, short(body))
			}
			for k, vs := range resp.Header {
				for _, v := range vs {
					if s := leak([]byte(v), echoToken); s != "" {
						t.Fatalf("the client got the token in its %s header (%q): %q", k, s, v)
					}
				}
			}
			if v := resp.Header.Get("X-Debug-Auth"); v != "" && !strings.Contains(v, "[REDACTED]") {
				t.Errorf("X-Debug-Auth = %q, want the value with [REDACTED]", v)
			}
			if resp.StatusCode != tc.status || !bytes.Contains(body, []byte(tc.want)) {
				t.Fatalf("status %d, body:\n%s\nwant %d with %s", resp.StatusCode, short(body), tc.status, tc.want)
			}
			switch {
			case tc.sse:
				events := 0
				for _, ev := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
					data, ok := strings.CutPrefix(ev[strings.Index(ev, "data: "):], "data: ")
					if !ok || !json.Valid([]byte(data)) {
						t.Errorf("event is not valid JSON: %q", ev)
					}
					events++
				}
				want := 3
				if strings.HasPrefix(tc.name, "echoed in headers") {
					want = 1 // the token is in a header; the stream is one answer
				}
				if events != want {
					t.Errorf("%d events, want %d", events, want)
				}
			case resp.Header.Get("Content-Type") == "application/json":
				if !json.Valid(body) {
					t.Errorf("invalid JSON: %s", body)
				}
			}
			if n := p.Status().Counters.Redactions; n == 0 {
				t.Error("Counters.Redactions = 0")
			}
			shutdown(t, p)
			checkAudit(t, auditPath, echoToken)
		})
	}
}

// short is b without the middle of a long body.
func short(b []byte) string {
	if len(b) <= 2000 {
		return string(b)
	}
	return fmt.Sprintf("%s … (%d bytes) … %s", b[:1000], len(b)-2000, b[len(b)-1000:])
}

type tokenIn struct{}

// newEchoingMCPServer is a go-sdk server whose tool "whoami" answers with
// the Authorization header it received (a misconfigured debug tool) and
// reports it in a progress notification first.
func newEchoingMCPServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "echoing", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "shows the request's Authorization"}, func(ctx context.Context, req *mcp.CallToolRequest, _ tokenIn) (*mcp.CallToolResult, any, error) {
		a := req.Extra.Header.Get("Authorization")
		if tok := req.Params.GetProgressToken(); tok != nil {
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Message: "checking " + a})
		}
		return &mcp.CallToolResult{
			Content:           []mcp.Content{&mcp.TextContent{Text: "you sent " + a}},
			StructuredContent: map[string]any{"authorization": a, "escaped": strings.ReplaceAll(a, "/", `\/`)},
		}, nil, nil
	})
	return s
}

// recordingRT keeps every byte of the answers the client reads.
type recordingRT struct {
	mu  sync.Mutex
	got bytes.Buffer
}

func (rt *recordingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &teeBody{resp.Body, rt}
	return resp, nil
}

func (rt *recordingRT) bytes() []byte {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return bytes.Clone(rt.got.Bytes())
}

type teeBody struct {
	io.ReadCloser
	rt *recordingRT
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.rt.mu.Lock()
	b.rt.got.Write(p[:n])
	b.rt.mu.Unlock()
	return n, err
}

// TestToolEchoingCredential: a go-sdk server's tool returns the
// Authorization header it saw, in a progress notification and its result
// (text and structured), as an event stream and as JSON. A go-sdk client
// through the proxy gets valid answers with the token replaced; no byte it
// read holds the token, nor does the audit log.
func TestToolEchoingCredential(t *testing.T) {
	t.Parallel()
	for _, jsonResp := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", jsonResp), func(t *testing.T) {
			t.Parallel()
			srv := newEchoingMCPServer()
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hs := &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{JSONResponse: jsonResp})}
			go hs.Serve(ln)
			t.Cleanup(func() { hs.Close() })
			auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
			p := startProxy(t, Config{Upstream: "http://" + ln.Addr().String() + "/mcp", Credentials: bearerCreds(echoToken),
				Audit: AuditConfig{File: auditPath, Params: AuditParamsFull, LogList: true}})

			rec := &recordingRT{}
			var progress atomic.Value
			c := mcp.NewClient(&mcp.Implementation{Name: "victim", Version: "1"}, &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
					progress.Store(req.Params.Message)
				},
			})
			cs, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{Endpoint: p.URL(), HTTPClient: &http.Client{Transport: rec}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			params := &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}}
			params.SetProgressToken("p1")
			res, err := cs.CallTool(ctxT(t), params)
			if err != nil {
				t.Fatalf("the client could not parse the answer: %v", err)
			}
			if got := resultText(t, res); got != "you sent [REDACTED]" {
				t.Errorf("result text %q", got)
			}
			sc, _ := json.Marshal(res.StructuredContent)
			if string(sc) != `{"authorization":"[REDACTED]","escaped":"[REDACTED]"}` {
				t.Errorf("structured content %s", sc)
			}
			if !jsonResp { // notifications are handled asynchronously
				deadline := time.Now().Add(10 * time.Second)
				for progress.Load() == nil && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				if m, _ := progress.Load().(string); m != "checking [REDACTED]" {
					t.Errorf("progress message %q", m)
				}
			}
			cs.Close()
			if s := leak(rec.bytes(), echoToken); s != "" {
				t.Fatalf("the client read the token (%q):\n%s", s, rec.bytes())
			}
			if !bytes.Contains(rec.bytes(), []byte("[REDACTED]")) {
				t.Fatal("the recorded answers show no redaction: the test proves nothing")
			}
			shutdown(t, p)
			checkAudit(t, auditPath, echoToken)
		})
	}
}

// TestRedactionNeverDelaysAnEvent: an event whose bytes end with the
// beginning of the token (split across reads) still reaches the client as
// soon as it is complete. The server waits for the client to see each
// event before it sends the next, so a held event would deadlock.
func TestRedactionNeverDelaysAnEvent(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	up := newUpstream(t, false)
	wr := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			a := r.Header.Get("Authorization")
			for i := range 4 {
				// A prefix of the token ends the data, and the reads split it.
				ev := fmt.Sprintf("id: %d\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":%d,\"message\":\"%s\"}}\n\n", i, i, a[:len(a)-i-1])
				cut := strings.Index(ev, "kp-test") + 4
				io.WriteString(w, ev[:cut])
				w.(http.Flusher).Flush()
				io.WriteString(w, ev[cut:])
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
	p := startProxy(t, Config{Upstream: up.url(), Credentials: bearerCreds(echoToken)})
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, p.URL(), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := sseReader{bufio.NewReader(resp.Body)}
	for i := range 4 {
		ev, err := rd.next()
		if err != nil || !strings.Contains(ev, fmt.Sprintf(`"progress":%d`, i)) {
			t.Fatalf("event %d: %q %v", i, ev, err)
		}
		if !strings.Contains(ev, echoToken[:len(echoToken)-i-1]+`"}}`) {
			t.Fatalf("event %d changed although it holds no whole token: %q", i, ev)
		}
		gate <- struct{}{}
	}
}

// TestRefreshedTokenStaysRedacted: after the credential changes (an OAuth
// refresh, a restart with a new secret), a server echoing the old token
// later is still redacted.
func TestRefreshedTokenStaysRedacted(t *testing.T) {
	t.Parallel()
	const oldTok, newTok, newest = "old-token-generation-1", "new-token-generation-2", "newest-token-generation-3"
	var first atomic.Value
	up := newUpstream(t, false)
	wr := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			first.CompareAndSwap(nil, r.Header.Get("Authorization"))
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":1,"result":{"cached":%q,"now":%q}}`, first.Load(), r.Header.Get("Authorization"))
		})
	}
	up.wrap.Store(&wr)
	var calls atomic.Int32
	m := NewManager(ManagerOptions{Logger: testLogger(t)})
	t.Cleanup(func() { m.Close(context.Background()) })
	cfg := Config{Name: "refresh", Upstream: up.url(), Credentials: func(context.Context) (http.Header, error) {
		if calls.Add(1) == 1 {
			return http.Header{"Authorization": {"Bearer " + oldTok}}, nil
		}
		return http.Header{"Authorization": {"Bearer " + newTok}}, nil
	}}
	st, err := m.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	check := func(want int) {
		t.Helper()
		_, _, body := rawPost(t, st.URL, nil, initBody)
		for _, tok := range []string{oldTok, newTok, newest} {
			if s := leak([]byte(body), tok); s != "" {
				t.Fatalf("the client got %s: %s", tok, body)
			}
		}
		if strings.Count(body, "[REDACTED]") != want {
			t.Fatalf("body %s: want %d redactions", body, want)
		}
	}
	check(2) // the old token, echoed as it was injected
	check(2) // refreshed: the server echoes the old one from its cache
	// A restart with a new credential (servers.yaml edited) hands the
	// socket over: the successor still knows the old values.
	cfg.Port = st.Port
	cfg.Credentials = bearerCreds(newest)
	if _, err := m.Restart(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	check(2)
	if st, _ := m.Status("refresh"); st.Counters.Redactions != 6 {
		t.Errorf("Counters.Redactions = %d, want 6 (carried over the restart)", st.Counters.Redactions)
	}
}

// TestProxyErrorTextsRedacted: the proxy's own error texts pass the same
// stage: a credentials function whose error quotes a secret (here the
// local token) does not get it to the client.
func TestProxyErrorTextsRedacted(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url(), LocalToken: "local-token-0123456789",
		Credentials: func(context.Context) (http.Header, error) {
			return nil, fmt.Errorf("the credential helper said: %s", "local-token-0123456789")
		}})
	_, _, body := rawPost(t, p.URL(), map[string]string{"Authorization": "Bearer local-token-0123456789"}, initBody)
	if strings.Contains(body, "local-token-0123456789") || !strings.Contains(body, "the credential helper said: [REDACTED]") {
		t.Fatalf("body %s", body)
	}
}

// TestRedactionWarning: a redaction is logged as a warning naming the
// server, never the value, at most once a minute however many follow.
func TestRedactionWarning(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	wr := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "saw "+r.Header.Get("Authorization"), 500)
		})
	}
	up.wrap.Store(&wr)
	var logs lockedBuffer
	p := startProxy(t, Config{Name: "echoer", Upstream: up.url(), Credentials: bearerCreds(echoToken),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 3 {
		rawPost(t, p.URL(), nil, initBody)
	}
	out := logs.String()
	if n := strings.Count(out, "Keyport removed it"); n != 1 {
		t.Errorf("%d redaction warnings, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "server=echoer") || leak([]byte(out), echoToken) != "" {
		t.Errorf("the warning must name the server and not the value:\n%s", out)
	}
	if n := p.Status().Counters.Redactions; n != 3 {
		t.Errorf("Counters.Redactions = %d, want 3", n)
	}
}
