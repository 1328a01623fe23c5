package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app"
	"keyport/app/internal/apptest"
	"keyport/proxymgr/peercred"
	"keyport/proxymgr/peercred/peertest"
)

// cliBinary is the built keyport-cli (beside KEYPORT_BIN, which make test
// sets), or KEYPORT_BIN itself.
func cliBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KEYPORT_BIN")
	if bin == "" {
		t.Skip("KEYPORT_BIN is not set (make test sets it to bin/keyport): skipping the test of the built binary")
	}
	if cli := filepath.Join(filepath.Dir(bin), "keyport-cli"); fileExists(cli) {
		return cli
	}
	return bin
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// runBinary starts `bin args...` with env added to this process's
// environment and returns its first stdout line, and stop, which
// interrupts it (as Ctrl-C does), checks that it exits cleanly and returns
// the rest of its stdout. stop runs when the test ends if not before.
func runBinary(t *testing.T, bin string, env []string, args ...string) (first string, stop func() string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var errb syncBuffer
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	var (
		more strings.Builder
		once sync.Once
	)
	done := make(chan struct{})
	stop = func() string {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("%s %s: %v; stderr:\n%s", filepath.Base(bin), strings.Join(args, " "), err, errb.String())
			}
		})
		return more.String()
	}
	t.Cleanup(func() { stop() })
	first, err = r.ReadString('\n')
	if err != nil {
		close(done)
		t.Fatalf("%s printed nothing: %v; stderr:\n%s", filepath.Base(bin), err, errb.String())
	}
	go func() { io.Copy(&more, r); close(done) }()
	return first, stop
}

// mcpConversation is a client's initialize, initialized and tools/call
// tool(text), then a GET of the health endpoint.
func mcpConversation(port, tool, text string) []peertest.Request {
	url := "http://127.0.0.1:" + port + "/mcp"
	proto := map[string]string{"Mcp-Protocol-Version": "2025-11-25"}
	return []peertest.Request{
		{URL: url, Body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"peer","version":"1"}}}`},
		{URL: url, Header: proto, Body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
		{URL: url, Header: proto, Body: `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + tool + `","arguments":{"text":"` + text + `"}}}`},
		{Method: http.MethodGet, URL: "http://127.0.0.1:" + port + "/.keyport/health"},
	}
}

// assertAllRefused checks every answer is the 403 of another user.
func assertAllRefused(t *testing.T, got []peertest.Response) {
	t.Helper()
	for i, r := range got {
		var m struct {
			Error struct{ Message string } `json:"error"`
		}
		json.Unmarshal([]byte(r.Body), &m)
		if r.Status != http.StatusForbidden || !strings.Contains(m.Error.Message, "belongs to another user of this machine") {
			t.Errorf("other user's request %d: %d %q %s, want 403 saying the proxy belongs to another user", i, r.Status, r.Body, r.Err)
		}
	}
}

var portLine = regexp.MustCompile(`^Proxying connections to (\S+) on 127\.0\.0\.1:(\d+)\n$`)

