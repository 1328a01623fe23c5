package gateway

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// featureClient connects a 2025-era go-sdk client that answers sampling,
// elicitation and roots and records what the profile sends it in got.
func featureClient(t *testing.T, g *Gateway, got *clientLog) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "the client's answer to " + req.Params.Messages[0].Content.(*mcp.TextContent).Text}}, nil
		},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			got.add(func(l *clientLog) {
				l.progress = append(l.progress, fmt.Sprint(req.Params.ProgressToken, " ", req.Params.Message))
			})
		},
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			got.add(func(l *clientLog) { l.logs = append(l.logs, fmt.Sprint(req.Params.Data)) })
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			got.add(func(l *clientLog) { l.changed++ })
		},
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			got.add(func(l *clientLog) { l.updated = append(l.updated, req.Params.URI) })
		},
	})
	c.AddRoots(&mcp.Root{URI: "file:///work/project"})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: g.URL()}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// checkCallFeatures drives what a tool call's stream can carry through a
// profile of featureServers "one" and "two" (tools listed already):
// progress under the client's token, log messages, sampling, elicitation
// and roots answered by the client, and cancellation reaching the member.
// passed says whether each call must pass through as bytes or take the
// go-sdk path.
func checkCallFeatures(t *testing.T, g *Gateway, cs *mcp.ClientSession, got *clientLog, cancelled <-chan string, passed bool) {
	t.Helper()
	ctx := context.Background()
	path := func(what string, call func()) {
		t.Helper()
		before := g.passed.Load()
		call()
		if n := g.passed.Load() - before; passed && n != 1 || !passed && n != 0 {
			t.Errorf("%s: %d calls passed through; want pass-through %v", what, n, passed)
		}
	}

	path("progress", func() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "two_progress", Meta: mcp.Meta{"progressToken": "my-token"}})
		if err != nil || res.Content[0].(*mcp.TextContent).Text != "progressed" {
			t.Fatalf("progress call: %v %v", res, err)
		}
	})
	waitFor(t, "3 progress notifications", func() bool { return len(got.get().progress) == 3 })
	if p := got.get().progress; p[0] != "my-token step 1" || p[2] != "my-token step 3" {
		t.Errorf("progress = %q", p)
	}

	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatal(err)
	}
	path("log", func() {
		if out, err := callText(t, cs, "one_log", "hello"); err != nil || out != "logged" {
			t.Fatalf("log call: %q %v", out, err)
		}
	})
	waitFor(t, "the log message", func() bool { return slices.Contains(got.get().logs, "logged hello") })

	for _, tc := range []struct{ tool, want string }{
		{"one_sample", "one sampled the client's answer to what?"},
		{"two_sample", "two sampled the client's answer to what?"},
		{"two_ask", "two was told accept Ada"},
		{"one_roots", "file:///work/project"},
	} {
		path(tc.tool, func() {
			if out, err := callText(t, cs, tc.tool, "what?"); err != nil || out != tc.want {
				t.Errorf("%s: %q, %v; want %q", tc.tool, out, err, tc.want)
			}
		})
	}

	path("cancellation", func() {
		hctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := cs.CallTool(hctx, &mcp.CallToolParams{Name: "two_hang", Arguments: map[string]any{}})
			done <- err
		}()
		time.Sleep(300 * time.Millisecond)
		cancel()
		select {
		case who := <-cancelled:
			if who != "two" {
				t.Errorf("%s saw the cancellation", who)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the member never saw the cancellation")
		}
		<-done
	})
	// The session goes on after a cancelled call.
	path("after the cancellation", func() {
		if out, err := callText(t, cs, "two_a", "still"); err != nil || out != "two/a:still" {
			t.Errorf("a call after the cancellation: %q %v", out, err)
		}
	})
}

// TestCallFeaturesOnTheGoSDKPath: what TestEverythingForwarded checks of
// tool calls holds on the go-sdk path too, which calls take when the
// pass-through does not apply (a 2026-era client or member, a member that
// is down, a tool not listed yet).
func TestCallFeaturesOnTheGoSDKPath(t *testing.T) {
	t.Parallel()
	cancelled := make(chan string, 2)
	one := featureServer(t, "one", cancelled)
	two := featureServer(t, "two", cancelled)
	g := startGateway(t, Config{Members: []Member{one.member(), two.member()}})
	g.passOff.Store(true)
	var got clientLog
	cs := featureClient(t, g, &got)
	if names := toolNames(t, cs); !slices.Contains(names, "two_progress") {
		t.Fatalf("tools = %v", names)
	}
	checkCallFeatures(t, g, cs, &got, cancelled, false)
}

