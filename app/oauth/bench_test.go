package oauth

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// benchCredentials returns a source holding a fresh token (no network).
func benchCredentials(b *testing.B) *Credentials {
	b.Helper()
	store := NewMemoryStore()
	now := time.Now()
	rec := tokenRecord{Version: 1, Issuer: "https://as.example", Resource: "https://mcp.example/mcp",
		ServerURL: "https://mcp.example/mcp", TokenEndpoint: "https://as.example/token",
		Client: clientInfo{ID: "c", AuthMethod: "none"}, AccessToken: "at-0123456789abcdef0123456789abcdef",
		RefreshToken: "rt", Expiry: now.Add(time.Hour), ObtainedAt: now}
	if err := saveJSON(store, "demo", KindToken, rec); err != nil {
		b.Fatal(err)
	}
	c, err := NewCredentials(CredentialsConfig{Server: "demo", ResourceURL: "https://mcp.example/mcp",
		Store: store, LockDir: b.TempDir(), Logger: quietLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Header(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c
}

// sink keeps results alive so the compiler cannot drop the work.
var sink http.Header

// BenchmarkHeader measures what OAuth adds to each proxied request: the
// per-request credentials call with a fresh cached token, against the
// baseline of a static bearer header built the same way.
func BenchmarkHeader(b *testing.B) {
	ctx := context.Background()
	static := func(context.Context) (http.Header, error) {
		h := make(http.Header, 1)
		h.Set("Authorization", "Bearer at-0123456789abcdef0123456789abcdef")
		return h, nil
	}
	b.Run("baseline=static", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink, _ = static(ctx)
		}
	})
	b.Run("oauth", func(b *testing.B) {
		c := benchCredentials(b)
		b.ReportAllocs()
		for b.Loop() {
			h, err := c.Header(ctx)
			if err != nil {
				b.Fatal(err)
			}
			sink = h
		}
	})
	b.Run("baseline=static/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var h http.Header
			for pb.Next() {
				h, _ = static(ctx)
			}
			_ = h.Get("Authorization")
		})
	})
	b.Run("oauth/parallel", func(b *testing.B) {
		c := benchCredentials(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var h http.Header
			for pb.Next() {
				var err error
				if h, err = c.Header(ctx); err != nil {
					b.Error(err)
				}
			}
			_ = h.Get("Authorization")
		})
	})
}
