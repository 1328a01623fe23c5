package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

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
