package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/internal/apptest"
	"keyport/app/oauth"
	"keyport/app/oauth/oauthtest"
)

// TestOAuthSignInResumesTraffic: a proxy for a signed-out OAuth server
// answers 503 "sign in to NAME in Keyport"; after SignIn (a headless
// browser follows the redirects) traffic flows through the same running
// proxy, and the tokens are only in the keychain.
func TestOAuthSignInResumesTraffic(t *testing.T) {
	te := newTestEnv(t)
	as := oauthtest.New(t, oauthtest.Options{})
	m := oauthtest.NewMCP(t, as, oauthtest.MCPOptions{})
	writeServers(t, te, serversYAML("  - name: notes\n    url: "+m.Endpoint+"\n    auth:\n      type: oauth\n"))
	a := newTestApp(t, te)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.SetProxyEnabled(context.Background(), "notes", true); err != nil {
		t.Fatal(err)
	}
	v, _ := a.Server("notes")
	if !v.Credential.SignInNeeded {
		t.Errorf("a server never signed in must say so: %+v", v.Credential)
	}
	resp, err := http.Post(v.LocalURL, "application/json", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "sign in to notes in Keyport (keyport login notes)") {
		t.Fatalf("signed out: %d %s; want 503 and the sign-in hint", resp.StatusCode, body)
	}

	if err := a.SignIn(context.Background(), "notes", oauthtest.NewBrowser().Open); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if v, _ := a.Server("notes"); !v.Credential.Set || v.Credential.SignInNeeded {
		t.Errorf("after sign-in: %+v", v.Credential)
	}
	if got := apptest.ToolNames(t, apptest.Connect(t, v.LocalURL)); len(got) == 0 {
		t.Error("no tools through the proxy after sign-in")
	}

	raw, err := a.oauthStore().Get("notes", oauth.KindToken)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	json.Unmarshal([]byte(raw), &rec)
	if rec.AccessToken == "" {
		t.Fatal("no access token in the keychain")
	}
	apptest.ScanForSecret(t, rec.AccessToken, te.home)
	if rec.RefreshToken != "" {
		apptest.ScanForSecret(t, rec.RefreshToken, te.home)
	}

	if err := a.SignOut(context.Background(), "notes"); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Server("notes"); !v.Credential.SignInNeeded {
		t.Errorf("after sign-out: %+v", v.Credential)
	}
}

// TestTrayStepUpWaitsForTheUser: in the tray app (PromptTray), a call that
// needs more scope is held while Keyport notifies "Sign in to NAME" and
// the server reads as needing a sign-in (the tray's menu item); the user's
// sign-in (the menu's action) lets the same call through, in the same
// session. With nobody signing in, the call ends with the 503 after the
// wait, and no browser is ever opened by Keyport itself.
func TestTrayStepUpWaitsForTheUser(t *testing.T) {
	te := newTestEnv(t)
	as := oauthtest.New(t, oauthtest.Options{})
	m := oauthtest.NewMCP(t, as, oauthtest.MCPOptions{Scopes: []string{"mcp:read"}, AdminScope: "mcp:admin"})
	writeServers(t, te, serversYAML("  - name: notes\n    url: "+m.Endpoint+"\n    auth:\n      type: oauth\n"))
	a := newTestApp(t, te)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	opened := 0
	a.SetSignInPrompt(PromptTray, func(string) error { opened++; return nil }, 3*time.Second)
	if err := a.SignIn(context.Background(), "notes", oauthtest.NewBrowser().Open); err != nil {
		t.Fatal(err)
	}
	if err := a.SetProxyEnabled(context.Background(), "notes", true); err != nil {
		t.Fatal(err)
	}
	v, _ := a.Server("notes")
	s := apptest.Connect(t, v.LocalURL)

	// Nobody signs in: the call fails after the wait, saying what to do.
	_, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "admin", Arguments: map[string]any{"text": "x"}})
	if err == nil || !strings.Contains(err.Error(), "Service Unavailable") && !strings.Contains(err.Error(), "sign in to notes") {
		t.Fatalf("admin without a sign-in: %v", err)
	}
	if v, _ := a.Server("notes"); !v.Credential.SignInNeeded {
		t.Error("a server waiting for more scope must offer Sign in")
	}

	// The user answers the notification: the call goes through.
	events, cancel := a.Subscribe()
	defer cancel()
	a.prompts.mu.Lock()
	a.prompts.notified = nil          // a new notice, as a minute later
	a.prompts.wait = 30 * time.Second // the user takes a moment (and a loaded CI machine too)
	a.prompts.mu.Unlock()
	go func() {
		for ev := range events {
			if ev.Kind == EventNotice && ev.Title == "Sign in to notes" {
				_ = a.SignIn(context.Background(), "notes", oauthtest.NewBrowser().Open) // the tray's menu item
				return
			}
		}
	}()
	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "admin", Arguments: map[string]any{"text": "x"}})
	if err != nil || res.IsError {
		t.Fatalf("admin after the user signed in: %v %+v", err, res)
	}
	if scopes := as.LastAuthorize().Get("scope"); !strings.Contains(scopes, "mcp:admin") || !strings.Contains(scopes, "mcp:read") {
		t.Errorf("the sign-in asked for %q, want the union with mcp:admin", scopes)
	}
	if v, _ := a.Server("notes"); v.Credential.SignInNeeded {
		t.Error("still needs a sign-in after it")
	}
	if opened != 0 {
		t.Errorf("the tray app opened the browser itself %d times", opened)
	}
}

