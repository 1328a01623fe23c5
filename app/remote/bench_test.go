package remote

import (
	"context"
	"fmt"
	"testing"
	"time"

	"keyport/app"
)

// benchServers is a catalog of n servers as the GUI shows them.
func benchServers(n int) []app.ServerView {
	vs := make([]app.ServerView, n)
	for i := range vs {
		vs[i] = app.ServerView{Name: fmt.Sprintf("server-%02d", i), UpstreamURL: "https://mcp.example.com/mcp",
			Labels: map[string]string{"team": "infra"}, AuthType: "bearer", Enabled: true, State: app.ProxyRunning,
			Port: 41000 + i, LocalURL: fmt.Sprintf("http://127.0.0.1:%d/mcp", 41000+i),
			Credential: app.CredentialStatus{Needed: true, Set: true, Kinds: []string{"bearer"}},
			Allow:      []string{"search*"}, Counters: app.Counters{Requests: 1234, LatencyP50: 3 * time.Millisecond}}
	}
	return vs
}

// BenchmarkCall: one request and its answer over the socket, against the
// same call on the Backend directly (the in-process GUI's cost).
func BenchmarkCall(b *testing.B) {
	fb := newFake()
	tools := []string{"search", "fetch", "delete_all"}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			fb.CheckPolicy([]string{"*"}, nil, tools)
		}
	})
	b.Run("socket", func(b *testing.B) {
		_, path := served(b, fb, ServeOptions{})
		c := dialB(b, path)
		for b.Loop() {
			if _, err := c.CheckPolicy([]string{"*"}, nil, tools); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkServers: the GUI goroutine's read of 50 servers from the
// client's snapshot, against the Backend's own Servers.
func BenchmarkServers(b *testing.B) {
	fb := newFake()
	fb.servers = benchServers(50)
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			fb.Servers()
		}
	})
	b.Run("snapshot", func(b *testing.B) {
		_, path := served(b, fb, ServeOptions{})
		c := dialB(b, path)
		for b.Loop() {
			if len(c.Servers()) != 50 {
				b.Fatal("short snapshot")
			}
		}
	})
}

// BenchmarkEvent: from a change in the core to a window subscriber holding
// the event with a fresh snapshot of 50 servers.
func BenchmarkEvent(b *testing.B) {
	fb := newFake()
	servers := benchServers(50)
	_, path := served(b, fb, ServeOptions{})
	c := dialB(b, path)
	events, cancel := c.Subscribe()
	defer cancel()
	for b.Loop() {
		fb.change(servers, "", app.Event{Kind: app.EventServers})
		<-events
	}
}

func dialB(b *testing.B, path string) *Client {
	c, err := Dial(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
