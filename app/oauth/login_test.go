package oauth

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"keyport/app/oauth/oauthtest"
)

func TestLoginThenCallProtectedServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oauthtest.Options{Revocation: true, ScopesSupported: []string{"mcp:read", "offline_access"}},
		oauthtest.MCPOptions{Scopes: []string{"mcp:read"}})
	ctx := context.Background()

	res, err := Login(ctx, e.loginConfig(t))
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if res.Issuer != e.as.URL || res.Resource != e.mcp.Endpoint || res.Registration != regDynamic || !res.Refreshable {
		t.Errorf("result = %+v, want issuer %s, resource %s, dynamic, refreshable", res, e.as.URL, e.mcp.Endpoint)
	}
	if !slices.Equal(res.Scopes, []string{"mcp:read", "offline_access"}) {
		t.Errorf("scopes = %q, want the challenge's scope plus offline_access", res.Scopes)
	}
	q := e.as.LastAuthorize()
	if q.Get("resource") != e.mcp.Endpoint || q.Get("code_challenge_method") != "S256" {
		t.Errorf("authorization request = %v, want resource and S256", q)
	}
	page := <-e.browser.Done
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "Signed in to demo") {
		t.Errorf("browser ended on %d %q, want the success page", page.Status, page.Body)
	}
	if errs := e.as.Errors(); len(errs) > 0 {
		t.Errorf("authorization server saw violations: %q", errs)
	}
	keys := e.store.(*MemoryStore).Keys()
	if want := []string{"demo/oauth/clients", "demo/oauth/token"}; !slices.Equal(keys, want) {
		t.Errorf("keychain keys = %q, want %q", keys, want)
	}
	rec, err := loadToken(e.store, "demo")
	if err != nil || rec == nil {
		t.Fatalf("loadToken: %v %v", rec, err)
	}
	if rec.Issuer != e.as.URL || rec.RefreshToken == "" || rec.Expiry.IsZero() || rec.RevocationEndpoint == "" {
		t.Errorf("stored record lacks issuer/refresh/expiry/revocation: %+v", rec.Issuer)
	}

	creds := e.credentials(t, nil)
	out, err := callEcho(ctx, e.mcp.Endpoint, creds)
	if err != nil {
		t.Fatalf("call through the protected server: %v", err)
	}
	if out.IsError {
		t.Fatalf("tool error: %+v", out.Content)
	}
	if st := creds.State(); !st.SignedIn || st.Issuer != e.as.URL {
		t.Errorf("state = %+v, want signed in at %s", st, e.as.URL)
	}

	// A second sign-in reuses the dynamic registration.
	before := e.as.Registrations.Load()
	if _, err := Login(ctx, e.loginConfig(t)); err != nil {
		t.Fatalf("second Login: %v", err)
	}
	if got := e.as.Registrations.Load(); got != before {
		t.Errorf("second sign-in registered again (%d registrations, want %d)", got, before)
	}

	// Logout revokes and removes everything.
	lo, err := Logout(ctx, LogoutConfig{Server: "demo", Store: e.store, Revoke: true, LockDir: e.lockDir, Logger: quietLogger(t)})
	if err != nil || !lo.WasSignedIn || !lo.Revoked {
		t.Fatalf("Logout = %+v, %v; want signed in and revoked", lo, err)
	}
	if keys := e.store.(*MemoryStore).Keys(); len(keys) != 0 {
		t.Errorf("keychain after logout: %q, want empty", keys)
	}
	if n := e.as.Revocations.Load(); n != 2 {
		t.Errorf("revocations = %d, want 2 (refresh and access token)", n)
	}
	creds.Reload()
	_, err = creds.Header(ctx)
	var sin *SignInNeededError
	if !errors.As(err, &sin) || err.Error() != "sign in to demo in Keyport (keyport login demo)" {
		t.Errorf("Header after logout = %v, want the sign-in-needed error", err)
	}
}

