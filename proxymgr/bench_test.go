package proxymgr

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// benchToken is a JWT-like credential: its first bytes ("ey") are frequent
// in JSON text, so the answer redaction meets many candidates.
const benchToken = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"

// BenchmarkToolsCall measures a tools/call round trip from a go-sdk client
// to an in-process go-sdk server: directly, through a bare
// httputil.ReverseProxy, and through Keyport's proxy with a tool policy and
// the audit log on, sending a bearer token as a static header (keyport) or
// as an injected credential, redacted from answers (keyport-redacting), and
// with tool pinning (keyport-pinning). bench/proxy has the full comparison (concurrency, SSE,
// memory, alternating rounds); this one runs under `make bench`.
func BenchmarkToolsCall(b *testing.B) {
	up := newUpstream(b, false)
	target, _ := url.Parse(up.url())
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.URL.Path = target.Path },
		FlushInterval: -1,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 128, DisableCompression: true},
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	bare := &http.Server{Handler: rp}
	go bare.Serve(ln)
	b.Cleanup(func() { bare.Close() })
	kp := startProxy(b, Config{Upstream: up.url(), Policy: ToolPolicy{Deny: []string{"delete_*"}},
		Audit:   AuditConfig{File: filepath.Join(b.TempDir(), "audit.jsonl"), Params: AuditParamsRedacted},
		Headers: map[string]string{"Authorization": "Bearer " + benchToken}})
	// The same token from Config.Credentials: the proxy redacts it from
	// every answer (a static header is not secret, so kp redacts nothing).
	kpr := startProxy(b, Config{Upstream: up.url(), Policy: ToolPolicy{Deny: []string{"delete_*"}},
		Audit:       AuditConfig{File: filepath.Join(b.TempDir(), "audit.jsonl"), Params: AuditParamsRedacted},
		Credentials: bearerCreds(benchToken)})
	pinned := startProxy(b, Config{Upstream: up.url(), Policy: ToolPolicy{Deny: []string{"delete_*"}}, Pins: pinStore(b, "testsrv"),
		Audit: AuditConfig{File: filepath.Join(b.TempDir(), "audit.jsonl"), Params: AuditParamsRedacted}})

	for _, path := range []struct{ name, url string }{
		{"direct", up.url()},
		{"bare-hop", "http://" + ln.Addr().String() + "/mcp"},
		{"keyport", kp.URL()},
		{"keyport-redacting", kpr.URL()},
		{"keyport-pinning", pinned.URL()},
	} {
		b.Run(path.name, func(b *testing.B) {
			cs := connect(b, path.url, nil, "2025-11-25")
			params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "bench"}}
			ctx := ctxT(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cs.CallTool(ctx, params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkToolsCallParallel is BenchmarkToolsCall's two Keyport paths
// with 32 sessions calling at once (2 cores saturated): what the answer
// redaction costs in throughput. With -count, the paths alternate.
func BenchmarkToolsCallParallel(b *testing.B) {
	up := newUpstream(b, false)
	kp := startProxy(b, Config{Upstream: up.url(), Policy: ToolPolicy{Deny: []string{"delete_*"}},
		Audit:   AuditConfig{File: filepath.Join(b.TempDir(), "audit.jsonl"), Params: AuditParamsRedacted},
		Headers: map[string]string{"Authorization": "Bearer " + benchToken}})
	kpr := startProxy(b, Config{Upstream: up.url(), Policy: ToolPolicy{Deny: []string{"delete_*"}},
		Audit:       AuditConfig{File: filepath.Join(b.TempDir(), "audit.jsonl"), Params: AuditParamsRedacted},
		Credentials: bearerCreds(benchToken)})
	for _, path := range []struct{ name, url string }{{"keyport", kp.URL()}, {"keyport-redacting", kpr.URL()}} {
		b.Run(path.name, func(b *testing.B) {
			sessions := make(chan *mcp.ClientSession, 64)
			for range 32 {
				sessions <- connect(b, path.url, nil, "2025-11-25")
			}
			params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "bench"}}
			ctx := ctxT(b)
			b.SetParallelism(16) // 32 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				cs := <-sessions
				defer func() { sessions <- cs }()
				for pb.Next() {
					if _, err := cs.CallTool(ctx, params); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkToolsListCheck measures what the proxy itself spends on one
// tools/list answer of 500 tools (~230 KiB): the tool policy alone, and
// the policy plus tool pinning (after the first list, as on every later
// one). bench/proxy measures the whole round trip through a client.
func BenchmarkToolsListCheck(b *testing.B) {
	var tools []string
	for i := range 500 {
		tools = append(tools, fmt.Sprintf(`{"name":"lookup_%03d","description":"Tool number %d of the benchmark server: it looks things up in the %d-th collection and returns at most limit results, sorted by relevance, with their ids, titles and a short excerpt.","inputSchema":{"type":"object","properties":{"query":{"type":"string","description":"what to look for"},"limit":{"type":"integer","minimum":1,"maximum":100,"default":10},"sort":{"type":"string","enum":["relevance","date","title"]}},"required":["query"]}}`, i, i, i))
	}
	msg := []byte(`{"jsonrpc":"2.0","id":7,"result":{"tools":[` + strings.Join(tools, ",") + `]}}`)
	for _, pinned := range []bool{false, true} {
		name := "policy"
		cfg := Config{Name: "bench", Upstream: "http://127.0.0.1:1/mcp", Policy: ToolPolicy{Deny: []string{"delete_*"}}, Logger: testLogger(b)}
		if pinned {
			name = "policy+pinning"
			cfg.Pins = pinStore(b, "bench")
		}
		p, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		pr := &pendingReq{method: "tools/list", filter: true}
		if _, _, err := p.filterTools(msg, pr); err != nil { // the first list pins
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				out, removed, err := p.filterTools(msg, pr)
				if err != nil || removed != 0 || len(out) != len(msg) {
					b.Fatal(err, removed)
				}
			}
		})
	}
}
