package oauth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"keyport/app/oauth/oauthtest/opserver"
)

// TestOpenIDProviderConfidentialClient signs in to a second, real
// authorization server (zitadel/oidc's op) with a pre-registered
// confidential client: the token request authenticates with the secret,
// a wrong secret is refused with the fix and leaves the keychain as it
// was, refresh tokens rotate (the spent one is never presented again),
// and a step-up adds the scope the admin tool needs.
func TestOpenIDProviderConfidentialClient(t *testing.T) {
	t.Parallel()
	as := opserver.New(t, opserver.Options{AccessTokenLifetime: 4 * time.Second})
	store := NewMemoryStore()
	lockDir := t.TempDir()
	cfg := LoginConfig{
		Server: "zitadel", ResourceURL: as.MCP.Endpoint, ClientID: as.ClientID, ClientSecret: "not-the-secret",
		OpenBrowser: browse, Store: store, Logger: quietLogger(t), LockDir: lockDir, Timeout: 20 * time.Second,
	}

	// A wrong secret: refused, naming the server and the fix; nothing stored.
	_, err := Login(context.Background(), cfg)
	var cre *ClientRefusedError
	if !errors.As(err, &cre) || !strings.Contains(err.Error(), "keyport secret set zitadel client-secret") || len(store.Keys()) != 0 {
		t.Fatalf("wrong secret: %v; keychain %q", err, store.Keys())
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Error("the error shows the secret")
	}

	cfg.ClientSecret = as.ClientSecret
	res, err := Login(context.Background(), cfg)
	if err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	if res.Registration != "preregistered" || !res.Refreshable || !slices.Contains(res.Scopes, opserver.ReadScope) || slices.Contains(res.Scopes, opserver.AdminScope) {
		t.Fatalf("sign-in result %+v", res)
	}
	before := store.Snapshot()

	// A wrong secret again: refused, the previous sign-in stays.
	bad := cfg
	bad.ClientSecret = "still-wrong"
	if _, err := Login(context.Background(), bad); !errors.As(err, &cre) {
		t.Fatalf("wrong secret after a sign-in: %v", err)
	}
	if after := store.Snapshot(); after["zitadel/"+KindToken] != before["zitadel/"+KindToken] {
		t.Error("a refused sign-in changed the stored tokens")
	}

	// Refresh with rotation: the access token lives 4 s; each refresh
	// spends the refresh token and gets a new one.
	creds, err := NewCredentials(CredentialsConfig{Server: "zitadel", ResourceURL: as.MCP.Endpoint, Store: store, LockDir: lockDir, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	call := func(tool string) int {
		t.Helper()
		h, err := creds.Header(context.Background())
		if err != nil {
			t.Fatalf("header: %v", err)
		}
		return mcpCall(t, as.MCP.Endpoint, h.Get("Authorization"), tool)
	}
	if code := call("echo"); code != http.StatusOK {
		t.Fatalf("echo with the first token: %d", code)
	}
	time.Sleep(2500 * time.Millisecond) // past half the token's life
	if code := call("echo"); code != http.StatusOK {
		t.Fatalf("echo after the refresh: %d", code)
	}
	if st := as.Stats(); st.Refreshes != 1 || st.Reused != 0 {
		t.Errorf("authorization server saw %+v, want one refresh and no reuse", st)
	}

	// Step-up: the admin tool needs another scope.
	if code := call("admin"); code != http.StatusForbidden {
		t.Fatalf("admin without its scope: %d", code)
	}
	cfg.Challenge = http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope", scope="mcp:read mcp:admin"`}}
	res, err = Login(context.Background(), cfg)
	if err != nil || !slices.Contains(res.Scopes, opserver.AdminScope) || !slices.Contains(res.Scopes, opserver.ReadScope) {
		t.Fatalf("step-up sign-in: %v %+v", err, res)
	}
	creds.Reload()
	if code := call("admin"); code != http.StatusOK {
		t.Fatalf("admin after the step-up: %d", code)
	}
	if st := as.Stats(); st.Authorizations != 4 {
		t.Errorf("authorizations = %d, want 4 (two refused for the wrong secret, the sign-in and the step-up)", st.Authorizations)
	}
}

// browse is a headless browser following the redirects.
func browse(u string) error {
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Get(u)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// mcpCall opens a session on the MCP endpoint with authorization, calls
// tool and returns the HTTP status of the call.
func mcpCall(t *testing.T, endpoint, authorization, tool string) int {
	t.Helper()
	post := func(sid, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", authorization)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	init := post("", probeBody)
	if init.StatusCode != http.StatusOK {
		return init.StatusCode
	}
	sid := init.Header.Get("Mcp-Session-Id")
	post(sid, probeInitialized)
	return post(sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"`+tool+`","arguments":{"text":"x"}}}`).StatusCode
}
