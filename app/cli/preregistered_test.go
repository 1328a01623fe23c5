package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/internal/apptest"
	"keyport/app/oauth/oauthtest/opserver"
	"keyport/app/secrets"
)

// binaryRun runs the built keyport binaries with one environment and
// keeps everything they printed, for the secret scan.
type binaryRun struct {
	t       *testing.T
	keyport string
	env     []string
	mu      sync.Mutex
	printed bytes.Buffer
}

// run runs `keyport argv...` with stdin; it returns the exit code and what
// it printed (stdout and stderr together).
func (b *binaryRun) run(stdin string, argv ...string) (int, string) {
	b.t.Helper()
	cmd := exec.Command(b.keyport, argv...)
	cmd.Env = b.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	b.mu.Lock()
	b.printed.Write(out)
	b.mu.Unlock()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		b.t.Fatalf("keyport %s: %v", strings.Join(argv, " "), err)
	}
	return 0, string(out)
}

// Write collects a child's standard error.
func (b *binaryRun) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.printed.Write(p)
}

func (b *binaryRun) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.printed.String()
}

// TestPreregisteredClientThroughBinaries is a confidential pre-registered
// client against a real OpenID provider (zitadel/oidc's op), all through
// the built binaries on the real keychain, as a person sets it up: keyport
// add --client-id --client-secret (the secret on stdin), keyport login, a
// wrong secret refused with the fix while the tokens stay, keyport secret
// set NAME client-secret, then an AI client through keyport connect whose
// access token is refreshed (and the refresh token rotated) and whose call
// of a tool needing more scope signs in again in the browser and succeeds
// in the same session. No secret reaches a file or an output.
func TestPreregisteredClientThroughBinaries(t *testing.T) {
	requireRealKeychain(t)
	bin := keyportBinary(t)
	as := opserver.New(t, opserver.Options{AccessTokenLifetime: 4 * time.Second})
	dir := t.TempDir()
	script, page := browserScript(t, dir)
	b := &binaryRun{t: t, keyport: bin, env: append(os.Environ(),
		"KEYPORT_CONFIG_DIR="+filepath.Join(dir, "config"), "BROWSER="+script)}
	name := "zt-" + strings.ToLower(filepath.Base(dir))
	plain := name + "-plain"
	keychain := secrets.New(secrets.Options{})
	t.Cleanup(func() {
		b.run("", "rm", name, "--yes")
		b.run("", "rm", plain, "--yes")
	})
	const wrong = "wrong-secret-4f1c9a"

	// A client secret for a server that does not use OAuth: refused, with why.
	if code, out := b.run("tok-plain-7d2e\n", "add", plain, as.MCP.Endpoint, "--bearer"); code != 0 {
		t.Fatalf("add %s: %s", plain, out)
	}
	if code, out := b.run("x-secret\n", "secret", "set", plain, "client-secret"); code != ExitFailure ||
		!strings.Contains(out, `uses auth type "bearer": a client secret is only for an OAuth server`) {
		t.Errorf("secret set on a bearer server: exit %d: %s", code, out)
	}
	if code, out := b.run("", "add", name+"-x", as.MCP.Endpoint, "--bearer", "--client-id", "abc"); code != ExitUsage ||
		!strings.Contains(out, "go with --oauth") {
		t.Errorf("add --bearer --client-id: exit %d: %s", code, out)
	}

	// The client as registered, with a mistyped secret.
	if code, out := b.run(wrong+"\n", "add", name, as.MCP.Endpoint, "--oauth", "--client-id", as.ClientID, "--client-secret"); code != 0 {
		t.Fatalf("add: %s", out)
	}
	code, out := b.run("", "login", name, "--timeout", "30s")
	if code != ExitFailure || !strings.Contains(out, "the authorization server of "+name+" refused Keyport's pre-registered client") ||
		!strings.Contains(out, "keyport secret set "+name+" client-secret") {
		t.Fatalf("login with a wrong secret: exit %d: %s", code, out)
	}
	if _, err := keychain.Get(name, "oauth/token"); err == nil {
		t.Fatal("a refused sign-in stored tokens")
	}

	// The right secret: signed in; keyport ls says how Keyport is known.
	if code, out := b.run(as.ClientSecret+"\n", "secret", "set", name, "client-secret"); code != 0 {
		t.Fatalf("secret set: %s", out)
	}
	if code, out := b.run("", "login", name, "--timeout", "30s"); code != 0 || !strings.Contains(out, "Signed in to "+name) {
		t.Fatalf("login: exit %d: %s", code, out)
	}
	_, ls := b.run("", "ls", "--format", "json")
	var rows []serverRow
	if err := json.Unmarshal([]byte(ls), &rows); err != nil {
		t.Fatalf("ls: %v\n%s", err, ls)
	}
	for _, r := range rows {
		if r.Name == name && (r.OAuthClient != "pre-registered client" || !r.CredentialSet) {
			t.Errorf("ls row %+v, want a signed-in pre-registered client", r)
		}
	}
	signedIn, err := keychain.Get(name, "oauth/token")
	if err != nil {
		t.Fatal(err)
	}

	// A wrong secret later: the sign-in is refused and the tokens stay.
	b.run(wrong+"\n", "secret", "set", name, "client-secret")
	if code, out := b.run("", "login", name, "--timeout", "30s"); code != ExitFailure || !strings.Contains(out, "keyport secret set "+name+" client-secret") {
		t.Fatalf("second login with a wrong secret: exit %d: %s", code, out)
	}
	if now, _ := keychain.Get(name, "oauth/token"); now != signedIn {
		t.Error("a refused sign-in replaced the stored tokens")
	}
	b.run(as.ClientSecret+"\n", "secret", "set", name, "client-secret")
	before := as.Stats()

	// An AI client through keyport connect (the bridge runs its own proxy).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	connect := exec.Command(cliBinary(t, bin), "connect", name)
	connect.Env = b.env
	connect.Stderr = b
	client := mcp.NewClient(&mcp.Implementation{Name: "ai-client", Version: "1"}, nil)
	s, err := client.Connect(ctx, &mcp.CommandTransport{Command: connect}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, b.output())
	}
	defer s.Close()
	callOK := func(tool string) {
		t.Helper()
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"text": "hi"}})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v\nlogs:\n%s", tool, err, res, b.output())
		}
	}
	callOK("echo")
	time.Sleep(2500 * time.Millisecond) // past half the access token's life
	callOK("echo")
	if st := as.Stats(); st.Refreshes <= before.Refreshes || st.Reused != 0 {
		t.Errorf("authorization server saw %+v after %+v: want a refresh and no reuse of a rotated token", st, before)
	}
	// Step-up: the admin tool needs mcp:admin; the bridge's proxy opens the
	// browser, signs in for the wider scope, and sends the call again.
	os.Remove(page)
	callOK("admin")
	if st := as.Stats(); st.Authorizations != before.Authorizations+1 {
		t.Errorf("authorizations %d -> %d, want one step-up sign-in", before.Authorizations, st.Authorizations)
	}
	if p := waitFile(t, page); !strings.Contains(p, "Signed in to "+name) {
		t.Errorf("the step-up's browser ended on %q", p)
	}
	callOK("echo") // the session goes on
	s.Close()

	// keyport secret rm removes the client secret; the sign-in stays.
	if code, out := b.run("", "secret", "rm", name); code != 0 {
		t.Fatalf("secret rm: %s", out)
	}
	if _, err := keychain.Get(name, "oauth/client-secret"); err == nil {
		t.Error("the client secret survived keyport secret rm")
	}
	if _, err := keychain.Get(name, "oauth/token"); err != nil {
		t.Errorf("keyport secret rm removed the sign-in: %v", err)
	}

	// No secret in any file Keyport wrote or anything it printed.
	raw, err := keychain.Get(name, "oauth/token")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal([]byte(raw), &rec); err != nil || rec.AccessToken == "" || rec.RefreshToken == "" {
		t.Fatalf("the stored sign-in: %v", err)
	}
	printed := b.output()
	for _, secret := range append(as.Secrets(), wrong, "tok-plain-7d2e", rec.AccessToken, rec.RefreshToken) {
		apptest.ScanForSecret(t, secret, dir)
		if strings.Contains(printed, secret) {
			t.Errorf("a secret (%d bytes) was printed", len(secret))
		}
	}
}
