package redact

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// benchText is an SSE stream of JSON-RPC progress notifications and tool
// results: text full of 'e' (the first byte of a JWT), quotes and
// escapes, without the secret.
func benchText() []byte {
	var b strings.Builder
	for i := 0; b.Len() < 64<<10; i++ {
		fmt.Fprintf(&b, "id: %d\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"t\",\"progress\":%d,\"message\":\"fetched page %d of the results \\\"here\\\"\"}}\n\n", i, i, i)
	}
	return []byte(b.String())
}

const jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"

// BenchmarkWriter streams 64 KiB in 512-byte writes (about one SSE event
// each) through a Writer: with no secret (the pass-through every proxy
// without credentials pays), one JWT-like token, and four secrets; "copy"
// is the same writes without a Writer.
func BenchmarkWriter(b *testing.B) {
	text := benchText()
	cases := []struct {
		name string
		src  Source
	}{
		{"copy", nil},
		{"none", (*Matcher)(nil)},
		{"jwt", Compile(Forms("Bearer " + jwt)...)},
		{"rare", Compile("ZZZZ-not-in-the-text")},
		{"four", Compile(jwt, "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "sk-live-0123456789abcdef", "AKIAIOSFODNN7EXAMPLE")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			var dst io.Writer = io.Discard
			var w *Writer
			if c.src != nil {
				w = NewWriter(io.Discard, c.src)
				dst = w
			}
			for b.Loop() {
				for rest := text; len(rest) > 0; {
					n := min(512, len(rest))
					dst.Write(rest[:n])
					rest = rest[n:]
				}
				if w != nil {
					w.Close()
				}
			}
		})
	}
}

// BenchmarkSetAdd is the per-request cost of registering the credential
// the proxy injects (known after the first request).
func BenchmarkSetAdd(b *testing.B) {
	s := NewSet()
	v := "Bearer " + jwt
	s.Add(v)
	for b.Loop() {
		s.Add(v)
	}
}
