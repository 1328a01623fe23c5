package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/internal/apptest"
)

// cursorURL reads the URL of server's entry in the Cursor config file the
// binary wrote under its home.
func cursorURL(t *testing.T, b *apptest.Binary, server string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.Home, ".cursor", "mcp.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		MCPServers map[string]struct {
			URL string `json:"url"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("cursor config: %v\n%s", err, raw)
	}
	u := cfg.MCPServers["keyport-"+server].URL
	if u == "" {
		t.Fatalf("no keyport-%s entry in the cursor config:\n%s", server, raw)
	}
	return u
}

// TestBinaryEndpointsStayPut is the report of issue 16 as a new user meets
// it, through the built keyport-cli: `config NAME --client-config=cursor`
// writes a URL with a port Keyport chose and says nothing serves it yet;
// `proxy NAME` (no -p) serves exactly that URL, config then says so, and a
// second `proxy NAME` says Keyport already serves it. `connect NAME`'s own
// proxy serves the same URL while it runs.
func TestBinaryEndpointsStayPut(t *testing.T) {
	t.Parallel()
	const token = "tok-endpoints-5e1f-never-leaves"
	b := apptest.NewBinary(t)
	up := apptest.NewUpstream(t, token)
	b.WriteServers(t, fmt.Sprintf(`servers:
  - name: acme
    url: %s
    auth: {type: bearer}
  - name: beta
    url: %s
    auth: {type: bearer}
`, up.URL, up.URL))
	for _, name := range []string{"acme", "beta"} {
		if code, _, errOut := b.Run(t, token+"\n", "secret", "set", name); code != 0 {
			t.Fatalf("secret set %s: exit %d: %s", name, code, errOut)
		}
	}

	code, out, errOut := b.Run(t, "", "config", "acme", "--client-config=cursor")
	entry := cursorURL(t, b, "acme")
	if code != 0 || !strings.Contains(out, "acme: "+entry+" is not running") || !strings.Contains(out, "'keyport proxy acme'") {
		t.Fatalf("config before the proxy runs: exit %d, stdout %q, stderr %q; want it to say %s is not running and how to start it", code, out, errOut, entry)
	}

	port, _ := b.StartProxy(t, "acme")
	if want := "http://127.0.0.1:" + port + "/mcp"; want != entry {
		t.Fatalf("keyport proxy acme listens at %s, but the cursor entry says %s", want, entry)
	}
	s := apptest.Connect(t, entry)
	if got := apptest.ToolNames(t, s); len(got) != 2 {
		t.Fatalf("tools at the cursor entry's URL = %v", got)
	}

	if code, out, _ := b.Run(t, "", "config", "acme", "--client-config=cursor"); code != 0 || !strings.Contains(out, "acme: "+entry+" is running.") {
		t.Errorf("config with the proxy running: exit %d, stdout %q", code, out)
	}
	if code, _, errOut := b.Run(t, "", "config", "acme"); code != 0 || !strings.Contains(errOut, "is running") {
		t.Errorf("config printing the block: exit %d, stderr %q; want the endpoint's state on stderr", code, errOut)
	}
	if code, out, errOut := b.Run(t, "", "proxy", "acme"); code != 1 || out != "" ||
		!strings.Contains(errOut, "Keyport already serves acme on 127.0.0.1:"+port) {
		t.Errorf("a second proxy acme: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// beta: wired into Cursor, then served by a stdio bridge's own proxy
	// (no app, no keyport proxy): Cursor's URL reaches it.
	if code, _, errOut := b.Run(t, "", "config", "beta", "--client-config=cursor"); code != 0 {
		t.Fatalf("config beta: exit %d: %s", code, errOut)
	}
	betaURL := cursorURL(t, b, "beta")
	bridge := mcp.NewClient(&mcp.Implementation{Name: "stdio-client", Version: "1"}, nil)
	bs, err := bridge.Connect(context.Background(), &mcp.CommandTransport{Command: b.Command("connect", "beta")}, nil)
	if err != nil {
		t.Fatalf("connect beta: %v", err)
	}
	defer bs.Close()
	if got := apptest.ToolNames(t, bs); len(got) != 2 {
		t.Fatalf("tools over the bridge = %v", got)
	}
	if got, err := apptest.TryToolNames(betaURL); err != nil || len(got) != 2 {
		t.Errorf("Cursor's URL for beta %s while the bridge runs: tools %v, %v", betaURL, got, err)
	}
	if u, _ := url.Parse(betaURL); u.Port() == port {
		t.Errorf("beta got acme's port %s", port)
	}
	if !up.SawOnly("Bearer " + token) {
		t.Error("the upstream did not get the token on every request")
	}
	apptest.ScanForSecret(t, token, b.Home)
}
