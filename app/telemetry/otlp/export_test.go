package otlp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/catalog"
	"keyport/app/telemetry"
	"keyport/app/telemetry/telemetrytest"
	"keyport/proxymgr"
	"keyport/proxymgr/audit"
)

func testConfig(t testing.TB, endpoint, protocol string) telemetry.Config {
	dir := t.TempDir()
	return telemetry.Config{
		Settings:   &catalog.Telemetry{Endpoint: endpoint, Protocol: protocol, Resource: map[string]string{"deployment.environment": "test"}},
		AuditDir:   filepath.Join(dir, "audit"),
		StateDir:   filepath.Join(dir, "telemetry"),
		Version:    "test",
		Env:        func(string) string { return "" },
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		Delay: 20 * time.Millisecond, MetricInterval: 200 * time.Millisecond, LockRetry: 100 * time.Millisecond,
		ProxyUp: func() map[string]bool { return map[string]bool{"gh": true} },
	}
}

func startExporter(t *testing.T, cfg telemetry.Config) *telemetry.Exporter {
	t.Helper()
	e, res, err := telemetry.New(cfg)
	if err != nil || !res.Enabled {
		t.Fatalf("New: %v (%+v)", err, res)
	}
	e.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Close(ctx)
	})
	return e
}

// waitFor polls cond; the timeout only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func countIDs(logs []telemetrytest.LogRecord) map[string]int {
	ids := map[string]int{}
	for _, l := range logs {
		ids[l.Attrs[attrEventID]]++
	}
	return ids
}

// Every audit event reaches a real collector as a log record whose body
// is the audit line as written, with the MCP semantic-convention
// attributes; a request becomes a CLIENT span (a child of the client's
// trace when params._meta carried a traceparent), and the metrics arrive.
func TestExportToCollector(t *testing.T) {
	t.Parallel()
	col := telemetrytest.Start(t)
	for _, proto := range []string{catalog.ProtocolHTTP, catalog.ProtocolGRPC} {
		t.Run(proto, func(t *testing.T) {
			endpoint := col.HTTPEndpoint()
			if proto == catalog.ProtocolGRPC {
				endpoint = col.GRPCEndpoint()
			}
			cfg := testConfig(t, endpoint, proto)
			w, err := audit.Open(audit.Config{File: filepath.Join(cfg.AuditDir, "gh.jsonl"), Params: audit.ParamsRedacted}, audit.NewRedactor("s3cr3t-token"))
			if err != nil {
				t.Fatal(err)
			}
			tag := strings.ReplaceAll(proto, "/", "-")
			start := time.Now()
			w.Log(audit.Event{Time: start, Type: audit.TypeRequest, Server: "gh", Session: "sess-" + tag, Method: "tools/call", ID: json.RawMessage(`7`), Tool: "search",
				Params:     json.RawMessage(`{"name":"search","arguments":{"q":"s3cr3t-token"},"_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}`),
				DurationMS: 12.5, Outcome: audit.OutcomeOK})
			w.Log(audit.Event{Type: audit.TypeDenial, Server: "gh", Method: "tools/call", ID: json.RawMessage(`"x"`), Tool: "delete_repo", Outcome: audit.OutcomeDenied, Error: "not allowed"})
			w.Log(audit.Event{Type: audit.TypeSessionStart, Server: "gh", Session: "sess-" + tag, ClientName: "cursor"})
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(filepath.Join(cfg.AuditDir, "gh.jsonl"))
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")

			startExporter(t, cfg)
			var mine []telemetrytest.LogRecord
			waitFor(t, "three log records", func() bool {
				mine = nil
				for _, l := range col.Logs() {
					if strings.Contains(l.Body, "sess-"+tag) || (l.Attrs[attrTool] == "delete_repo" && strings.Contains(l.Body, lines[1][:40])) {
						mine = append(mine, l)
					}
				}
				return len(mine) == 3
			})
			req := mine[0]
			if req.Body != lines[0] {
				t.Errorf("body = %s\nwant the audit line %s", req.Body, lines[0])
			}
			if strings.Contains(req.Body, "s3cr3t-token") {
				t.Error("the secret reached the collector")
			}
			for k, want := range map[string]string{attrMethod: "tools/call", attrTool: "search", attrSession: "sess-" + tag, attrRequestID: "7",
				attrOperation: opExecuteTool, attrServer: "gh", attrOutcome: "ok", attrEvent: "request"} {
				if req.Attrs[k] != want {
					t.Errorf("log attribute %s = %q, want %q", k, req.Attrs[k], want)
				}
			}
			if req.Attrs[attrEventID] == "" || req.Resource["service.name"] != "keyport" || req.Resource["deployment.environment"] != "test" || req.Resource["host.name"] == "" {
				t.Errorf("event id / resource: %v %v", req.Attrs, req.Resource)
			}
			if mine[1].Attrs[attrErrorType] != "denied" {
				t.Errorf("denial: %v", mine[1].Attrs)
			}

			var spans []telemetrytest.Span
			waitFor(t, "two spans", func() bool {
				spans = nil
				for _, s := range col.Spans() {
					if s.Attrs[attrEventID] == req.Attrs[attrEventID] || s.Attrs[attrEventID] == mine[1].Attrs[attrEventID] {
						spans = append(spans, s)
					}
				}
				return len(spans) == 2
			})
			s := spans[0]
			if s.Name != "tools/call search" || s.Kind != 3 || s.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || s.ParentSpanID != "00f067aa0ba902b7" {
				t.Errorf("span = %+v", s)
			}
			if req.TraceID != s.TraceID || req.SpanID != s.SpanID {
				t.Errorf("the log record (%s/%s) is not correlated with its span (%s/%s)", req.TraceID, req.SpanID, s.TraceID, s.SpanID)
			}
			if spans[1].StatusCode != 2 || spans[1].StatusMessage != "not allowed" || spans[1].ParentSpanID != "" {
				t.Errorf("denied span = %+v", spans[1])
			}
			waitFor(t, "metrics", func() bool {
				m := col.Metrics()
				return m["keyport.requests"] >= 2 && m["keyport.denials"] >= 1 && m["mcp.client.operation.duration"] >= 2 && m["keyport.redactions"] >= 1 && m["keyport.proxy.up"] >= 1
			})
		})
	}
}

