package proxymgr

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestGoSDKClientThroughProxy runs a real go-sdk client against real go-sdk
// servers (stateful with the 2025-11-25 protocol, stateless with 2026-07-28)
// through the proxy: list, call, progress notifications.
func TestGoSDKClientThroughProxy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		stateless bool
		proto     string
	}{
		{"stateful-2025-11-25", false, "2025-11-25"},
		{"stateful-2025-03-26", false, "2025-03-26"},
		{"stateless-2026-07-28", true, "2026-07-28"},
		{"stateful-latest", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, tc.stateless)
			p := startProxy(t, Config{Upstream: up.url()})
			progress := make(chan float64, 10)
			cs := connect(t, p.URL(), &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
				progress <- r.Params.Progress
			}}, tc.proto)
			ctx := ctxT(t)
			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if names := toolNames(tools); !slices.Contains(names, "echo") || !slices.Contains(names, "delete_repo") {
				t.Fatalf("tools %v", names)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "héllo"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := resultText(t, res); got != "héllo" {
				t.Fatalf("echo = %q", got)
			}
			params := &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"n": 3}}
			params.SetProgressToken("tok")
			res, err = cs.CallTool(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := resultText(t, res); got != "done 3" {
				t.Fatalf("progress = %q", got)
			}
			// The client delivers notifications asynchronously.
			for i := range 3 {
				select {
				case <-progress:
				case <-time.After(5 * time.Second):
					t.Fatalf("got %d progress notifications, want 3", i)
				}
			}
			st := p.Status()
			if st.State != StateRunning || st.Counters.Requests < 3 || st.Counters.BytesOut == 0 || st.Latency <= 0 {
				t.Errorf("status %+v", st)
			}
			if !tc.stateless && st.Counters.Sessions != 1 {
				t.Errorf("sessions = %d, want 1", st.Counters.Sessions)
			}
		})
	}
}

// TestRootPathAndUpstreamPath: / and /mcp both reach the upstream's own path;
// other paths are 404 with a JSON-RPC error.
func TestRootPathAndUpstreamPath(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url()})
	root := "http://" + p.Addr() + "/"
	cs := connect(t, root, nil, "2025-11-25")
	if _, err := cs.ListTools(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	code, _, body := rawPost(t, "http://"+p.Addr()+"/other", nil, initBody)
	if code != http.StatusNotFound || !strings.Contains(body, `"code":-32600`) || !strings.Contains(body, "/mcp") {
		t.Fatalf("other path: %d %s", code, body)
	}
}

func TestStartPortInUse(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, false)
	a := startProxy(t, Config{Upstream: up.url()})
	b, err := New(Config{Name: "b", Upstream: up.url(), Port: a.Port(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(context.Background())
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), a.Addr()[len("127.0.0.1:"):]) {
		t.Fatalf("Start on a used port: %v; want ErrPortInUse naming the port", err)
	}
	if st := b.Status(); st.State != StateError || st.LastError == "" {
		t.Fatalf("status after failed start: %+v", st)
	}
}
