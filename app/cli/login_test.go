package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keyport/app"
	"keyport/app/oauth"
	"keyport/app/oauth/oauthtest"
	"keyport/app/secrets"
)

// loginApp is an App on a test keychain (the real one under
// scripts/session.sh, with a service of the test's own) and its store.
func loginApp(t *testing.T) (*app.App, secrets.Backend, string) {
	t.Helper()
	c := newCLIEnv(t)
	a, err := app.New(c.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, c.opts.Keychain, c.opts.KeychainService
}

// keychainKinds lists server's kinds in the test keychain.
func keychainKinds(t *testing.T, kc secrets.Backend, service, server string) []string {
	t.Helper()
	kinds, err := secrets.New(secrets.Options{Backend: kc, Service: service}).Kinds(server)
	if err != nil {
		t.Fatal(err)
	}
	return kinds
}

// TestLoginNoBrowserPrintsURL: --no-browser prints the URL; opening it
// (here: the test's browser) completes the sign-in; logout removes it.
func TestLoginNoBrowserPrintsURL(t *testing.T) {
	t.Parallel()
	as := oauthtest.New(t, oauthtest.Options{Revocation: true})
	srv := oauthtest.NewMCP(t, as, oauthtest.MCPOptions{Scopes: []string{"mcp:read"}})
	a, kc, service := loginApp(t)
	noBrowser := func(string) string { return "/nonexistent/browser-must-not-run" }

	pr, pw := io.Pipe()
	var errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runLogin(context.Background(), pw, &errOut, a, loginOptions{Name: "demo", URL: srv.Endpoint, NoBrowser: true, Timeout: 20 * time.Second}, noBrowser)
		pw.Close()
	}()
	var printed strings.Builder
	sc := bufio.NewScanner(pr)
	browser := oauthtest.NewBrowser()
	for sc.Scan() {
		line := sc.Text()
		printed.WriteString(line + "\n")
		if u := strings.TrimSpace(line); strings.HasPrefix(u, as.URL+"/authorize?") {
			go browser.Open(u)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("login: %v\n%s", err, errOut.String())
	}
	out := printed.String()
	if !strings.Contains(out, "Open this URL in a browser to sign in to demo") ||
		!strings.Contains(out, "Signed in to demo (issuer "+as.URL+"; scopes mcp:read;") {
		t.Errorf("output:\n%s", out)
	}
	if page := <-browser.Done; page.Status != 200 {
		t.Errorf("browser ended on %d", page.Status)
	}

	var lo bytes.Buffer
	if err := runLogout(context.Background(), &lo, &errOut, a, "demo", true); err != nil {
		t.Fatal(err)
	}
	if kinds := keychainKinds(t, kc, service, "demo"); lo.String() != "Signed out of demo (tokens revoked).\n" || len(kinds) != 0 {
		t.Errorf("logout said %q, keychain %q", lo.String(), kinds)
	}
	lo.Reset()
	if err := runLogout(context.Background(), &lo, &errOut, a, "demo", true); err != nil || lo.String() != "demo was not signed in; nothing to do.\n" {
		t.Errorf("second logout: %v %q", err, lo.String())
	}
}

func TestLoginFailsClearly(t *testing.T) {
	t.Parallel()
	as := oauthtest.New(t, oauthtest.Options{PKCEMethods: []string{}})
	srv := oauthtest.NewMCP(t, as, oauthtest.MCPOptions{})
	a, kc, service := loginApp(t)
	var out, errOut bytes.Buffer
	err := runLogin(context.Background(), &out, &errOut, a, loginOptions{Name: "demo", URL: srv.Endpoint},
		func(string) string { return "true" })
	if kinds := keychainKinds(t, kc, service, "demo"); err == nil || !strings.Contains(err.Error(), "PKCE") || len(kinds) != 0 {
		t.Errorf("login against a server without PKCE: %v, keychain %q", err, kinds)
	}
}

func TestLoginUsage(t *testing.T) {
	t.Parallel()
	for _, argv := range [][]string{
		{"login", "--url", "https://x.example/mcp"},
		{"login", "a", "--name", "b", "--url", "https://x.example/mcp"},
		{"logout"},
	} {
		code, _, errOut := run(t, argv...)
		if code != ExitUsage || !strings.Contains(errOut, "--help") {
			t.Errorf("%q: exit %d, stderr %q; want a usage error", argv, code, errOut)
		}
	}
	// A catalog server that does not use OAuth: a failure that says why.
	code, _, errOut := run(t, "login", "demo")
	if code != ExitFailure || !strings.Contains(errOut, "sign-in is for servers with auth.type oauth") {
		t.Errorf("login demo: exit %d, stderr %q", code, errOut)
	}
}

// browserEnv is set when the test binary runs as the BROWSER command.
const browserEnv = "KEYPORT_TEST_BROWSER_URL"

// TestBrowserHelperProcess is not a test: the BROWSER script of
// TestLoginBrowserEnvKeychain runs the test binary as a headless browser.
func TestBrowserHelperProcess(t *testing.T) {
	u := os.Getenv(browserEnv)
	if u == "" {
		t.Skip("helper process for TestLoginBrowserEnvKeychain")
	}
	if out := os.Getenv(forgeEnv); out != "" {
		// A local program racing the browser: it sends callbacks that do
		// not belong to the sign-in before the real redirect, and records
		// what each got.
		_ = os.WriteFile(out, []byte(forgeCallbacks(u)), 0o600)
	}
	b := oauthtest.NewBrowser()
	_ = b.Open(u)
	p := <-b.Done
	_ = os.WriteFile(os.Getenv("KEYPORT_TEST_BROWSER_PAGE"), []byte(p.Body), 0o600)
}

// forgeEnv names the file where the helper browser records its forged
// callbacks' answers (one "status name" line each).
const forgeEnv = "KEYPORT_TEST_BROWSER_FORGE"

// forgeCallbacks sends forged requests to the redirect URI of the
// authorization URL authURL: a wrong state, no state, and the right state
// with a foreign Host. It returns one "STATUS what" line per request.
func forgeCallbacks(authURL string) string {
	u, err := url.Parse(authURL)
	if err != nil {
		return "error " + err.Error()
	}
	redirect, state := u.Query().Get("redirect_uri"), u.Query().Get("state")
	var b strings.Builder
	for _, f := range []struct{ what, query, host string }{
		{"wrong-state", "code=forged&state=guessed", ""},
		{"no-state", "code=forged", ""},
		{"foreign-host", "code=forged&state=" + url.QueryEscape(state), "attacker.example"},
	} {
		req, err := http.NewRequest(http.MethodGet, redirect+"?"+f.query, nil)
		if err != nil {
			fmt.Fprintf(&b, "error %s\n", f.what)
			continue
		}
		if f.host != "" {
			req.Host = f.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintf(&b, "error %s %v\n", f.what, err)
			continue
		}
		resp.Body.Close()
		fmt.Fprintf(&b, "%d %s\n", resp.StatusCode, f.what)
	}
	return b.String()
}

// requireRealKeychain skips unless the test runs under scripts/session.sh,
// and fails in CI where it always should.
func requireRealKeychain(t *testing.T) {
	t.Helper()
	if os.Getenv("KEYPORT_TEST_KEYRING") == "1" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI must run keychain tests under scripts/session.sh (make test)")
	}
	t.Skip("real keychain tests run under scripts/session.sh; use make test")
}

