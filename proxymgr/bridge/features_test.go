package bridge_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestFeatures drives every client feature through the bridge subprocess
// against a real go-sdk server: requests, notifications both ways,
// server-to-client requests, progress, logging, cancellation, list changes
// and resource subscriptions.
func TestFeatures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		upstream upstreamOptions
		version  string // the client's protocol version; "" = the SDK's latest (2026-07-28, stateless)
	}{
		{"2025-11-25 event streams", upstreamOptions{}, "2025-11-25"},
		{"2025-11-25 JSON responses", upstreamOptions{jsonResponse: true}, "2025-11-25"},
		{"2025-06-18", upstreamOptions{}, "2025-06-18"},
		{"2026-07-28 stateless", upstreamOptions{stateless: true}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := startUpstream(t, tc.upstream)
			ev := &clientEvents{}
			cs := connect(t, bridgeCmd(t, up.url()), tc.version, ev)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			modern := tc.version == ""
			if got := cs.InitializeResult().ProtocolVersion; modern != (got == "2026-07-28") {
				t.Fatalf("negotiated protocol %s", got)
			}
			if got := cs.InitializeResult().ServerInfo; got == nil || got.Name != "upstream" {
				t.Fatalf("serverInfo %+v", got)
			}

			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range tools.Tools {
				names = append(names, tool.Name)
			}
			for _, want := range []string{"echo", "progress", "slow", "regional"} {
				if !contains(names, want) {
					t.Errorf("tools/list lacks %q: %v", want, names)
				}
			}
			if got := callText(t, cs, "echo", map[string]any{"text": "héllo\nworld"}); got != "echo: héllo\nworld" {
				t.Errorf("echo = %q", got)
			}

			prompts, err := cs.ListPrompts(ctx, nil)
			if err != nil || len(prompts.Prompts) != 1 {
				t.Fatalf("prompts/list: %v %+v", err, prompts)
			}
			p, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "greet", Arguments: map[string]string{"who": "Ada"}})
			if err != nil || p.Messages[0].Content.(*mcp.TextContent).Text != "hello Ada" {
				t.Fatalf("prompts/get: %v %+v", err, p)
			}
			res, err := cs.ListResources(ctx, nil)
			if err != nil || len(res.Resources) != 1 {
				t.Fatalf("resources/list: %v %+v", err, res)
			}
			rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///notes.txt"})
			if err != nil || rr.Contents[0].Text != "the notes" {
				t.Fatalf("resources/read: %v %+v", err, rr)
			}

			// Progress notifications travel on the request's stream.
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{
				Meta: mcp.Meta{"progressToken": "p1"}, Name: "progress", Arguments: map[string]any{},
			}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "three progress notifications", 5*time.Second, func() bool { return len(ev.snapshot().progress) == 3 })
			if got := ev.snapshot().progress; got[2] != "step 3" {
				t.Errorf("progress notifications = %q", got)
			}

			// Cancellation: the server's handler sees its context end.
			callCtx, stop := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() {
				_, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{}})
				errc <- err
			}()
			receive(t, "the slow tool to start", up.started, 10*time.Second)
			stop()
			if err := receive(t, "the cancelled call to return", errc, 10*time.Second); !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled call returned %v", err)
			}
			if modern {
				// Closing the response stream is the cancellation in
				// 2026-07-28. (go-sdk v1.8.0's stateless server does not
				// cancel the handler then, not even for its own HTTP
				// client, so the test checks the HTTP side.)
				if got := receive(t, "the bridge to close the response stream", up.hungUp, 10*time.Second); got != "slow" {
					t.Errorf("hung up on %q", got)
				}
			} else {
				receive(t, "the server to see the cancellation", up.cancelled, 10*time.Second)
			}

			if modern {
				// SEP-2243: the bridge mirrors method, name and x-mcp-header
				// arguments into headers.
				if got := callText(t, cs, "regional", map[string]any{"region": "eu-west 1 ", "query": "q"}); got != "regional ok" {
					t.Errorf("regional = %q", got)
				}
				h := up.postsFor("tools/call")
				last := h[len(h)-1]
				if last.Get("Mcp-Name") != "regional" || last.Get("Mcp-Param-Region") != "=?base64?ZXUtd2VzdCAxIA==?=" ||
					last.Get("Mcp-Protocol-Version") != "2026-07-28" {
					t.Errorf("tools/call headers: %v", last)
				}
				if len(up.seen(http.MethodGet)) != 0 {
					t.Errorf("a 2026-07-28 bridge opened a GET stream")
				}
				// List changes arrive on the long-lived subscriptions/listen
				// request the client opened when it connected.
				if len(up.postsFor("subscriptions/listen")) != 1 {
					t.Errorf("no subscriptions/listen request went through")
				}
				up.mcpServer().AddTool(&mcp.Tool{Name: "late", InputSchema: map[string]any{"type": "object"}},
					func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
						return textResult("late"), nil
					})
				waitFor(t, "notifications/tools/list_changed on the listen stream", 5*time.Second,
					func() bool { return ev.snapshot().toolsList >= 1 })
				return
			}

			// Server-to-client requests: sampling, elicitation, roots.
			if got := callText(t, cs, "sample", nil); got != "model said: hi from the model" {
				t.Errorf("sample = %q", got)
			}
			if got := callText(t, cs, "elicit", nil); got != "accept: Ada" {
				t.Errorf("elicit = %q", got)
			}
			if got := callText(t, cs, "roots", nil); got != "file:///workspace" {
				t.Errorf("roots = %q", got)
			}

			// Logging: the level the client sets filters what it receives.
			if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "warning"}); err != nil {
				t.Fatal(err)
			}
			callText(t, cs, "log", nil)
			waitFor(t, "log messages", 5*time.Second, func() bool { return len(ev.snapshot().logs) >= 2 })
			if got := ev.snapshot().logs; strings.Join(got, ",") != "warning,error" {
				t.Errorf("log messages = %q, want warning,error", got)
			}

			// Messages outside any request arrive on the GET stream: list
			// changes and resource updates.
			if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "file:///notes.txt"}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the GET stream", 5*time.Second, func() bool { return len(up.seen(http.MethodGet)) > 0 })
			time.Sleep(50 * time.Millisecond) // let the stream settle on the server
			if err := up.mcpServer().ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: "file:///notes.txt"}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "notifications/resources/updated", 5*time.Second, func() bool { return len(ev.snapshot().updated) == 1 })
			up.mcpServer().AddTool(&mcp.Tool{Name: "late", InputSchema: map[string]any{"type": "object"}},
				func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return textResult("late"), nil
				})
			waitFor(t, "notifications/tools/list_changed", 5*time.Second, func() bool { return ev.snapshot().toolsList >= 1 })
			if got := callText(t, cs, "late", nil); got != "late" {
				t.Errorf("late = %q", got)
			}
			// Initialize carries the version the client asks for; every
			// request after it the negotiated one.
			if posts := up.seen(http.MethodPost); len(posts) == 0 || posts[0].header.Get("Mcp-Protocol-Version") != tc.version {
				t.Errorf("the initialize POST lacks MCP-Protocol-Version %s", tc.version)
			}
			for _, r := range up.seen(http.MethodPost)[1:] {
				if r.header.Get("Mcp-Protocol-Version") != tc.version || r.session == "" {
					t.Errorf("a POST lacks its session or protocol version headers: %v", r.header)
					break
				}
			}
		})
	}
}

// TestVersionFallback: a client that tries 2026-07-28 first (the go-sdk
// default) against a server that only speaks the session era gets the
// server's refusal of server/discover through the bridge, falls back to
// initialize, and works.
func TestVersionFallback(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{})
	cs := connect(t, bridgeCmd(t, up.url()), "", nil)
	if got := cs.InitializeResult().ProtocolVersion; got != "2025-11-25" {
		t.Errorf("negotiated %s, want the fallback 2025-11-25", got)
	}
	if got := callText(t, cs, "echo", map[string]any{"text": "x"}); got != "echo: x" {
		t.Errorf("echo = %q", got)
	}
	if len(up.postsFor("server/discover")) == 0 {
		t.Errorf("the client did not try server/discover first; the test does not test the fallback")
	}
}