// TestBrowserPromptAtMostOncePerMinute: a proxy that opens the browser on
// its own (keyport connect, keyport proxy in a terminal) does so once for
// a step-up nobody completes, then not again within the minute, across
// requests: the requests end with the 503, never in a loop of browsers.
func TestBrowserPromptAtMostOncePerMinute(t *testing.T) {
	te := newTestEnv(t)
	as := oauthtest.New(t, oauthtest.Options{})
	m := oauthtest.NewMCP(t, as, oauthtest.MCPOptions{Scopes: []string{"mcp:read"}, AdminScope: "mcp:admin"})
	writeServers(t, te, serversYAML("  - name: notes\n    url: "+m.Endpoint+"\n    auth:\n      type: oauth\n"))
	a := newTestApp(t, te)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.SignIn(context.Background(), "notes", oauthtest.NewBrowser().Open); err != nil {
		t.Fatal(err)
	}
	var opened atomic.Int32
	a.SetSignInPrompt(PromptBrowser, func(string) error { opened.Add(1); return nil }, 5*time.Second) // the person never finishes
	if err := a.SetProxyEnabled(context.Background(), "notes", true); err != nil {
		t.Fatal(err)
	}
	v, _ := a.Server("notes")
	s := apptest.Connect(t, v.LocalURL)
	for i := range 3 {
		if _, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "admin", Arguments: map[string]any{"text": "x"}}); err == nil {
			t.Fatalf("call %d succeeded without the scope", i)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("the browser was opened %d times for three calls within a minute, want 1", n)
	}
	if res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err != nil || res.IsError {
		t.Errorf("a call within the granted scope: %v %+v", err, res)
	}
}

// TestOAuthClientModeShown: before any sign-in, each OAuth server says how
// Keyport will be known to its authorization server — the label keyport ls
// and the detail view show — from its configuration.
func TestOAuthClientModeShown(t *testing.T) {
	te := newTestEnv(t)
	oauthServer := func(name, extra string) string {
		return "  - name: " + name + "\n    url: https://" + name + ".example/mcp\n    auth:\n      type: oauth\n" + extra
	}
	writeServers(t, te, serversYAML(
		oauthServer("prereg", "      client_id: keyport-app\n"),
		oauthServer("cimd", "      client_metadata_url: https://example.com/keyport/client.json\n"),
		oauthServer("dcr", ""),
	))
	a := newTestApp(t, te)
	for name, want := range map[string]string{"prereg": OAuthPreregistered, "cimd": OAuthMetadataURL, "dcr": OAuthDynamic} {
		v, err := a.Server(name)
		if err != nil {
			t.Fatal(err)
		}
		if v.Credential.OAuthClient != want {
			t.Errorf("%s: OAuthClient = %q, want %q", name, v.Credential.OAuthClient, want)
		}
	}
}
