package proxymgr

import (
	"bytes"
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
