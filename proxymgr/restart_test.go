package proxymgr

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestUpstreamRestartMidSession: the upstream restarts and forgets the
// session; the proxy re-initializes it with the client's own initialize,
// maps the new session behind the client's id and replays the request. The
// client never notices, and concurrent requests restore it only once.
func TestUpstreamRestartMidSession(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	p := startProxy(t, Config{Upstream: up.url(), Audit: AuditConfig{File: path}})
	cs := connect(t, p.URL(), nil, "2025-11-25")
	sid := cs.ID()
	call := func(text string) error {
		res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
		if err != nil {
			return err
		}
		if got := resultText(t, res); got != text {
			return fmt.Errorf("echo %q = %q", text, got)
		}
		return nil
	}
	if err := call("before"); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		up.stop()
		up.start()
		before := countInitializes(up)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() { errs <- call(fmt.Sprintf("after %d/%d", round, i)) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: a call failed across the restart: %v", round, err)
			}
		}
		if n := countInitializes(up) - before; n != 1 {
			t.Fatalf("round %d: %d initializes after the restart, want exactly 1", round, n)
		}
		if cs.ID() != sid {
			t.Fatalf("the client's session id changed: %q -> %q", sid, cs.ID())
		}
	}
	if _, err := cs.ListTools(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	if n := p.Status().Counters.Sessions; n != 1 {
		t.Fatalf("sessions = %d", n)
	}
	cs.Close()
	shutdown(t, p)
	restores := 0
	for _, e := range readAudit(t, path) {
		if e["event"] == "session.restore" {
			restores++
			if e["session"] != sid {
				t.Errorf("restore event names session %v, want the client's %s", e["session"], sid)
			}
		}
	}
	if restores != 2 {
		t.Fatalf("%d session.restore events, want 2", restores)
	}
}

func countInitializes(u *upstream) int {
	n := 0
	for _, r := range u.recorded() {
		if bytes.Contains(r.Body, []byte(`"method":"initialize"`)) {
			n++
		}
	}
	return n
}

// TestUpstreamRestartDuringCall: the upstream dies while a call streams; the
// client gets an error for that call instead of waiting forever, and the
// next call works.
func TestUpstreamRestartDuringCall(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url()})
	cs := connect(t, p.URL(), nil, "2025-11-25")
	done := make(chan error, 1)
	go func() {
		params := &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"n": 1000, "delay_ms": 20}}
		params.SetProgressToken("p")
		_, err := cs.CallTool(ctxT(t), params)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for up.callCount("progress") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the call never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let a few progress events flow
	up.stop()
	up.start()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the interrupted call succeeded")
		}
		t.Logf("interrupted call: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the interrupted call never returned")
	}
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "next"}})
	if err != nil || resultText(t, res) != "next" {
		t.Fatalf("next call: %v", err)
	}
}

// TestUpstreamRestartKeepsClientState: what the client set on its session
// (a log level, resource subscriptions) is set again on the session the
// proxy re-initializes after an upstream restart, so log messages and
// resource updates keep reaching the client.
func TestUpstreamRestartKeepsClientState(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url()})
	updates := make(chan string, 8)
	logs := make(chan string, 8)
	cs := connect(t, p.URL(), &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			updates <- req.Params.URI
		},
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			logs <- fmt.Sprint(req.Params.Data)
		},
	}, "2025-11-25")
	ctx := ctxT(t)
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{"test://a", "test://b"} {
		if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "test://b"}); err != nil {
		t.Fatal(err)
	}

	up.stop()
	up.start()
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err != nil {
		t.Fatalf("a call across the restart: %v", err)
	}
	if a, b := up.callCount("subscribe test://a"), up.callCount("subscribe test://b"); a != 2 || b != 1 {
		t.Errorf("subscribes: test://a %d (want 2: before and after the restart), test://b %d (want 1: unsubscribed)", a, b)
	}

	// The restarted server's session has the client's level and
	// subscription: what it sends reaches the client.
	var ss *mcp.ServerSession
	for s := range up.server().Sessions() {
		ss = s
	}
	if ss == nil {
		t.Fatal("no session on the restarted server")
	}
	// (The client's GET stream reopens on the new session in the background.)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := ss.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Data: "after the restart"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream to the client on the new session: %v", err)
		}
	}
	if err := up.server().ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: "test://a"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		ch   chan string
		what string
	}{{logs, "after the restart"}, {updates, "test://a"}} {
		select {
		case got := <-want.ch:
			if got != want.what {
				t.Errorf("got %q, want %q", got, want.what)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q never reached the client after the restart", want.what)
		}
	}
}