// TestBinaryRefusesOtherUsers runs the built keyport-cli as a user would
// and attacks it from another OS user (nobody): a catalog server with a
// bearer token in the keychain (`keyport proxy NAME`) and a bare
// `keyport proxy --upstream URL`. The other user's client gets 403 for
// everything and the upstream receives nothing from it; the same client
// run as the owner works, and the upstream sees the injected token.
func TestBinaryRefusesOtherUsers(t *testing.T) {
	bin := cliBinary(t)
	peertest.RequireRoot(t)
	if s := app.PeerCheck(); !s.Active {
		t.Skipf("no peer check on this system: %v", s)
	}
	t.Run("catalog server", func(t *testing.T) {
		if os.Getenv("KEYPORT_TEST_KEYRING") != "1" {
			t.Skip("the binary keeps the token in the OS keychain: run under scripts/session.sh (make test) for a private one")
		}
		const token = "tok-peer-e2e-3c1d-never-for-nobody"
		up := apptest.NewUpstream(t, token)
		home := t.TempDir()
		env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "KEYPORT_CONFIG_DIR=" + filepath.Join(home, "keyport")}
		add := exec.Command(bin, "add", "peere2e", up.URL, "--bearer")
		add.Env = append(os.Environ(), env...)
		add.Stdin = strings.NewReader(token + "\n")
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("keyport-cli add: %v: %s", err, out)
		}
		t.Cleanup(func() {
			rm := exec.Command(bin, "rm", "peere2e", "--yes")
			rm.Env = append(os.Environ(), env...)
			if out, err := rm.CombinedOutput(); err != nil {
				t.Errorf("keyport-cli rm: %v: %s", err, out)
			}
		})
		first, stop := runBinary(t, bin, env, "proxy", "peere2e")
		m := portLine.FindStringSubmatch(first)
		if m == nil || m[1] != "peere2e" {
			t.Fatalf("keyport-cli proxy announced %q", first)
		}
		assertAllRefused(t, peertest.Do(t, peertest.Nobody, mcpConversation(m[2], "search", "from-nobody")...))
		if auths := up.Auths(); len(auths) != 0 {
			t.Fatalf("the upstream received %d requests from another user's client", len(auths))
		}
		got := peertest.Do(t, peertest.Owner, mcpConversation(m[2], "search", "from-owner")...)
		if got[2].Status != 200 || !strings.Contains(got[2].Body, "search:from-owner") || got[3].Status != 200 {
			t.Fatalf("the owner's client: %+v", got)
		}
		if !up.SawOnly("Bearer "+token) || strings.Join(up.Called(), ",") != "search" {
			t.Errorf("the upstream saw %q and ran %q; want the injected token and the owner's call only", up.Auths(), up.Called())
		}
		if r := stop(); r != "" {
			t.Errorf("keyport-cli proxy printed more than its first line where the check is active: %q", r)
		}
	})
	t.Run("--upstream", func(t *testing.T) {
		var mu sync.Mutex
		var seen []string
		srv := mcp.NewServer(&mcp.Implementation{Name: "open", Version: "1"}, nil)
		mcp.AddTool(srv, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
			Text string `json:"text"`
		}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo:" + in.Text}}}, nil, nil
		})
		h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodHead {
				mu.Lock()
				seen = append(seen, r.Method)
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(ts.Close)
		home := t.TempDir()
		first, _ := runBinary(t, bin, []string{"HOME=" + home, "KEYPORT_CONFIG_DIR=" + filepath.Join(home, "keyport")},
			"proxy", "--upstream", ts.URL+"/mcp", "--name", "open")
		m := portLine.FindStringSubmatch(first)
		if m == nil {
			t.Fatalf("keyport-cli proxy announced %q", first)
		}
		assertAllRefused(t, peertest.Do(t, peertest.Nobody, mcpConversation(m[2], "echo", "from-nobody")...))
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n != 0 {
			t.Fatalf("the upstream received %d requests from another user's client", n)
		}
		got := peertest.Do(t, peertest.Owner, mcpConversation(m[2], "echo", "from-owner")...)
		if got[2].Status != 200 || !strings.Contains(got[2].Body, "echo:from-owner") {
			t.Fatalf("the owner's client: %+v", got)
		}
	})
}

// TestBinarySaysWhetherOthersAreKeptOut: `keyport version` says whether the
// same-user check is active here.
func TestBinarySaysWhetherOthersAreKeptOut(t *testing.T) {
	bin := cliBinary(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "keyport "+app.Version+" ") || lines[1] != app.PeerCheck().String() {
		t.Fatalf("keyport version printed %q, want the version and %q", out, app.PeerCheck().String())
	}
	if app.PeerCheck().Active && !strings.Contains(lines[1], "peer check: ") {
		t.Errorf("the active check's line does not say how it checks: %q", lines[1])
	}
}

func TestPeerCheckNote(t *testing.T) {
	if got := peerCheckNote(peercred.Support{Active: true, Method: "netlink sock_diag"}); got != "" {
		t.Errorf("active check: note %q, want none", got)
	}
	got := peerCheckNote(peercred.Support{Reason: "not implemented on plan9"})
	if got != "Warning: other users of this machine can use this proxy: no same-user check on this system (not implemented on plan9)" {
		t.Errorf("no check: note %q", got)
	}
}
