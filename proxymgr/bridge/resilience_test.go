package bridge_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const legacy = "2025-11-25"

// callErr calls a tool and returns the error text of the failure it expects.
func callErr(t *testing.T, cs *mcp.ClientSession, tool string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{}})
	if err == nil {
		t.Fatalf("call %s succeeded (%+v); want an error", tool, res.Content)
	}
	return err.Error()
}

func initializeCount(up *upstream) int {
	n := 0
	for _, r := range up.seen(http.MethodPost) {
		if r.session == "" {
			n++
		}
	}
	return n
}

// TestUpstreamRestart: the server restarts (its sessions are gone, 404).
// The bridge re-initializes with the client's cached initialize, restores
// the log level and the subscriptions, reopens the GET stream and tells the
// client to refresh its lists; the client notices nothing else.
func TestUpstreamRestart(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{})
	ev := &clientEvents{}
	cs := connect(t, bridgeCmd(t, up.url()), legacy, ev)
	ctx := context.Background()
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "error"}); err != nil {
		t.Fatal(err)
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "file:///notes.txt"}); err != nil {
		t.Fatal(err)
	}
	callText(t, cs, "echo", map[string]any{"text": "before"})

	up.restart("1.0.0")

	if got := callText(t, cs, "echo", map[string]any{"text": "after"}); got != "echo: after" {
		t.Fatalf("after the restart: %q", got)
	}
	if n := initializeCount(up); n != 2 {
		t.Errorf("the upstream saw %d initialize requests, want 2", n)
	}
	up.mu.Lock()
	subs := append([]string(nil), up.subscribed...)
	up.mu.Unlock()
	if len(subs) != 2 {
		t.Errorf("subscriptions on the upstream = %q; want the subscription restored", subs)
	}
	waitFor(t, "notifications/tools/list_changed after the reconnection", 5*time.Second,
		func() bool { return ev.snapshot().toolsList >= 1 })
	callText(t, cs, "log", nil)
	waitFor(t, "a log message", 5*time.Second, func() bool { return len(ev.snapshot().logs) >= 1 })
	time.Sleep(100 * time.Millisecond)
	if got := ev.snapshot().logs; strings.Join(got, ",") != "error" {
		t.Errorf("log messages after the restart = %q; the level was not restored", got)
	}
	waitFor(t, "the GET stream of the new session", 5*time.Second, func() bool {
		gets := up.seen(http.MethodGet)
		return len(gets) > 0 && gets[len(gets)-1].session != up.seen(http.MethodGet)[0].session
	})
	time.Sleep(50 * time.Millisecond)
	if err := up.mcpServer().ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: "file:///notes.txt"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a resource update on the new session", 5*time.Second, func() bool { return len(ev.snapshot().updated) == 1 })
}

// TestUpstreamIdentityChange: after a restart the server is another
// version; the bridge must not pretend the session is the same.
func TestUpstreamIdentityChange(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{})
	cs := connect(t, bridgeCmd(t, up.url()), legacy, nil)
	callText(t, cs, "echo", map[string]any{"text": "x"})
	up.restart("2.0.0")
	msg := callErr(t, cs, "echo")
	for _, want := range []string{"upstream changed", `"upstream" 1.0.0`, `"upstream" 2.0.0`, "restart your MCP client"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	// The replacement session is not kept open.
	waitFor(t, "the DELETE of the unused session", 5*time.Second, func() bool { return len(up.seen(http.MethodDelete)) == 1 })
}

// TestUpstreamDownThenUp: while the server is down requests fail promptly
// with a message saying so; once it is back, requests work again.
func TestUpstreamDownThenUp(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{})
	cs := connect(t, bridgeCmd(t, up.url(), "-request-wait", "500ms"), legacy, nil)
	callText(t, cs, "echo", map[string]any{"text": "x"})
	up.stop()
	msg := callErr(t, cs, "echo")
	if !strings.Contains(msg, "upstream unreachable") || !strings.Contains(msg, "connection refused") {
		t.Errorf("while down: %q", msg)
	}
	up.start()
	if got := callText(t, cs, "echo", map[string]any{"text": "back"}); got != "echo: back" {
		t.Errorf("after the server came back: %q", got)
	}
}

// TestUpstreamDownAtStart: the client starts while the server is still
// starting; initialize waits for it (within the request wait).
func TestUpstreamDownAtStart(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{})
	up.stop()
	go func() {
		time.Sleep(300 * time.Millisecond)
		up.start()
	}()
	cs := connect(t, bridgeCmd(t, up.url(), "-request-wait", "10s"), legacy, nil)
	callText(t, cs, "echo", map[string]any{"text": "x"})
}

// TestInFlightRequestAnswered: a request in flight when the server dies is
// answered with an error, never left hanging.
func TestInFlightRequestAnswered(t *testing.T) {
	t.Parallel()
	for _, opts := range []upstreamOptions{{}, {jsonResponse: true}} {
		up := startUpstream(t, opts)
		cs := connect(t, bridgeCmd(t, up.url()), legacy, nil)
		errc := make(chan string, 1)
		go func() { errc <- callErr(t, cs, "slow") }()
		receive(t, "the slow tool to start", up.started, 10*time.Second)
		// A hang-up right after the request was written looks like a stale
		// keep-alive connection (resent); one later is a failure in flight.
		time.Sleep(200 * time.Millisecond)
		up.stop()
		msg := receive(t, "the in-flight call to fail", errc, 15*time.Second)
		if !strings.Contains(msg, "in flight") || !strings.Contains(msg, `"tools/call"`) {
			t.Errorf("json=%v: in-flight error %q", opts.jsonResponse, msg)
		}
	}
}

