package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"keyport/app/oauth/oauthtest"
)

// clock is a test clock that runs with real time plus an offset.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// signedIn returns an env with a completed sign-in.
func signedIn(t *testing.T, asOpts oauthtest.Options, mcpOpts oauthtest.MCPOptions) *env {
	t.Helper()
	e := newEnv(t, asOpts, mcpOpts)
	if _, err := Login(context.Background(), e.loginConfig(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
	<-e.browser.Done
	return e
}

func authValue(t *testing.T, c *Credentials) string {
	t.Helper()
	h, err := c.Header(context.Background())
	if err != nil {
		t.Fatalf("Header: %v", err)
	}
	return h.Get("Authorization")
}

func TestCredentialsRefreshBeforeExpiry(t *testing.T) {
	t.Parallel()
	e := signedIn(t, oauthtest.Options{}, oauthtest.MCPOptions{})
	clk := &clock{}
	var states []State
	creds := e.credentials(t, func(c *CredentialsConfig) {
		c.Now = clk.now
		c.OnStateChange = func(s State) { states = append(states, s) }
	})
	first := authValue(t, creds)
	if again := authValue(t, creds); again != first || e.as.Refreshes.Load() != 0 {
		t.Fatalf("a fresh token was refreshed (refreshes=%d)", e.as.Refreshes.Load())
	}
	before, _ := loadToken(e.store, "demo")

	clk.advance(time.Hour - 30*time.Second) // inside the one-minute window
	second := authValue(t, creds)
	if second == first || e.as.Refreshes.Load() != 1 {
		t.Fatalf("token not refreshed before expiry: same=%v refreshes=%d", second == first, e.as.Refreshes.Load())
	}
	after, _ := loadToken(e.store, "demo")
	if after.RefreshToken == before.RefreshToken || "Bearer "+after.AccessToken != second {
		t.Error("the keychain does not hold the rotated refresh token and the new access token")
	}
	if tok, ok := e.as.AccessToken(strings.TrimPrefix(second, "Bearer ")); !ok || tok.Resource != e.mcp.Endpoint {
		t.Errorf("refreshed token unknown or for %q, want the resource %s", tok.Resource, e.mcp.Endpoint)
	}
	if _, err := callEcho(context.Background(), e.mcp.Endpoint, creds); err != nil {
		t.Errorf("call with the refreshed token: %v", err)
	}
	if len(states) == 0 || !states[len(states)-1].SignedIn {
		t.Errorf("states = %+v, want a signed-in state", states)
	}
	if errs := e.as.Errors(); len(errs) > 0 {
		t.Errorf("authorization server saw violations: %q", errs)
	}
}

// TestCredentialsSingleFlight: many goroutines on many Credentials of one
// server (several proxies in one process) refresh exactly once.
func TestCredentialsSingleFlight(t *testing.T) {
	t.Parallel()
	e := signedIn(t, oauthtest.Options{RefreshDelay: 50 * time.Millisecond}, oauthtest.MCPOptions{})
	clk := &clock{}
	clk.advance(2 * time.Hour) // expired
	var sources []*Credentials
	for range 3 {
		sources = append(sources, e.credentials(t, func(c *CredentialsConfig) { c.Now = clk.now }))
	}
	var wg sync.WaitGroup
	got := make([]string, 60)
	errs := make([]error, 60)
	start := make(chan struct{})
	for i := range got {
		wg.Go(func() {
			<-start
			h, err := sources[i%len(sources)].Header(context.Background())
			if err == nil {
				got[i] = h.Get("Authorization")
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Header: %v", err)
	}
	if n := e.as.Refreshes.Load(); n != 1 {
		t.Errorf("refreshes = %d, want exactly 1", n)
	}
	if distinct := slices.Compact(slices.Sorted(slices.Values(got))); len(distinct) != 1 {
		t.Errorf("callers got different tokens: %d distinct", len(distinct))
	}
	if errs := e.as.Errors(); len(errs) > 0 {
		t.Errorf("authorization server saw violations (a reused refresh token?): %q", errs)
	}
}

func TestCredentialsRefreshRejected(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		breakf func(*oauthtest.Server)
	}{
		{"revoked refresh token", func(as *oauthtest.Server) { as.RevokeAll() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := signedIn(t, oauthtest.Options{}, oauthtest.MCPOptions{})
			clk := &clock{}
			var last State
			creds := e.credentials(t, func(c *CredentialsConfig) {
				c.Now = clk.now
				c.OnStateChange = func(s State) { last = s }
			})
			authValue(t, creds)
			tt.breakf(e.as)
			before := e.store.(*MemoryStore).Snapshot()
			clk.advance(2 * time.Hour)
			_, err := creds.Header(context.Background())
			if !errors.Is(err, ErrSignInNeeded) || err.Error() != "sign in to demo in Keyport (keyport login demo)" {
				t.Fatalf("Header = %v, want exactly the sign-in-needed text", err)
			}
			var sin *SignInNeededError
			if errors.As(err, &sin); !strings.Contains(sin.Reason, "invalid_grant") {
				t.Errorf("reason = %q, want it to name invalid_grant", sin.Reason)
			}
			if last.NeedsSignIn == nil || last.SignedIn {
				t.Errorf("state = %+v, want sign-in needed", last)
			}
			// No new attempt with the dead refresh token, now or after the recheck delay.
			_, _ = creds.Header(context.Background())
			clk.advance(time.Minute)
			_, err = creds.Header(context.Background())
			if !errors.Is(err, ErrSignInNeeded) || e.as.Refreshes.Load() != 1 {
				t.Errorf("after recheck: %v, refreshes=%d; want sign-in needed and 1 refresh", err, e.as.Refreshes.Load())
			}
			if after := e.store.(*MemoryStore).Snapshot(); !mapsEqual(before, after) {
				t.Error("a failed refresh changed the keychain")
			}
			// A new sign-in (as from `keyport login` in another process) resumes traffic.
			if _, err := Login(context.Background(), e.loginConfig(t)); err != nil {
				t.Fatal(err)
			}
			clk.advance(time.Minute)
			if _, err := creds.Header(context.Background()); err != nil {
				t.Errorf("after a new sign-in: %v", err)
			}
			if !last.SignedIn {
				t.Errorf("state after sign-in = %+v, want signed in", last)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestCredentialsTransientFailure(t *testing.T) {
	t.Parallel()
	e := signedIn(t, oauthtest.Options{}, oauthtest.MCPOptions{})
	clk := &clock{}
	creds := e.credentials(t, func(c *CredentialsConfig) { c.Now = clk.now })
	first := authValue(t, creds)

	// Break the token endpoint by pointing the record at a dead one.
	rec, _ := loadToken(e.store, "demo")
	rec.TokenEndpoint = e.as.URL + "/broken"
	if err := saveJSON(e.store, "demo", KindToken, rec); err != nil {
		t.Fatal(err)
	}
	creds.Reload()
	clk.advance(time.Hour - 30*time.Second) // refresh due, token still valid
	if got := authValue(t, creds); got != first {
		t.Error("a still-valid token was not used while the token endpoint is down")
	}
	if st := creds.State(); st.Err == nil || !st.SignedIn {
		t.Errorf("state = %+v, want signed in with a transient error", st)
	}
	clk.advance(time.Hour) // now expired
	_, err := creds.Header(context.Background())
	if err == nil || errors.Is(err, ErrSignInNeeded) || !strings.Contains(err.Error(), "could not be refreshed") {
		t.Errorf("Header = %v, want a transient error that is not sign-in-needed", err)
	}
}

func TestCredentialsNotSignedInThenSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oauthtest.Options{}, oauthtest.MCPOptions{})
	clk := &clock{}
	creds := e.credentials(t, func(c *CredentialsConfig) { c.Now = clk.now })
	_, err := creds.Header(context.Background())
	var sin *SignInNeededError
	if !errors.As(err, &sin) || sin.Reason != "not signed in" {
		t.Fatalf("Header = %v, want not signed in", err)
	}
	if _, err := Login(context.Background(), e.loginConfig(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := creds.Header(context.Background()); !errors.Is(err, ErrSignInNeeded) {
		t.Errorf("within the recheck delay: %v, want the remembered sign-in-needed", err)
	}
	clk.advance(3 * time.Second)
	if _, err := creds.Header(context.Background()); err != nil {
		t.Errorf("after the recheck delay: %v, want the new sign-in picked up", err)
	}
}

func TestCredentialsOtherURL(t *testing.T) {
	t.Parallel()
	e := signedIn(t, oauthtest.Options{}, oauthtest.MCPOptions{})
	creds := e.credentials(t, func(c *CredentialsConfig) { c.ResourceURL = "https://elsewhere.example/mcp" })
	_, err := creds.Header(context.Background())
	var sin *SignInNeededError
	if !errors.As(err, &sin) || !strings.Contains(sin.Reason, "not https://elsewhere.example/mcp") {
		t.Fatalf("Header = %v, want sign-in needed for the other URL", err)
	}
}

// rawCall posts one JSON-RPC request with the given Authorization value.
func rawCall(t *testing.T, endpoint, authorization, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestCredentialsRejectedRefreshes(t *testing.T) {
	t.Parallel()
	e := signedIn(t, oauthtest.Options{}, oauthtest.MCPOptions{})
	creds := e.credentials(t, nil)
	old := authValue(t, creds)
	e.as.RevokeAccessTokens()
	if resp := rawCall(t, e.mcp.Endpoint, old, probeBody); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked token got %d, want 401", resp.StatusCode)
	}
	if err := creds.Rejected(context.Background(), old); err != nil {
		t.Fatalf("Rejected: %v", err)
	}
	fresh := authValue(t, creds)
	if fresh == old || e.as.Refreshes.Load() != 1 {
		t.Fatalf("no refresh after a 401 (refreshes=%d)", e.as.Refreshes.Load())
	}
	if _, err := callEcho(context.Background(), e.mcp.Endpoint, creds); err != nil {
		t.Errorf("call after the refresh: %v", err)
	}
	// A second source that still holds the old token adopts the new one
	// without refreshing again.
	if err := e.credentials(t, nil).Rejected(context.Background(), old); err != nil || e.as.Refreshes.Load() != 1 {
		t.Errorf("Rejected on another source: %v, refreshes=%d; want the stored token adopted", err, e.as.Refreshes.Load())
	}
}

const adminCall = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin","arguments":{}}}`

func TestCredentialsStepUp(t *testing.T) {
	t.Parallel()
	e := signedIn(t, oauthtest.Options{}, oauthtest.MCPOptions{Scopes: []string{"mcp:read"}, AdminScope: "mcp:admin"})
	creds := e.credentials(t, nil)
	auth := authValue(t, creds)
	resp := rawCall(t, e.mcp.Endpoint, auth, adminCall)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("admin call = %d, want 403", resp.StatusCode)
	}
	act, err := creds.StepUp(context.Background(), resp.Header, auth)
	var sin *SignInNeededError
	if act != SignIn || !errors.As(err, &sin) || !slices.Equal(sin.Scopes, []string{"mcp:read", "mcp:admin"}) {
		t.Fatalf("StepUp = %v, %v; want sign-in for mcp:read mcp:admin", act, err)
	}
	if st := creds.State(); !st.SignedIn || len(st.StepUpScopes) == 0 {
		t.Errorf("state = %+v, want still signed in with step-up scopes", st)
	}
	if got := authValue(t, creds); got != auth {
		t.Error("other requests must keep the current token during a step-up")
	}
	// Sign in again (as the tray's "Sign in" would): the step-up scopes are requested.
	res, err := Login(context.Background(), e.loginConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Scopes, "mcp:admin") {
		t.Fatalf("sign-in scopes = %q, want mcp:admin", res.Scopes)
	}
	// The proxy still holds the old token; the next 403 makes it adopt the new one.
	act, err = creds.StepUp(context.Background(), rawCall(t, e.mcp.Endpoint, auth, adminCall).Header, auth)
	if act != Retry || err != nil {
		t.Fatalf("StepUp after sign-in = %v, %v; want retry", act, err)
	}
	if resp := rawCall(t, e.mcp.Endpoint, authValue(t, creds), adminCall); resp.StatusCode == http.StatusForbidden {
		t.Error("the retried admin call is still forbidden")
	}
	if st := creds.State(); len(st.StepUpScopes) != 0 {
		t.Errorf("step-up scopes not cleared: %q", st.StepUpScopes)
	}
	// A 403 without insufficient_scope passes through.
	if act, err := creds.StepUp(context.Background(), http.Header{}, auth); act != PassThrough || err != nil {
		t.Errorf("plain 403: %v, %v; want pass-through", act, err)
	}
}

func TestCredentialsStepUpBounded(t *testing.T) {
	t.Parallel()
	// The authorization server never grants mcp:admin.
	e := signedIn(t, oauthtest.Options{GrantScopes: []string{"mcp:read"}},
		oauthtest.MCPOptions{Scopes: []string{"mcp:read"}, AdminScope: "mcp:admin"})
	creds := e.credentials(t, nil)
	var acts []string
	for range 5 {
		auth := authValue(t, creds)
		act, err := creds.StepUp(context.Background(), rawCall(t, e.mcp.Endpoint, auth, adminCall).Header, auth)
		acts = append(acts, act.String())
		if act == GiveUp {
			if !errors.Is(err, ErrScopeDenied) || !strings.Contains(err.Error(), "after 2 sign-ins") {
				t.Errorf("give-up error = %v", err)
			}
			break
		}
		if _, err := Login(context.Background(), e.loginConfig(t)); err != nil {
			t.Fatal(err)
		}
		creds.Reload()
	}
	if want := []string{"sign-in", "sign-in", "give-up"}; !slices.Equal(acts, want) {
		t.Errorf("actions = %q, want %q", acts, want)
	}
	if n := e.as.Authorizations.Load(); n != 3 {
		t.Errorf("authorizations = %d, want 3 (first sign-in + 2 step-ups)", n)
	}
}

func TestSignInNeededErrorText(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("proxy: %w", signInNeeded("github", "not signed in", nil))
	if !errors.Is(err, ErrSignInNeeded) {
		t.Error("errors.Is(ErrSignInNeeded) is false")
	}
	var sin *SignInNeededError
	if !errors.As(err, &sin) || sin.Error() != "sign in to github in Keyport (keyport login github)" {
		t.Errorf("text = %q", sin.Error())
	}
}

func TestCredentialsStatusReadsKeychain(t *testing.T) {
	t.Parallel()
	e := signedIn(t, oauthtest.Options{}, oauthtest.MCPOptions{})
	var published []State
	creds := e.credentials(t, func(c *CredentialsConfig) { c.OnStateChange = func(s State) { published = append(published, s) } })
	if st := creds.State(); st.SignedIn {
		t.Fatal("State read the keychain; it must not")
	}
	st := creds.Status()
	if !st.SignedIn || st.Issuer != e.as.URL || st.Expiry.IsZero() {
		t.Errorf("Status = %+v, want signed in", st)
	}
	if len(published) != 1 || e.as.Refreshes.Load() != 0 {
		t.Errorf("published %d states, refreshes %d; want 1 and 0", len(published), e.as.Refreshes.Load())
	}
	// Expired without a refresh token: sign in needed, without a request.
	clk := &clock{}
	clk.advance(2 * time.Hour)
	e2 := signedIn(t, oauthtest.Options{NoRefreshToken: true}, oauthtest.MCPOptions{})
	st = e2.credentials(t, func(c *CredentialsConfig) { c.Now = clk.now }).Status()
	if st.SignedIn || st.NeedsSignIn == nil || !strings.Contains(st.NeedsSignIn.Reason, "no refresh token") {
		t.Errorf("Status = %+v, want sign-in needed (expired, no refresh token)", st)
	}
}

// TestCredentialsRereadHasNoSignedOutMoment: while the app takes up a new
// sign-in (Reread), a view reading State at any moment sees the source
// signed in, and once the new sign-in carries the step-up scopes the
// step-up is no longer pending. (Reload then Status left a window in
// which a view saw "Sign in needed" right after a successful sign-in.)
func TestCredentialsRereadHasNoSignedOutMoment(t *testing.T) {
	t.Parallel()
	e := signedIn(t, oauthtest.Options{}, oauthtest.MCPOptions{Scopes: []string{"mcp:read"}, AdminScope: "mcp:admin"})
	creds := e.credentials(t, nil)
	auth := authValue(t, creds)
	if act, _ := creds.StepUp(context.Background(), rawCall(t, e.mcp.Endpoint, auth, adminCall).Header, auth); act != SignIn {
		t.Fatalf("StepUp = %v, want sign-in", act)
	}
	if _, err := Login(context.Background(), e.loginConfig(t)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	signedOut := make(chan State, 1)
	go func() {
		for {
			select {
			case <-stop:
				close(signedOut)
				return
			default:
			}
			if st := creds.State(); !st.SignedIn {
				signedOut <- st
				close(signedOut)
				return
			}
		}
	}()
	var st State
	for range 200 {
		st = creds.Reread()
	}
	close(stop)
	if bad, ok := <-signedOut; ok {
		t.Errorf("a reader saw %+v while the new sign-in was taken up", bad)
	}
	if !st.SignedIn || !slices.Contains(st.Scopes, "mcp:admin") || len(st.StepUpScopes) != 0 {
		t.Errorf("after Reread: %+v; want signed in with mcp:admin and no step-up pending", st)
	}
}