func TestLoginRegistrationChoices(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		as         oauthtest.Options
		clientID   string
		secret     string
		cimd       string
		wantReg    string
		wantMethod string
	}{
		{name: "dynamic public", as: oauthtest.Options{}, wantReg: regDynamic, wantMethod: "none"},
		{name: "dynamic secret basic", as: oauthtest.Options{AuthMethods: []string{"client_secret_basic"}}, wantReg: regDynamic, wantMethod: "client_secret_basic"},
		{name: "dynamic secret post", as: oauthtest.Options{AuthMethods: []string{"client_secret_post"}}, wantReg: regDynamic, wantMethod: "client_secret_post"},
		{name: "preregistered confidential", as: oauthtest.Options{NoRegistration: true, Preregistered: map[string]string{"kp": "s3cret"}},
			clientID: "kp", secret: "s3cret", wantReg: regPreregistered, wantMethod: "client_secret_basic"},
		{name: "preregistered public", as: oauthtest.Options{NoRegistration: true, Preregistered: map[string]string{"kp": ""}},
			clientID: "kp", wantReg: regPreregistered, wantMethod: "none"},
		{name: "preregistered wins over dynamic", as: oauthtest.Options{Preregistered: map[string]string{"kp": ""}},
			clientID: "kp", wantReg: regPreregistered, wantMethod: "none"},
		{name: "metadata document", as: oauthtest.Options{CIMD: true}, cimd: "https://keyport.example/oauth/client.json",
			wantReg: regMetadataDocument, wantMethod: "none"},
		{name: "metadata document unsupported falls back", as: oauthtest.Options{}, cimd: "https://keyport.example/oauth/client.json",
			wantReg: regDynamic, wantMethod: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.as, oauthtest.MCPOptions{})
			cfg := e.loginConfig(t)
			cfg.ClientID, cfg.ClientSecret, cfg.ClientMetadataURL = tt.clientID, tt.secret, tt.cimd
			res, err := Login(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Login: %v (server saw %q)", err, e.as.Errors())
			}
			rec, _ := loadToken(e.store, "demo")
			if res.Registration != tt.wantReg || rec.Client.AuthMethod != tt.wantMethod {
				t.Errorf("registration %s/%s, want %s/%s", res.Registration, rec.Client.AuthMethod, tt.wantReg, tt.wantMethod)
			}
			_, hasClients := e.store.(*MemoryStore).Snapshot()["demo/oauth/clients"]
			if hasClients != (tt.wantReg == regDynamic) {
				t.Errorf("clients record present = %v, want it only for dynamic registration", hasClients)
			}
			if _, err := callEcho(context.Background(), e.mcp.Endpoint, e.credentials(t, nil)); err != nil {
				t.Errorf("call after sign-in: %v", err)
			}
		})
	}
}

func TestLoginDiscoveryVariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mcp       oauthtest.MCPOptions
		challenge bool
	}{
		{name: "challenge resource_metadata", mcp: oauthtest.MCPOptions{}},
		{name: "well-known only", mcp: oauthtest.MCPOptions{NoChallengeMetadata: true}},
		{name: "caller passes the 401", mcp: oauthtest.MCPOptions{Scopes: []string{"mcp:read"}}, challenge: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, oauthtest.Options{}, tt.mcp)
			cfg := e.loginConfig(t)
			if tt.challenge {
				resp, err := http.Post(e.mcp.Endpoint, "application/json", strings.NewReader(`{}`))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("unauthenticated POST = %d, want 401", resp.StatusCode)
				}
				cfg.Challenge = resp.Header
			}
			if _, err := Login(context.Background(), cfg); err != nil {
				t.Fatalf("Login: %v", err)
			}
			if tt.challenge && e.as.LastAuthorize().Get("scope") != "mcp:read" {
				t.Errorf("scope = %q, want the challenge's", e.as.LastAuthorize().Get("scope"))
			}
		})
	}
}

