package proxymgr

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestRestartHandsOverTheSocket: applying a new configuration to a running
// proxy (a policy edit in the app) never refuses a connection, keeps the
// port and the client's session, applies the new policy to that session's
// next calls, and keeps the traffic counters; stopping afterwards frees the
// port.
func TestRestartHandsOverTheSocket(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	m := newTestManager(t)
	st, err := m.Start(context.Background(), Config{Name: "h", Upstream: up.url()})
	if err != nil {
		t.Fatal(err)
	}
	cs := connect(t, st.URL, nil, "2025-11-25") // with a GET stream open
	res, err := cs.ListTools(ctxT(t), nil)
	if err != nil || !slices.Contains(toolNames(res), "delete_repo") {
		t.Fatalf("tools before: %v %v", toolNames(res), err)
	}

	// Fresh connections all the time, as clients opening and closing.
	var served, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post(st.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				resp.Body.Close()
				served.Add(1)
			}
		})
	}
	// And a client session on kept-alive connections, calling all along.
	var calls atomic.Int64
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			r, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}})
			if err != nil || r.IsError {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("session call: %v %v", r, err))
				continue
			}
			calls.Add(1)
		}
	})
	policies := []ToolPolicy{{Deny: []string{"delete_*"}}, {}, {Deny: []string{"delete_*"}}}
	for i, pol := range policies {
		time.Sleep(30 * time.Millisecond)
		got, err := m.Restart(context.Background(), Config{Name: "h", Upstream: up.url(), Policy: pol})
		if err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		if got.Port != st.Port || got.State != StateRunning {
			t.Fatalf("restart %d: %+v, want running on port %d", i, got, st.Port)
		}
	}
	time.Sleep(30 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || served.Load() == 0 || calls.Load() == 0 {
		t.Fatalf("during 3 restarts: %d requests served, %d session calls, %d failed (first: %v)", served.Load(), calls.Load(), failed.Load(), firstErr.Load())
	}
	t.Logf("during 3 restarts: %d requests on fresh connections and %d session calls, none failed", served.Load(), calls.Load())

	// The same session goes on, under the last policy.
	res, err = cs.ListTools(ctxT(t), nil)
	if err != nil {
		t.Fatalf("the session after the restarts: %v", err)
	}
	if names := toolNames(res); slices.Contains(names, "delete_repo") || !slices.Contains(names, "echo") {
		t.Errorf("tools after deny delete_*: %v", names)
	}
	if r, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "delete_repo", Arguments: map[string]any{"text": "x"}}); err == nil && !r.IsError {
		t.Errorf("delete_repo was called through the new policy")
	}
	if n := up.callCount("delete_repo"); n != 0 {
		t.Errorf("the upstream ran delete_repo %d times", n)
	}
	if now, _ := m.Status("h"); now.Counters.Requests < served.Load()+calls.Load() {
		t.Errorf("counters restarted: %d requests, at least %d were served", now.Counters.Requests, served.Load()+calls.Load())
	}

	// Stopping frees the port (no drained proxy kept the socket).
	if err := m.Stop("h"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", st.Port))
	if err != nil {
		t.Fatalf("port %d after Stop: %v", st.Port, err)
	}
	ln.Close()
}

// TestRestartOnAnotherPort: a new port cannot take over the socket; the
// proxy moves and the old port is free.
func TestRestartOnAnotherPort(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	m := newTestManager(t)
	st, err := m.Start(context.Background(), Config{Name: "p", Upstream: up.url()})
	if err != nil {
		t.Fatal(err)
	}
	free, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	got, err := m.Restart(context.Background(), Config{Name: "p", Upstream: up.url(), Port: port})
	if err != nil || got.Port != port {
		t.Fatalf("restart on port %d: %+v %v", port, got, err)
	}
	if _, err := cs(t, got.URL).ListTools(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", st.Port))
	if err != nil {
		t.Fatalf("the old port %d: %v", st.Port, err)
	}
	ln.Close()
}

func cs(t *testing.T, url string) *mcp.ClientSession { return connect(t, url, nil, "") }

// TestRestartKeepsSessions: after a new configuration took the socket, the
// successor still knows how the client's session began, so an upstream
// restart later is bridged as before (re-initialized, same session id) —
// once, and no "session end" is audited for the handover.
func TestRestartKeepsSessions(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	m := newTestManager(t)
	cfg := Config{Name: "k", Upstream: up.url(), Audit: AuditConfig{File: audit}}
	st, err := m.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs := connect(t, st.URL, nil, "2025-11-25")
	sid := cs.ID()
	cfg.Policy = ToolPolicy{Deny: []string{"delete_*"}}
	if _, err := m.Restart(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	up.stop()
	up.start()
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "after"}})
	if err != nil {
		t.Fatalf("a call after the handover and an upstream restart: %v", err)
	}
	if got := resultText(t, res); got != "after" || cs.ID() != sid {
		t.Fatalf("echo = %q, session %q (was %q)", got, cs.ID(), sid)
	}
	if now, _ := m.Status("k"); now.Counters.Sessions != 1 {
		t.Errorf("sessions after the handover = %d, want 1", now.Counters.Sessions)
	}
	cs.Close()
	if err := m.Stop("k"); err != nil {
		t.Fatal(err)
	}
	var ends, restores int
	for _, e := range readAudit(t, audit) {
		switch e["event"] {
		case "session.end":
			ends++
		case "session.restore":
			restores++
		}
	}
	if ends != 1 || restores != 1 {
		t.Errorf("audit: %d session.end and %d session.restore events, want 1 and 1", ends, restores)
	}
}
