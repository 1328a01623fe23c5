package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
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

func testMCPServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	type in struct {
		Text string `json:"text,omitempty"`
	}
	for _, name := range []string{"echo", "delete_all"} {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(_ context.Context, _ *mcp.CallToolRequest, a in) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: a.Text}}}, nil, nil
		})
	}
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(ts.Close)
	return ts
}

func TestProxyCommand(t *testing.T) {
	t.Parallel()
	ts := testMCPServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"proxy", "gh", "--upstream", ts.URL + "/mcp", "--deny", "delete_*"}, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
	line := regexp.MustCompile(`^Proxying connections to gh on 127\.0\.0\.1:(\d+)\n$`)
	var port string
	deadline := time.Now().Add(10 * time.Second)
	for port == "" {
		if m := line.FindStringSubmatch(out.String()); m != nil {
			port = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("stdout %q, stderr %q", out.String(), errb.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://127.0.0.1:" + port + "/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.ListTools(ctx, nil)
	if err != nil || len(res.Tools) != 1 || res.Tools[0].Name != "echo" {
		t.Fatalf("tools through the proxy: %v %v", res, err)
	}
	cs.Close()
	cancel() // Ctrl-C
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit %d, stderr %q", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not stop when interrupted")
	}
	if strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("stdout must hold only the announcement: %q", out.String())
	}
}

func TestProxyCommandErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	tests := []struct {
		argv []string
		code int
		want string
	}{
		{[]string{"proxy"}, ExitUsage, "--upstream"},
		{[]string{"proxy", "github"}, ExitFailure, `no server "github"`},
		{[]string{"proxy", "github", "--deny", "x"}, ExitUsage, "go with --upstream"},
		{[]string{"proxy", "a", "--name", "b", "--upstream", "http://x/"}, ExitUsage, "named twice"},
		{[]string{"proxy", "--upstream", "ftp://x/"}, ExitUsage, "scheme must be https or http"},
		{[]string{"proxy", "--upstream", "http://x/", "--deny", "^(bad$"}, ExitUsage, `deny pattern 1 "^(bad$"`},
		{[]string{"proxy", "--upstream", "http://x/", "-p", "99999"}, ExitUsage, "port 99999"},
		{[]string{"proxy", "--upstream", "http://127.0.0.1:9/mcp", "-p", held}, ExitFailure, "port " + held + " on 127.0.0.1 is in use"},
	}
	for _, tc := range tests {
		code, out, errOut := run(t, tc.argv...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d mentioning %q", tc.argv, code, out, errOut, tc.code, tc.want)
		}
	}
}
