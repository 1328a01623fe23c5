package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"keyport/app/oauth/oauthtest"
)

// evilAS is an authorization server an MCP server names to take what a
// client sends there: it authorizes anything at once and records the
// client credentials its token endpoint receives.
type evilAS struct {
	*httptest.Server
	resource string // the MCP URL its protected resource metadata claims

	mu          sync.Mutex
	authorizes  int
	secretsSeen []string
}

func newEvilAS(t *testing.T, resource string) *evilAS {
	e := &evilAS{resource: resource}
	mux := http.NewServeMux()
	e.Server = httptest.NewServer(mux)
	t.Cleanup(e.Close)
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/prm", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"resource": e.resource, "authorization_servers": []string{e.URL}})
	})
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"issuer": e.URL, "authorization_endpoint": e.URL + "/authorize", "token_endpoint": e.URL + "/token",
			"code_challenge_methods_supported": []string{"S256"}, "response_types_supported": []string{"code"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"}})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.authorizes++
		e.mu.Unlock()
		q := r.URL.Query()
		u, _ := url.Parse(q.Get("redirect_uri"))
		rq := u.Query()
		rq.Set("code", "evil-code")
		rq.Set("state", q.Get("state"))
		u.RawQuery = rq.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		e.mu.Lock()
		if _, secret, ok := r.BasicAuth(); ok {
			e.secretsSeen = append(e.secretsSeen, secret)
		}
		if s := r.PostForm.Get("client_secret"); s != "" {
			e.secretsSeen = append(e.secretsSeen, s)
		}
		e.mu.Unlock()
		writeJSON(w, map[string]any{"access_token": "evil-token", "token_type": "Bearer", "expires_in": 3600})
	})
	return e
}

// TestPreregisteredSecretStaysWithItsIssuer: a pre-registered client's
// secret belongs to the authorization server the client was registered
// at (an administrator set it up there), not to whatever authorization
// server an MCP server names. After a sign-in at the real one, the server
// answers 403 insufficient_scope (or a 401) whose resource_metadata names
// another authorization server — Keyport's step-up and "the server moved"
// paths then sign in again there. That sign-in must not hand it the
// client secret (nor open the browser on it): the user is told to sign out
// first if the move is real.
func TestPreregisteredSecretStaysWithItsIssuer(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-of-the-org-client"
	e := newEnv(t, oauthtest.Options{NoRegistration: true, Preregistered: map[string]string{"kp": secret}}, oauthtest.MCPOptions{})
	cfg := e.loginConfig(t)
	cfg.ClientID, cfg.ClientSecret = "kp", secret
	if _, err := Login(context.Background(), cfg); err != nil {
		t.Fatalf("first sign-in at the real authorization server: %v", err)
	}
	<-e.browser.Done

	evil := newEvilAS(t, e.mcp.Endpoint)
	cfg.Challenge = http.Header{"Www-Authenticate": {fmt.Sprintf(`Bearer error="insufficient_scope", scope="files:write", resource_metadata=%q`, evil.URL+"/prm")}}
	_, err := Login(context.Background(), cfg)
	evil.mu.Lock()
	seen, authorizes := evil.secretsSeen, evil.authorizes
	evil.mu.Unlock()
	for _, s := range seen {
		if s == secret {
			t.Errorf("the pre-registered client's secret was sent to the token endpoint of %s, which the MCP server named", evil.URL)
		}
	}
	if authorizes > 0 {
		t.Errorf("the browser was sent to the authorization server the MCP server named (%d times)", authorizes)
	}
	if err == nil || !strings.Contains(err.Error(), "keyport logout demo") {
		t.Errorf("Login = %v, want an error saying the client belongs to another authorization server and how to move", err)
	}
	rec, lerr := loadToken(e.store, "demo")
	if lerr != nil || rec == nil || rec.Issuer != e.as.URL {
		t.Errorf("the sign-in at the real authorization server must stay: %+v, %v", rec, lerr)
	}
}
