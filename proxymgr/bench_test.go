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

// BenchmarkToolsCall measures a tools/call round trip from a go-sdk client
// to an in-process go-sdk server: directly, through a bare
// httputil.ReverseProxy, and through Keyport's proxy with a tool policy and
// the audit log on. bench/proxy has the full comparison (concurrency, SSE,
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
		Audit: AuditConfig{File: filepath.Join(b.TempDir(), "audit.jsonl"), Params: AuditParamsRedacted}})

	for _, path := range []struct{ name, url string }{
		{"direct", up.url()},
		{"bare-hop", "http://" + ln.Addr().String() + "/mcp"},
		{"keyport", kp.URL()},
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