// echoUpstream is a go-sdk MCP server with an echo tool. It answers with
// JSON rather than event streams and takes the tool's arguments as they
// come (no schema inference and validation per call): the load tests
// send thousands of calls under the race detector, and what they test is
// the export.
func echoUpstream(t testing.TB) string {
	s := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: json.RawMessage(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(req.Params.Arguments)}}}, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{JSONResponse: true}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// rawSession is an MCP session over plain HTTP requests (initialize, then
// tools/call after tools/call): a load generator lighter than the go-sdk
// client, so a 10,000-call run stays short under the race detector.
type rawSession struct {
	url, id string
	hc      *http.Client
}

func (s *rawSession) post(body string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, s.url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	if s.id != "" {
		req.Header.Set("Mcp-Session-Id", s.id)
	}
	res, err := s.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s: %s", res.Status, b)
	}
	if id := res.Header.Get("Mcp-Session-Id"); id != "" {
		s.id = id
	}
	return string(b), nil
}

func newRawSession(url string) (*rawSession, error) {
	s := &rawSession{url: url, hc: &http.Client{Timeout: 30 * time.Second}}
	if _, err := s.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"load","version":"1"}}}`); err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if _, err := s.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`); err != nil {
		return nil, fmt.Errorf("initialized: %w", err)
	}
	return s, nil
}

