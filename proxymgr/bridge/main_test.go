package bridge_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr/bridge"
)

// The test binary doubles as the programs the tests run as subprocesses:
//
//	TESTBIN bridge-child -url URL [flags]   the bridge over its stdio
//	TESTBIN conformance-client URL           a go-sdk client driving the bridge (conformance_test.go)
//
// so the tests exercise real processes without building the GUI binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "bridge-child":
			os.Exit(bridgeChild(os.Args[2:]))
		case "conformance-client":
			os.Exit(conformanceClient(os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

// headerFlags collects repeated -header "K: V" flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// bridgeChild runs the bridge on this process's stdio, configured by args.
func bridgeChild(args []string) int {
	fs := flag.NewFlagSet("bridge-child", flag.ContinueOnError)
	url := fs.String("url", "", "endpoint")
	name := fs.String("name", "upstream", "server name")
	noReconnect := fs.Bool("no-auto-reconnect", false, "")
	wait := fs.Duration("request-wait", 2*time.Second, "")
	var headers headerFlags
	fs.Var(&headers, "header", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	h := http.Header{}
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ":")
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	cfg := bridge.Config{
		Name: *name, URL: *url, In: os.Stdin, Out: os.Stdout,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AutoReconnect: !*noReconnect,
		RequestWait:   *wait,
		MinBackoff:    20 * time.Millisecond,
		MaxBackoff:    200 * time.Millisecond,
		Header:        func(context.Context) (http.Header, error) { return h.Clone(), nil },
	}
	if err := bridge.Run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bridge:", err)
		return 1
	}
	return 0
}

// syncBuffer is a bytes.Buffer safe for a subprocess's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bridgeCmd returns the command running the bridge against url. Its
// stderr (the bridge's logs) is shown when the test fails.
func bridgeCmd(t *testing.T, url string, extra ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"bridge-child", "-url", url}, extra...)...)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge logs:\n%s", logs.String())
		}
	})
	return cmd
}

// clientEvents records what the client receives from the server.
type clientEvents struct {
	mu        sync.Mutex
	progress  []string
	logs      []string
	updated   []string
	toolsList int
	samples   int
	elicits   int
}

func (e *clientEvents) snapshot() clientEvents {
	e.mu.Lock()
	defer e.mu.Unlock()
	return clientEvents{progress: append([]string(nil), e.progress...), logs: append([]string(nil), e.logs...),
		updated: append([]string(nil), e.updated...), toolsList: e.toolsList, samples: e.samples, elicits: e.elicits}
}

// newClient returns a go-sdk client with every client feature enabled:
// sampling, elicitation, roots, and handlers for server notifications.
func newClient(ev *clientEvents) *mcp.Client {
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0.0"}, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			ev.mu.Lock()
			ev.samples++
			ev.mu.Unlock()
			return &mcp.CreateMessageResult{Model: "test-model", Role: "assistant", Content: &mcp.TextContent{Text: "hi from the model"}}, nil
		},
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			ev.mu.Lock()
			ev.elicits++
			ev.mu.Unlock()
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			ev.mu.Lock()
			ev.progress = append(ev.progress, req.Params.Message)
			ev.mu.Unlock()
		},
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			ev.mu.Lock()
			ev.logs = append(ev.logs, string(req.Params.Level))
			ev.mu.Unlock()
		},
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			ev.mu.Lock()
			ev.updated = append(ev.updated, req.Params.URI)
			ev.mu.Unlock()
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			ev.mu.Lock()
			ev.toolsList++
			ev.mu.Unlock()
		},
	})
	c.AddRoots(&mcp.Root{URI: "file:///workspace", Name: "workspace"})
	return c
}

// connect starts the bridge command and connects a client through it.
func connect(t *testing.T, cmd *exec.Cmd, version string, ev *clientEvents) *mcp.ClientSession {
	t.Helper()
	if ev == nil {
		ev = &clientEvents{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var opts *mcp.ClientSessionOptions
	if version != "" {
		opts = &mcp.ClientSessionOptions{ProtocolVersion: version}
	}
	cs, err := newClient(ev).Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}, opts)
	if err != nil {
		t.Fatalf("connect through the bridge: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func callText(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	text, err := resultText(res)
	if err != nil || res.IsError {
		t.Fatalf("call %s: error result %+v", tool, res.Content)
	}
	return text
}