// TestProxyRestart: a hop between the bridge and the server (the Keyport
// proxy) restarts; the upstream session survives, so the bridge resumes it
// without re-initializing.
func TestProxyRestart(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{})
	target, _ := url.Parse("http://" + up.addr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var mu sync.Mutex
	var srv *http.Server
	serve := func(ln net.Listener) {
		s := &http.Server{Handler: &httputil.ReverseProxy{
			Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = r.In.Host },
			FlushInterval: -1,
		}}
		mu.Lock()
		srv = s
		mu.Unlock()
		go func() { _ = s.Serve(ln) }()
	}
	serve(ln)
	t.Cleanup(func() { mu.Lock(); srv.Close(); mu.Unlock() })

	ev := &clientEvents{}
	cs := connect(t, bridgeCmd(t, "http://"+addr+"/mcp"), legacy, ev)
	callText(t, cs, "echo", map[string]any{"text": "x"})
	waitFor(t, "the GET stream", 5*time.Second, func() bool { return len(up.seen(http.MethodGet)) == 1 })

	mu.Lock()
	srv.Close()
	mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	serve(ln)

	callText(t, cs, "echo", map[string]any{"text": "y"})
	if n := initializeCount(up); n != 1 {
		t.Errorf("the bridge re-initialized (%d initialize requests) although the session survived", n)
	}
	// The GET stream comes back on the same session, so server-initiated
	// messages keep flowing.
	waitFor(t, "the GET stream to reopen", 5*time.Second, func() bool { return len(up.seen(http.MethodGet)) >= 2 })
	time.Sleep(50 * time.Millisecond)
	up.mcpServer().AddTool(&mcp.Tool{Name: "late", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return textResult("late"), nil
		})
	waitFor(t, "notifications/tools/list_changed", 5*time.Second, func() bool { return ev.snapshot().toolsList >= 1 })
}

// TestNoAutoReconnect: with reconnection off, a lost session is reported,
// with what to do, instead of silently replaced.
func TestNoAutoReconnect(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{})
	cs := connect(t, bridgeCmd(t, up.url(), "-no-auto-reconnect"), legacy, nil)
	callText(t, cs, "echo", map[string]any{"text": "x"})
	up.restart("1.0.0")
	for range 2 {
		msg := callErr(t, cs, "echo")
		if !strings.Contains(msg, "automatic reconnection is off") || !strings.Contains(msg, "restart your MCP client") {
			t.Errorf("error %q", msg)
		}
	}
	if n := initializeCount(up); n != 1 {
		t.Errorf("%d initialize requests; the bridge reconnected although told not to", n)
	}
}

// TestStdinClosed: when the client closes the bridge's stdin, the bridge
// ends the upstream session (DELETE) and exits by itself, successfully.
func TestStdinClosed(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{})
	cmd := bridgeCmd(t, up.url())
	cs := connect(t, cmd, legacy, nil)
	callText(t, cs, "echo", map[string]any{"text": "x"})
	session := up.seen(http.MethodPost)[1].session
	if err := cs.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	if cmd.ProcessState == nil || !cmd.ProcessState.Exited() || cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("the bridge did not exit cleanly by itself: %v", cmd.ProcessState)
	}
	deletes := up.seen(http.MethodDelete)
	if len(deletes) != 1 || deletes[0].session != session {
		t.Errorf("DELETE requests %+v; want one for session %s", deletes, session)
	}
}

// TestStrippedEnvironment: GUI clients start the bridge with almost no
// environment (no PATH) and an arbitrary working directory.
func TestStrippedEnvironment(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{})
	cmd := bridgeCmd(t, up.url())
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home}
	cmd.Dir = filepath.Join(t.TempDir(), "odd dir ü")
	if err := os.Mkdir(cmd.Dir, 0o500); err != nil {
		t.Fatal(err)
	}
	cs := connect(t, cmd, legacy, nil)
	if got := callText(t, cs, "echo", map[string]any{"text": "x"}); got != "echo: x" {
		t.Errorf("echo = %q", got)
	}
}

// TestStreamResumption: the server closes a request's event stream before
// the answer (SEP-1699: retry + Last-Event-ID); the bridge waits the retry
// delay and resumes the stream with GET, and the answer arrives.
func TestStreamResumption(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamOptions{eventStore: true})
	cs := connect(t, bridgeCmd(t, up.url()), legacy, nil)
	if got := callText(t, cs, "interrupt", nil); got != "answered after the break" {
		t.Fatalf("interrupt = %q", got)
	}
	var resumed bool
	for _, r := range up.seen(http.MethodGet) {
		if r.header.Get("Last-Event-Id") != "" {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("no GET with Last-Event-ID; the answer came some other way")
	}
}