// TestLoginBrowserEnvKeychain runs `keyport login` and `keyport logout` as
// a user would, on the real keychain (scripts/session.sh), with BROWSER set
// to a tiny script that loads the URL headlessly.
func TestLoginBrowserEnvKeychain(t *testing.T) {
	requireRealKeychain(t)
	as := oauthtest.New(t, oauthtest.Options{Revocation: true})
	srv := oauthtest.NewMCP(t, as, oauthtest.MCPOptions{})
	dir := t.TempDir()
	script, page := browserScript(t, dir)
	t.Setenv("BROWSER", script)
	c := newCLIEnv(t)
	name := "kp-cli-test-" + strings.ToLower(filepath.Base(dir))

	code, out, errOut := c.run(t, "", "login", name, "--url", srv.Endpoint, "--timeout", "30s")
	if code != ExitOK || !strings.Contains(out, "Opened the browser to sign in to "+name) || !strings.Contains(out, "Signed in to "+name) {
		t.Fatalf("login: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	store := secrets.New(secrets.Options{Backend: c.opts.Keychain, Service: c.opts.KeychainService})
	if _, err := store.Get(name, oauth.KindToken); err != nil {
		t.Fatalf("no token in the keychain after login: %v", err)
	}
	var body []byte
	for range 100 {
		if body, _ = os.ReadFile(page); len(body) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(string(body), "Signed in to "+name) {
		t.Errorf("the browser ended on %q", body)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "locks")); err != nil {
		t.Errorf("the lock directory is not in the config dir: %v", err)
	}

	code, out, errOut = c.run(t, "", "logout", name)
	if code != ExitOK || out != "Signed out of "+name+" (tokens revoked).\n" {
		t.Fatalf("logout: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if _, err := store.Get(name, oauth.KindToken); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("token after logout: %v, want not found", err)
	}
}

// browserScript writes a BROWSER script that runs this test binary as a
// headless browser (TestBrowserHelperProcess) with env added, and returns
// it with the file its final page is written to.
func browserScript(t *testing.T, dir string, env ...string) (script, page string) {
	t.Helper()
	page = filepath.Join(dir, "page.html")
	script = filepath.Join(dir, "browser.sh")
	extra := ""
	for _, e := range env {
		extra += e + " "
	}
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"+browserEnv+"=\"$1\" KEYPORT_TEST_BROWSER_PAGE='"+page+"' "+extra+
		"exec '"+os.Args[0]+"' -test.run='^TestBrowserHelperProcess$'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, page
}

// waitFile waits up to 5 s for a non-empty file and returns it.
func waitFile(t *testing.T, p string) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if b, _ := os.ReadFile(p); len(b) > 0 {
			return string(b)
		}
		if time.Now().After(deadline) {
			return ""
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLoginBinaryRefusesForgedCallbacks runs the built binary's `keyport
// login` with a BROWSER that first plays a local attacker: forged
// callbacks (wrong state, no state, the right state through a foreign
// Host) each get 400, and the real redirect that follows still signs in,
// with the tokens in the real keychain.
func TestLoginBinaryRefusesForgedCallbacks(t *testing.T) {
	requireRealKeychain(t)
	bin := keyportBinary(t)
	as := oauthtest.New(t, oauthtest.Options{Revocation: true})
	srv := oauthtest.NewMCP(t, as, oauthtest.MCPOptions{})
	dir := t.TempDir()
	forged := filepath.Join(dir, "forged.txt")
	script, page := browserScript(t, dir, forgeEnv+"='"+forged+"'")
	name := "kp-forge-" + strings.ToLower(filepath.Base(dir))

	cmd := exec.Command(bin, "login", name, "--url", srv.Endpoint, "--timeout", "30s")
	cmd.Env = append(os.Environ(), "BROWSER="+script, "KEYPORT_CONFIG_DIR="+filepath.Join(dir, "config"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	store := secrets.New(secrets.Options{})
	t.Cleanup(func() {
		for _, k := range []string{oauth.KindToken, oauth.KindClients, oauth.KindStepUp} {
			_ = store.Delete(name, k)
		}
	})
	if err != nil || !strings.Contains(out.String(), "Signed in to "+name) {
		t.Fatalf("keyport login: %v\nstdout %s\nstderr %s", err, out.String(), errOut.String())
	}
	if got := waitFile(t, forged); got != "400 wrong-state\n400 no-state\n400 foreign-host\n" {
		t.Errorf("forged callbacks got %q, want 400 each", got)
	}
	if body := waitFile(t, page); !strings.Contains(body, "Signed in to "+name) {
		t.Errorf("the browser ended on %q", body)
	}
	raw, err := store.Get(name, oauth.KindToken)
	if err != nil || !strings.Contains(raw, `"issuer":"`+as.URL+`"`) {
		t.Fatalf("token in the keychain after login: %v", err)
	}
	if errs := as.Errors(); len(errs) > 0 {
		t.Errorf("the authorization server saw bad requests: %q", errs)
	}
}
