package oauth

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"keyport/app/oauth/oauthtest"
)

// TestKeychainEndToEnd runs the whole life of a sign-in on the real OS
// keychain (the Secret Service of scripts/session.sh): login, an MCP call
// through the credentials, a refresh raced by two processes, a failed
// login that must leave the keychain alone, and logout with revocation.
func TestKeychainEndToEnd(t *testing.T) {
	requireRealKeychain(t)
	service := "keyport-test-oauth-" + rand.Text()[:8]
	store := keyringStore{service}
	kinds := []string{KindToken, KindClients, KindStepUp}
	t.Cleanup(func() {
		for _, k := range kinds {
			_ = store.Delete("demo", k)
		}
	})
	e := newEnv(t, oauthtest.Options{Revocation: true, RefreshDelay: 100 * time.Millisecond}, oauthtest.MCPOptions{Scopes: []string{"mcp:read"}})
	e.store = store
	ctx := context.Background()

	if _, err := Login(ctx, e.loginConfig(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
	<-e.browser.Done
	creds := e.credentials(t, nil)
	if _, err := callEcho(ctx, e.mcp.Endpoint, creds); err != nil {
		t.Fatalf("call with the keychain's token: %v", err)
	}

	// Two processes find the token expired at once: one refresh.
	crossProcessRefresh(t, e, "KP_KEYRING="+service)

	// This process refreshes the rotated token later on.
	clk := &clock{}
	clk.advance(3*time.Hour - 30*time.Second)
	later := e.credentials(t, func(c *CredentialsConfig) { c.Now = clk.now })
	if _, err := later.Header(ctx); err != nil || e.as.Refreshes.Load() != 2 {
		t.Fatalf("second refresh: %v (refreshes=%d, want 2)", err, e.as.Refreshes.Load())
	}

	// A failed sign-in leaves every entry as it was.
	before := map[string]string{}
	for _, k := range kinds {
		before[k], _ = store.Get("demo", k)
	}
	bad := e.loginConfig(t)
	bad.OpenBrowser = func(string) error { return nil }
	bad.Timeout = 200 * time.Millisecond
	if _, err := Login(ctx, bad); err == nil {
		t.Fatal("a sign-in without a browser answer succeeded")
	}
	for _, k := range kinds {
		if v, _ := store.Get("demo", k); v != before[k] {
			t.Errorf("keychain entry %s changed by a failed sign-in", k)
		}
	}

	res, err := Logout(ctx, LogoutConfig{Server: "demo", Store: store, Revoke: true, LockDir: e.lockDir, Logger: quietLogger(t)})
	if err != nil || !res.Revoked {
		t.Fatalf("Logout = %+v, %v", res, err)
	}
	for _, k := range kinds {
		if _, err := store.Get("demo", k); !errors.Is(err, ErrNotFound) {
			t.Errorf("keychain entry %s after logout: %v, want not found", k, err)
		}
	}
	later.Reload()
	if _, err := later.Header(ctx); !errors.Is(err, ErrSignInNeeded) {
		t.Errorf("Header after logout = %v, want sign-in needed", err)
	}
}