func (s *rawSession) echo(id int, text string) error {
	out, err := s.post(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":%q}}}`, id, text))
	if err != nil {
		return err
	}
	if !strings.Contains(out, `"result"`) || !strings.Contains(out, text) {
		return fmt.Errorf("tools/call answered %s", out)
	}
	return nil
}

// The collector is killed in the middle of a 10,000-request run through a
// proxy and started again: every audit event is in its output, exactly
// once (by event id). An exporter restart and the audit log's rotation in
// the middle change nothing.
func TestCollectorKilledMidRunLosesNothing(t *testing.T) {
	t.Parallel()
	const total = 10000
	t0 := time.Now()
	col := telemetrytest.Start(t)
	cfg := testConfig(t, col.HTTPEndpoint(), catalog.ProtocolHTTP)
	cfg.Settings.Signals = []string{catalog.SignalLogs}
	p, err := proxymgr.New(proxymgr.Config{Name: "up", Upstream: echoUpstream(t),
		Audit: proxymgr.AuditConfig{File: filepath.Join(cfg.AuditDir, "up.jsonl"), MaxBytes: 512 << 10, MaxBackups: 20, Buffer: 8192}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(ctx)
	e := startExporter(t, cfg)

	const workers = 4
	var done sync.WaitGroup
	var mu sync.Mutex
	calls := 0
	var sawDown bool
	for w := range workers {
		done.Add(1)
		go func() {
			defer done.Done()
			cs, err := newRawSession(p.URL())
			if err != nil {
				t.Error(err)
				return
			}
			for i := range total / workers {
				if err := cs.echo(i+1, fmt.Sprint(w, "-", i)); err != nil {
					t.Error(err)
					return
				}
				// The events of the run happen between calls, while the
				// load goes on in the other sessions.
				mu.Lock()
				calls++
				switch calls {
				case total / 4: // the collector crashes
					col.Kill()
				case 3 * total / 8: // and comes back, once the export has failed
					for e.Status().Signals[0].LastError == "" {
						time.Sleep(10 * time.Millisecond)
					}
					sawDown = true
					col.Restart()
				case total / 2: // Keyport restarts its exporter meanwhile
					c2, cancel := context.WithTimeout(ctx, 5*time.Second)
					e.Close(c2)
					cancel()
					e = startExporter(t, cfg)
				}
				mu.Unlock()
			}
		}()
	}
	done.Wait()
	t.Logf("%s: %d calls done", time.Since(t0), total)
	if t.Failed() {
		return
	}
	if !sawDown {
		t.Fatal("the export never failed while the collector was down")
	}
	// Stopping the proxy flushes its audit log. What the audit log holds
	// (sessions start and end too):
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := p.Status().Counters.AuditDrops; d != 0 {
		t.Fatalf("the proxy dropped %d audit events", d)
	}
	want := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(cfg.AuditDir, "up.jsonl*"))
	if len(files) < 3 {
		t.Fatalf("the audit log did not rotate (%d files)", len(files))
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			var ev audit.Event
			if json.Unmarshal([]byte(l), &ev) == nil && ev.EventID != "" {
				want[ev.EventID] = true
			}
		}
	}
	if len(want) < total {
		t.Fatalf("the audit log holds %d events, want at least %d", len(want), total)
	}
	// The cursors say when everything is sent (the collector writes a
	// batch before it answers); then its output is read.
	e.Wake()
	waitFor(t, "the export to catch up", func() bool {
		st, err := telemetry.ReadStatus(cfg)
		return err == nil && len(st.Signals) == 1 && st.Signals[0].BacklogBytes == 0
	})
	var got map[string]int
	waitFor(t, fmt.Sprintf("%d events at the collector", len(want)), func() bool {
		got = countIDs(col.Logs())
		return len(got) >= len(want)
	})
	t.Logf("%s: all at the collector", time.Since(t0))
	dups := 0
	for id, n := range got {
		if !want[id] {
			t.Errorf("the collector has an event the audit log does not: %s", id)
		}
		if n > 1 {
			dups++
		}
	}
	for id := range want {
		if got[id] == 0 {
			t.Errorf("event %s never reached the collector", id)
		}
	}
	if dups > 0 {
		t.Errorf("%d events reached the collector more than once", dups)
	}
	st := e.Status().Signals[0]
	t.Logf("%d audit events, %d at the collector, %d duplicates; status %+v", len(want), len(got), dups, st)
	if st.BacklogBytes != 0 || !st.Connected {
		t.Errorf("status after catching up = %+v", st)
	}
}

// While the collector is away the status says so and the backlog grows;
// past the limit it says that too; when it returns, all arrives.
func TestStatusWhileCollectorDown(t *testing.T) {
	t.Parallel()
	col := telemetrytest.Start(t)
	col.Kill()
	cfg := testConfig(t, col.HTTPEndpoint(), catalog.ProtocolHTTP)
	cfg.Settings.Signals = []string{catalog.SignalLogs}
	cfg.Settings.BacklogLimitMB = 1
	w, err := audit.Open(audit.Config{File: filepath.Join(cfg.AuditDir, "gh.jsonl"), Buffer: 1 << 16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := range n {
		w.Log(audit.Event{Type: audit.TypeRequest, Server: "gh", Method: "tools/call", Tool: "search", Error: strings.Repeat("x", 200), Outcome: audit.OutcomeError, DurationMS: float64(i)})
	}
	w.Close()
	var changes []telemetry.Status
	var mu sync.Mutex
	e, _, err := telemetry.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.OnChange(func(s telemetry.Status) { mu.Lock(); changes = append(changes, s); mu.Unlock() })
	e.Start(context.Background())
	defer e.Close(context.Background())
	waitFor(t, "a failed export", func() bool { s := e.Status(); return len(s.Signals) == 1 && s.Signals[0].LastError != "" })
	st := e.Status().Signals[0]
	if st.Connected || !st.OverLimit || st.BacklogBytes < 1<<20 || st.BacklogEvents == 0 {
		t.Errorf("status while down = %+v", st)
	}
	rs, err := telemetry.ReadStatus(cfg)
	if err != nil || !rs.Active || rs.Signals[0].BacklogBytes != st.BacklogBytes {
		t.Errorf("ReadStatus from another process = %+v, %v", rs, err)
	}
	col.Restart()
	waitFor(t, "the export to catch up", func() bool {
		st, err := telemetry.ReadStatus(cfg)
		return err == nil && len(st.Signals) == 1 && st.Signals[0].BacklogBytes == 0
	})
	waitFor(t, "all events", func() bool { return len(countIDs(col.Logs())) == n })
	waitFor(t, "the status to recover", func() bool { s := e.Status().Signals[0]; return s.Connected && s.BacklogBytes == 0 && !s.OverLimit })
	mu.Lock()
	defer mu.Unlock()
	if len(changes) < 2 {
		t.Errorf("OnChange was told %d times, want down and up at least", len(changes))
	}
}