// TestLoginFailures checks each bad input gets a clear message and leaves
// the keychain exactly as it was (here: holding an earlier good sign-in).
func TestLoginFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		as      oauthtest.Options
		mcp     oauthtest.MCPOptions
		mod     func(*testing.T, *LoginConfig)
		want    string
		page    bool // the browser ends on a failure page
		noFirst bool // no earlier sign-in possible with these options
	}{
		{name: "wrong issuer", as: oauthtest.Options{MetadataIssuer: "https://evil.example.com"}, noFirst: true,
			want: "does not match issuer"},
		{name: "no PKCE", as: oauthtest.Options{PKCEMethods: []string{}}, noFirst: true, want: "PKCE"},
		{name: "plain PKCE only", as: oauthtest.Options{PKCEMethods: []string{"plain"}}, noFirst: true,
			want: "does not advertise PKCE S256"},
		{name: "iss wrong", as: oauthtest.Options{IssAdvertised: true, IssMode: "wrong"}, noFirst: true,
			want: `issuer "https://evil.example.com"`, page: true},
		{name: "iss advertised but missing", as: oauthtest.Options{IssAdvertised: true, IssMode: "omit"}, noFirst: true,
			want: "has none", page: true},
		{name: "iss unadvertised but wrong", as: oauthtest.Options{IssMode: "wrong"}, noFirst: true,
			want: "mix-up", page: true},
		{name: "user refuses", as: oauthtest.Options{AuthError: "access_denied"}, noFirst: true,
			want: "refused the sign-in: access_denied (the user said no)", page: true},
		{name: "token endpoint failing", as: oauthtest.Options{TokenStatus: http.StatusInternalServerError}, noFirst: true,
			want: "answered 500 server_error (token endpoint broken)", page: true},
		{name: "resource mismatch", mcp: oauthtest.MCPOptions{Resource: "https://evil.example.com/mcp"}, noFirst: true,
			want: `is for "https://evil.example.com/mcp"`},
		{name: "no registration possible", as: oauthtest.Options{NoRegistration: true}, noFirst: true,
			want: "set auth.client_id"},
		{name: "browser closed", mod: func(t *testing.T, c *LoginConfig) {
			c.OpenBrowser = func(string) error { return nil }
			c.Timeout = 300 * time.Millisecond
		}, want: "timed out after 300ms: the browser page was closed or not finished; run keyport login demo again"},
		{name: "browser cannot start", mod: func(t *testing.T, c *LoginConfig) {
			c.OpenBrowser = func(string) error { return errors.New("no display") }
		}, want: "no display; run keyport login demo --no-browser"},
		{name: "callback port taken", mod: func(t *testing.T, c *LoginConfig) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			c.CallbackPort = ln.Addr().(*net.TCPAddr).Port
		}, want: "is in use by another program: close it, or set another callback_port for demo in servers.yaml"},
		{name: "keychain write fails", mod: func(t *testing.T, c *LoginConfig) {
			c.Store.(*MemoryStore).Fail = func(op, server, kind string) error {
				if op == "set" && kind == KindToken {
					return errors.New("keychain locked")
				}
				return nil
			}
		}, want: "write demo/oauth/token to the keychain: keychain locked", page: true},
		{name: "http server URL", mod: func(t *testing.T, c *LoginConfig) { c.ResourceURL = "http://mcp.example.com/mcp" },
			want: "OAuth sign-in needs https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.as, tt.mcp)
			store := e.store.(*MemoryStore)
			if !tt.noFirst {
				if _, err := Login(context.Background(), e.loginConfig(t)); err != nil {
					t.Fatalf("first Login: %v", err)
				}
				<-e.browser.Done
			} else {
				// Seed an earlier sign-in for another issuer.
				store.Set("demo", KindToken, `{"v":1,"issuer":"https://old.example","resource":"x","token_endpoint":"https://old.example/t","access_token":"old"}`)
				store.Set("demo", KindClients, `{"v":1,"clients":{"https://old.example":{"client_id":"c"}}}`)
			}
			before := store.Snapshot()
			cfg := e.loginConfig(t)
			if tt.mod != nil {
				tt.mod(t, &cfg)
			}
			_, err := Login(context.Background(), cfg)
			store.Fail = nil
			t.Logf("error: %v", err)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Login error = %v, want it to contain %q", err, tt.want)
			}
			if after := store.Snapshot(); !maps.Equal(before, after) {
				t.Errorf("keychain changed on failure:\nbefore %v\nafter  %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
			}
			if tt.page {
				page := <-e.browser.Done
				if page.Status != http.StatusBadRequest || !strings.Contains(page.Body, "Sign-in to demo failed") {
					t.Errorf("browser ended on %d %q, want the failure page", page.Status, page.Body)
				}
			}
		})
	}
}

func TestLoginStepUpScopesAndUnion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oauthtest.Options{}, oauthtest.MCPOptions{Scopes: []string{"mcp:read"}})
	if _, err := Login(context.Background(), e.loginConfig(t)); err != nil {
		t.Fatal(err)
	}
	if err := saveJSON(e.store, "demo", KindStepUp, stepUpRecord{Version: 1, Scopes: []string{"mcp:read", "mcp:admin"}}); err != nil {
		t.Fatal(err)
	}
	res, err := Login(context.Background(), e.loginConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Scopes, []string{"mcp:read", "mcp:admin"}) {
		t.Errorf("scopes = %q, want the union with the step-up scopes", res.Scopes)
	}
	if _, ok := e.store.(*MemoryStore).Snapshot()["demo/"+KindStepUp]; ok {
		t.Error("step-up record survived a successful sign-in")
	}
}
