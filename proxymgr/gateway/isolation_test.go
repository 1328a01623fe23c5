package gateway

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMemberDownAndBack: a member whose proxy stops drops out of the
// profile (the client hears list_changed), calls to it get -32603 naming
// it, the other member keeps working, and it comes back by itself when its
// proxy runs again.
func TestMemberDownAndBack(t *testing.T) {
	t.Parallel()
	a := newServer(t, "alpha", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "one") })
	b := newServer(t, "beta", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "two") })
	g := startGateway(t, Config{Members: []Member{a.member(), b.member()}})
	var changed atomic.Int32
	cs := connect(t, g, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed.Add(1) }})
	if got := toolNames(t, cs); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("tools = %v", got)
	}

	b.stopProxy()
	_, err := callText(t, cs, "two", "x")
	if err == nil || !strings.Contains(err.Error(), "beta is unavailable") {
		t.Fatalf("call to the stopped member: %v; want an error naming beta", err)
	}
	waitFor(t, "list_changed after beta went away", func() bool { return changed.Load() > 0 })
	if got := toolNames(t, cs); !slices.Equal(got, []string{"one"}) {
		t.Errorf("tools with beta down = %v", got)
	}
	if out, err := callText(t, cs, "one", "x"); err != nil || out != "alpha/one:x" {
		t.Errorf("alpha while beta is down: %q %v", out, err)
	}
	if st := g.Status(); st.Members[1].Up || st.Members[1].Error == "" {
		t.Errorf("status of beta while down: %+v", st.Members[1])
	}

	n := changed.Load()
	b.startProxy()
	waitFor(t, "beta back (list_changed)", func() bool { return changed.Load() > n })
	waitFor(t, "beta's tool back", func() bool { return slices.Equal(toolNames(t, cs), []string{"one", "two"}) })
	if out, err := callText(t, cs, "two", "y"); err != nil || out != "beta/two:y" {
		t.Errorf("beta after coming back: %q %v", out, err)
	}
}

// TestSlowMemberDoesNotHoldLists: a member whose tools/list hangs is left
// out of the answer after ListTimeout; the profile answers with the rest in
// time, and the member joins again (list_changed) once it answers.
func TestSlowMemberDoesNotHoldLists(t *testing.T) {
	t.Parallel()
	var hang atomic.Bool
	release := make(chan struct{})
	slow := newServer(t, "slow", nil, func(s *server, m *mcp.Server) {
		addEcho(s, m, "late")
		m.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
			return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
				if method == "tools/list" && hang.Load() {
					select {
					case <-release:
					case <-ctx.Done():
					}
				}
				return next(ctx, method, req)
			}
		})
	})
	fast := newServer(t, "fast", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "quick") })
	g := startGateway(t, Config{Members: []Member{slow.member(), fast.member()}, ListTimeout: 300 * time.Millisecond})
	var changed atomic.Int32
	cs := connect(t, g, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed.Add(1) }})

	hang.Store(true)
	start := time.Now()
	got := toolNames(t, cs)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("tools/list took %s with a hanging member; the bound is 300 ms", d)
	}
	if !slices.Equal(got, []string{"quick"}) {
		t.Errorf("tools with slow hanging = %v", got)
	}
	waitFor(t, "list_changed for the member left out", func() bool { return changed.Load() >= 1 })
	hang.Store(false)
	close(release)
	// It rejoins by itself: a second list_changed, and the next list has it.
	waitFor(t, "list_changed for the member back", func() bool { return changed.Load() >= 2 })
	if got := toolNames(t, cs); !slices.Equal(got, []string{"late", "quick"}) {
		t.Errorf("tools after the slow member answered = %v", got)
	}
}

// TestMemberRestartMidSession: the server behind a member restarts (it
// forgets its sessions); the profile's client session goes on: the
// member's proxy restores the member session, and the next calls work.
func TestMemberRestartMidSession(t *testing.T) {
	t.Parallel()
	a := newServer(t, "alpha", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "one") })
	g := startGateway(t, Config{Members: []Member{a.member()}})
	cs := connect(t, g, nil)
	if out, err := callText(t, cs, "one", "before"); err != nil || out != "alpha/one:before" {
		t.Fatalf("before the restart: %q %v", out, err)
	}
	a.restart()
	waitFor(t, "calls after the member restarted", func() bool {
		out, err := callText(t, cs, "one", "after")
		return err == nil && out == "alpha/one:after"
	})
}

// TestLocalChecks: the profile endpoint serves loopback clients only, like
// Keyport's proxies (DNS rebinding protection), and names itself on its
// health endpoint.
func TestLocalChecks(t *testing.T) {
	t.Parallel()
	a := newServer(t, "alpha", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "one") })
	g := startGateway(t, Config{Name: "coding", Members: []Member{a.member()}})
	for _, tc := range []struct {
		host, origin string
		want         int
	}{
		{"evil.example:" + g.portStr, "", http.StatusForbidden},
		{"127.0.0.1:1", "", http.StatusForbidden},
		{"localhost:" + g.portStr, "https://evil.example", http.StatusForbidden},
		{"127.0.0.1:" + g.portStr, "http://localhost:3000", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+g.portStr+HealthPath, nil)
		req.Host = tc.host
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Host %s Origin %q: %d, want %d", tc.host, tc.origin, resp.StatusCode, tc.want)
		}
		if resp.StatusCode == http.StatusOK && resp.Header.Get(HealthProfileHeader) != "coding" {
			t.Errorf("health names %q", resp.Header.Get(HealthProfileHeader))
		}
	}
}

// TestSignedOutMemberSaysWhy: a member whose proxy has no usable
// credential (it answers 503 "sign in to ...") drops out, and the profile's
// status and calls say what the proxy said.
func TestSignedOutMemberSaysWhy(t *testing.T) {
	t.Parallel()
	a := newServer(t, "alpha", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "one") })
	b := newServer(t, "beta", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "two") })
	b.cfg.Credentials = func(context.Context) (http.Header, error) {
		return nil, errors.New("sign in to beta in Keyport (keyport login beta)")
	}
	b.stopProxy()
	b.startProxy()
	g := startGateway(t, Config{Members: []Member{a.member(), b.member()}})
	cs := connect(t, g, nil)
	if got := toolNames(t, cs); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("tools = %v", got)
	}
	st := g.Status()
	if st.Members[1].Up || !strings.Contains(st.Members[1].Error, "sign in to beta") {
		t.Errorf("beta's status: %+v", st.Members[1])
	}
	if _, err := callText(t, cs, "two", "x"); err == nil {
		t.Error("a call to the signed-out member succeeded")
	}
}
