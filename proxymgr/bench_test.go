package proxymgr

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
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
// as an injected credential, redacted from answers (keyport-redacting). bench/proxy has the full comparison (concurrency, SSE,
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

	for _, path := range []struct{ name, url string }{
		{"direct", up.url()},
		{"bare-hop", "http://" + ln.Addr().String() + "/mcp"},
		{"keyport", kp.URL()},
		{"keyport-redacting", kpr.URL()},
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
