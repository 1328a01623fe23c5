package proxymgr

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func newTestManager(t *testing.T) *Manager {
	t.Helper()
	m := NewManager(ManagerOptions{Logger: testLogger(t), MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Coalesce: 20 * time.Millisecond})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	return m
}

// waitEvent reads events until one satisfies ok.
func waitEvent(t *testing.T, ch <-chan Event, what string, ok func(Status) bool) Status {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("event channel closed while waiting for %s", what)
			}
			if ok(ev.Status) {
				return ev.Status
			}
		case <-timeout:
			t.Fatalf("no event %s", what)
		}
	}
}

func TestManagerLifecycleAndEvents(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	m := newTestManager(t)
	events, cancel := m.Subscribe(8)
	defer cancel()

	st, err := m.Start(context.Background(), Config{Name: "gh", Upstream: up.url(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateRunning || st.Port == 0 || st.URL != "http://127.0.0.1:"+strconv.Itoa(st.Port)+"/mcp" {
		t.Fatalf("start: %+v", st)
	}
	waitEvent(t, events, "running", func(s Status) bool { return s.Name == "gh" && s.State == StateRunning })

	if _, err := m.Start(context.Background(), Config{Name: "gh", Upstream: up.url()}); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second start: %v", err)
	}
	cs := connect(t, st.URL, nil, "")
	if _, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "counters", func(s Status) bool { return s.Counters.Requests >= 2 && s.Counters.Sessions == 1 })

	all := m.Statuses()
	if len(all) != 1 || all[0].Name != "gh" {
		t.Fatalf("Statuses() = %+v", all)
	}
	// Restart with Port 0 keeps the port.
	st2, err := m.Restart(context.Background(), Config{Name: "gh", Upstream: up.url(), Policy: ToolPolicy{Deny: []string{"echo"}}})
	if err != nil || st2.Port != st.Port {
		t.Fatalf("restart: %+v %v (port was %d)", st2, err, st.Port)
	}
	// The client's kept-alive connection carries on, under the new policy.
	_, err = cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}})
	if err == nil || !strings.Contains(err.Error(), "tool policy") {
		t.Fatalf("the new policy does not apply after Restart: %v", err)
	}
	if err := m.Stop("gh"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "stopped", func(s Status) bool { return s.Name == "gh" && s.State == StateStopped })
	if st, running := m.Status("gh"); running || st.State != StateStopped {
		t.Fatalf("after Stop: %+v %v", st, running)
	}
	if err := m.Stop("gh"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second Stop: %v", err)
	}
	if len(m.Statuses()) != 0 {
		t.Fatal("a stopped proxy is still listed")
	}
}

func TestManagerPortInUse(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	m := newTestManager(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0") // another program holds the port
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	events, cancel := m.Subscribe(4)
	defer cancel()
	st, err := m.Start(context.Background(), Config{Name: "a", Upstream: up.url(), Port: port})
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("start on a held port: %v", err)
	}
	if st.State != StateError || !strings.Contains(st.LastError, "in use") {
		t.Fatalf("status: %+v", st)
	}
	waitEvent(t, events, "error", func(s Status) bool { return s.Name == "a" && s.State == StateError })
	if got, running := m.Status("a"); running || got.State != StateError {
		t.Fatalf("Status after a failed start: %+v", got)
	}
	// The caller offers a new port.
	if st, err = m.Start(context.Background(), Config{Name: "a", Upstream: up.url()}); err != nil || st.Port == port {
		t.Fatalf("start on a free port: %+v %v", st, err)
	}
}

// TestManagerRestartsFailedListener: when a proxy's listener fails, the
// manager restarts it on the same port, with backoff.
func TestManagerRestartsFailedListener(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	m := newTestManager(t)
	events, cancel := m.Subscribe(16)
	defer cancel()
	st, err := m.Start(context.Background(), Config{Name: "f", Upstream: up.url()})
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	p := m.proxies["f"].current()
	m.mu.Unlock()
	p.sock.ln.Close() // the listener fails under the server
	waitEvent(t, events, "error", func(s Status) bool { return s.State == StateError })
	got := waitEvent(t, events, "running again", func(s Status) bool { return s.State == StateRunning })
	if got.Port != st.Port {
		t.Fatalf("restarted on port %d, want %d", got.Port, st.Port)
	}
	cs := connect(t, got.URL, nil, "")
	if _, err := cs.ListTools(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
}

// TestManagerGracefulClose: in-flight calls finish within the grace period;
// calls still running after it are cancelled; GET streams do not hold the
// stop up.
func TestManagerGracefulClose(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	m := NewManager(ManagerOptions{Logger: testLogger(t)})
	st, err := m.Start(context.Background(), Config{Name: "g", Upstream: up.url()})
	if err != nil {
		t.Fatal(err)
	}
	cs := connect(t, st.URL, nil, "2025-11-25") // holds a GET stream open
	slow := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"n": 5, "delay_ms": 60}})
		slow <- err
	}()
	blocked := make(chan error, 1)
	cs2 := connect(t, st.URL, nil, "2025-11-25")
	go func() {
		_, err := cs2.CallTool(context.Background(), &mcp.CallToolParams{Name: "block"})
		blocked <- err
	}()
	for up.callCount("progress") == 0 || up.callCount("block.started") == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("Close took %v", took)
	if err := <-slow; err != nil {
		t.Errorf("a call that finishes within the grace period failed: %v", err)
	}
	if err := <-blocked; err == nil {
		t.Error("a call still running after the grace period was not cancelled")
	}
	if took > 5*time.Second {
		t.Errorf("Close took %v with a 1.5 s grace", took)
	}
	if _, err := m.Start(context.Background(), Config{Name: "g2", Upstream: up.url()}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

// TestSubscriberCoalesces: a subscriber that does not read does not block
// anything, and when it reads it gets the latest status, not a backlog.
func TestSubscriberCoalesces(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, true)
	m := newTestManager(t)
	events, cancel := m.Subscribe(0)
	st, err := m.Start(context.Background(), Config{Name: "c", Upstream: up.url()})
	if err != nil {
		t.Fatal(err)
	}
	cs := connect(t, st.URL, nil, "2026-07-28")
	for i := range 30 {
		if _, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": strconv.Itoa(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the coalesced events land
	n := 0
	var last Status
	for {
		select {
		case ev := <-events:
			n++
			last = ev.Status
			continue
		case <-time.After(300 * time.Millisecond):
		}
		break
	}
	if n == 0 || n > 5 || last.Counters.Requests < 30 {
		t.Fatalf("%d events, last %+v; want a few coalesced events ending with the latest counters", n, last.Counters)
	}
	cancel()
	if _, open := <-events; open {
		t.Fatal("the channel is still open after cancel")
	}
	cancel() // idempotent
}

// TestShutdownEndsListenStreams: a 2026-era subscriptions/listen POST is an
// open-ended stream; stopping the proxy ends it at once instead of spending
// the 5 s grace period on it.
func TestShutdownEndsListenStreams(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, true)
	p, err := New(Config{Name: "l", Upstream: up.url(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	cs := connect(t, p.URL(), &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {}}, "2026-07-28")
	if _, err := cs.ListTools(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Status().Counters.Streams == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client opened no subscriptions/listen stream")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("Shutdown took %v: the listen stream held it for the grace period", took)
	}
	if st := p.Status(); st.State != StateStopped {
		t.Fatalf("state %s after Shutdown", st.State)
	}
}
