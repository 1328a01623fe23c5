package oauth

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"keyport/app/oauth/oauthtest"
	"keyport/proxymgr/peercred/peertest"
)

// forgedCallback sends what a local program racing the browser could send
// to the sign-in callback and returns the status and page it got.
func forgedCallback(t *testing.T, redirectURI, query, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, redirectURI+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("forged callback %q (Host %q): %v", query, host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestCallbackRefusesForgedRequests is the attacker's side of the loopback
// callback: requests that race the browser with a wrong or missing state,
// or with the right state but a Host other than the redirect URI's, get a
// plain 400 page and end nothing; the browser's real redirect then
// completes the sign-in and the tokens are stored.
func TestCallbackRefusesForgedRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oauthtest.Options{}, oauthtest.MCPOptions{})
	cfg := e.loginConfig(t)
	forgedDone := make(chan struct{})
	cfg.OpenBrowser = func(authURL string) error {
		defer close(forgedDone)
		u, err := url.Parse(authURL)
		if err != nil {
			t.Error(err)
			return nil
		}
		redirect, state := u.Query().Get("redirect_uri"), u.Query().Get("state")
		port := strings.TrimPrefix(redirect[strings.LastIndex(redirect, ":"):], ":")
		port = strings.TrimSuffix(port, callbackPath)
		for _, f := range []struct{ name, query, host string }{
			{"wrong state", "code=forged&state=guessed", ""},
			{"no state", "code=forged", ""},
			{"an error with a wrong state", "error=access_denied&state=guessed", ""},
			{"empty query", "", ""},
			// The right state through another name: DNS rebinding, or a
			// page on another origin that learned the URL.
			{"right state, foreign Host", "code=forged&state=" + url.QueryEscape(state), "evil.example:" + port},
			{"right state, Host without port", "code=forged&state=" + url.QueryEscape(state), "127.0.0.1"},
			{"right state, Host with another port", "code=forged&state=" + url.QueryEscape(state), "127.0.0.1:1"},
		} {
			status, page := forgedCallback(t, redirect, f.query, f.host)
			if status != http.StatusBadRequest || !strings.Contains(page, "does not belong to the sign-in Keyport is waiting for") {
				t.Errorf("%s: got %d %q, want 400 and the refusal page", f.name, status, page)
			}
		}
		// The real browser comes after the attacker.
		go e.browser.Open(authURL)
		return nil
	}
	res, err := Login(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Login after forged callbacks: %v", err)
	}
	<-forgedDone
	if page := <-e.browser.Done; page.Status != http.StatusOK || !strings.Contains(page.Body, "Signed in to demo") {
		t.Errorf("the real browser ended on %d %q", page.Status, page.Body)
	}
	rec, err := loadToken(e.store, "demo")
	if err != nil || rec == nil || rec.Issuer != res.Issuer {
		t.Fatalf("no token stored after the real redirect: %v %+v", err, rec)
	}
	if tok, ok := e.as.AccessToken(rec.AccessToken); !ok || tok.ClientID == "" {
		t.Errorf("the stored token was not issued by the authorization server: %+v", tok)
	}
	if errs := e.as.Errors(); len(errs) > 0 {
		t.Errorf("the authorization server saw bad requests: %q", errs)
	}
}

// TestCallbackWrongStateFromServer: a redirect carrying another state (an
// old tab, a mix-up) is refused with a 400 page; the sign-in keeps waiting,
// times out saying why, and leaves the keychain as it was.
func TestCallbackWrongStateFromServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oauthtest.Options{WrongState: true}, oauthtest.MCPOptions{})
	store := e.store.(*MemoryStore)
	store.Set("demo", KindToken, `{"v":1,"issuer":"https://old.example","resource":"x","token_endpoint":"https://old.example/t","access_token":"old"}`)
	before := store.Snapshot()
	cfg := e.loginConfig(t)
	cfg.Timeout = 1500 * time.Millisecond
	_, err := Login(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "timed out after 1.5s") ||
		!strings.Contains(err.Error(), "1 request(s) to the sign-in callback that did not belong to this sign-in were refused") {
		t.Fatalf("Login = %v, want a timeout naming the refused callback", err)
	}
	if page := <-e.browser.Done; page.Status != http.StatusBadRequest || !strings.Contains(page.Body, "Not a sign-in Keyport is waiting for") {
		t.Errorf("browser ended on %d %q", page.Status, page.Body)
	}
	if after := store.Snapshot(); !maps.Equal(before, after) {
		t.Errorf("keychain changed: %v -> %v", before, after)
	}
}

// TestCallbackRefusesOtherUsers is a sign-in attacked by another OS user
// of the machine. The authorization URL, state included, is in the
// command line of the browser Keyport starts, which every user can read
// (/proc/PID/cmdline). The attacker authorizes at the authorization server
// with that very URL as themselves (the code is bound to Keyport's PKCE
// challenge, which is in the URL too) and sends the redirect to Keyport's
// loopback callback before the browser: Keyport would then redeem the
// attacker's code with its own verifier and be signed in to the attacker's
// account (the AI client's work lands there). The callback is a loopback
// listener like the proxies and serves only its own user's programs.
func TestCallbackRefusesOtherUsers(t *testing.T) {
	peertest.RequireRoot(t)
	t.Parallel()
	e := newEnv(t, oauthtest.Options{}, oauthtest.MCPOptions{})
	cfg := e.loginConfig(t)
	attacked := make(chan peertest.Response, 1)
	cfg.OpenBrowser = func(authURL string) error {
		u, err := url.Parse(authURL)
		if err != nil {
			t.Error(err)
			return nil
		}
		state := u.Query().Get("state")
		// The browser Keyport starts, with the URL in its command line.
		browser := exec.Command("/bin/sh", "-c", "sleep 10", "browser", authURL)
		if err := browser.Start(); err != nil {
			t.Error(err)
			return nil
		}
		defer func() { browser.Process.Kill(); browser.Wait() }()
		if seen := peertest.Cmdline(t, peertest.Nobody, browser.Process.Pid); !strings.Contains(seen, state) {
			t.Logf("another user could not read the browser's command line (%q); the attack goes on with the URL anyway", seen)
		}
		// The attacker signs in at the authorization server with Keyport's
		// URL and takes the redirect instead of following it.
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(authURL)
		if err != nil {
			t.Error(err)
			return nil
		}
		resp.Body.Close()
		redirect := resp.Header.Get("Location")
		if !strings.Contains(redirect, "code=") {
			t.Errorf("the authorization server gave no code: %d %q", resp.StatusCode, redirect)
			return nil
		}
		got := peertest.Do(t, peertest.Nobody, peertest.Request{Method: http.MethodGet, URL: redirect})
		attacked <- got[0]
		go e.browser.Open(authURL) // the user's browser, after the attacker
		return nil
	}
	res, err := Login(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	a := <-attacked
	if a.Status != http.StatusForbidden || strings.Contains(a.Body, "Signed in") {
		t.Errorf("another user's redirect to the callback got %d %q; want 403, and the sign-in left to the user's browser", a.Status, a.Body)
	}
	if page := <-e.browser.Done; page.Status != http.StatusOK || !strings.Contains(page.Body, "Signed in to demo") {
		t.Errorf("the user's browser ended on %d %q; the sign-in must be its own", page.Status, page.Body)
	}
	if n := e.as.CodeExchanges.Load(); n != 1 {
		t.Errorf("%d codes were redeemed, want 1 (the browser's)", n)
	}
	if res.Issuer == "" {
		t.Errorf("no issuer in %+v", res)
	}
}