// TestPassedCallResumes: a member that closes a call's stream before its
// answer (SEP-1699 polling: it keeps the events, and the client comes
// back with Last-Event-ID) is followed through the profile: the client's
// stream is closed too, the client resumes it at the profile endpoint,
// and gets the progress sent meanwhile and the answer.
func TestPassedCallResumes(t *testing.T) {
	t.Parallel()
	srv := newServerHTTP(t, "poller", nil, mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)}, func(s *server, m *mcp.Server) {
		mcp.AddTool(m, &mcp.Tool{Name: "poll"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
			tok := req.Params.GetProgressToken()
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Message: "before"})
			if req.Extra == nil || req.Extra.CloseSSEStream == nil {
				return nil, nil, fmt.Errorf("no CloseSSEStream")
			}
			req.Extra.CloseSSEStream(mcp.CloseSSEStreamArgs{RetryAfter: 20 * time.Millisecond})
			time.Sleep(150 * time.Millisecond)
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 2, Message: "after"})
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "polled"}}}, nil, nil
		})
	})
	g := startGateway(t, Config{Members: []Member{srv.member()}})
	var got clientLog
	cs := featureClient(t, g, &got)
	toolNames(t, cs)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "poll", Arguments: map[string]any{}, Meta: mcp.Meta{"progressToken": 7}})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "polled" {
		t.Fatalf("poll: %v %v", res, err)
	}
	if g.passed.Load() != 1 || g.resumed.Load() < 1 {
		t.Errorf("passed %d, resumed %d; want the call passed and its stream resumed", g.passed.Load(), g.resumed.Load())
	}
	// The client's handler runs beside the call's answer: wait for both.
	waitFor(t, "2 progress notifications", func() bool { return len(got.get().progress) >= 2 })
	if p := got.get().progress; !slices.Equal(p, []string{"7 before", "7 after"}) {
		t.Errorf("progress = %q; want both, under the client's token", p)
	}
}

// TestPassedCallJSONAnswer: a member that answers calls with
// application/json instead of an event stream is passed through too, and
// its tool errors reach the client as they are.
func TestPassedCallJSONAnswer(t *testing.T) {
	t.Parallel()
	srv := newServerHTTP(t, "plain", nil, mcp.StreamableHTTPOptions{JSONResponse: true}, func(s *server, m *mcp.Server) {
		addEcho(s, m, "echo")
		mcp.AddTool(m, &mcp.Tool{Name: "broken"}, func(context.Context, *mcp.CallToolRequest, textIn) (*mcp.CallToolResult, any, error) {
			return nil, nil, fmt.Errorf("the broken tool broke")
		})
	})
	g := startGateway(t, Config{Members: []Member{{Server: "plain", URL: srv.member().URL, Overrides: map[string]Override{"echo": {Name: "say"}}}}})
	cs := connect(t, g, nil)
	toolNames(t, cs)
	if out, err := callText(t, cs, "say", "json"); err != nil || out != "plain/echo:json" {
		t.Fatalf("say: %q %v", out, err)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "broken", Arguments: map[string]any{}})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "the broken tool broke") {
		t.Errorf("broken: %+v %v", res, err)
	}
	if n := g.passed.Load(); n != 2 {
		t.Errorf("%d calls passed through; want 2", n)
	}
	if ran := srv.ranTools(); !slices.Equal(ran, []string{"echo"}) {
		t.Errorf("the server ran %v; want its own name for the renamed tool", ran)
	}
}

// TestSessionTimeout: the gateway ends a client session idle for its
// session timeout, but not while a call (passed through, so never seen by
// the go-sdk handler) is in flight.
func TestSessionTimeout(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "slow", nil, func(s *server, m *mcp.Server) {
		mcp.AddTool(m, &mcp.Tool{Name: "slow"}, func(context.Context, *mcp.CallToolRequest, textIn) (*mcp.CallToolResult, any, error) {
			time.Sleep(900 * time.Millisecond)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
		})
	})
	g, err := New(Config{Name: "timeout", Members: []Member{srv.member()}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	g.sessionTimeout = 300 * time.Millisecond
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	cs := connect(t, g, nil)
	toolNames(t, cs)
	if out, err := callText(t, cs, "slow", ""); err != nil || out != "done" {
		t.Fatalf("a call longer than the session timeout: %q %v", out, err)
	}
	if g.passed.Load() != 1 {
		t.Fatalf("the call was not passed through")
	}
	if n := g.Status().Sessions; n != 1 {
		t.Fatalf("%d sessions right after the call; want 1", n)
	}
	waitFor(t, "the idle session to end", func() bool { return g.Status().Sessions == 0 })
	if _, err := callText(t, cs, "slow", ""); err == nil {
		t.Error("a call on the ended session succeeded")
	}
}
