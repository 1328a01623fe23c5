package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"keyport/app/catalog"
	"keyport/app/oauth"
	"keyport/app/secrets"
)

// secretsCacheTTL is how long a secret read from the keychain is reused by
// this process. Proxies ask for credentials on every request; a change made
// by another keyport process shows up within this time.
const secretsCacheTTL = 30 * time.Second

// credentialsFunc returns the per-request credentials source of a server,
// in the shape proxymgr.CredentialsFunc and bridge headers take. Errors are
// actionable and never contain a secret.
func (a *App) credentialsFunc(s catalog.Server) func(ctx context.Context) (http.Header, error) {
	name := s.Name
	switch s.Auth.Type {
	case catalog.AuthBearer:
		return func(context.Context) (http.Header, error) {
			tok, err := a.secrets.Get(name, secrets.KindBearer)
			if err != nil {
				return nil, missingSecret(name, secrets.KindBearer, err)
			}
			return http.Header{"Authorization": {"Bearer " + tok}}, nil
		}
	case catalog.AuthHeaders:
		headers := s.Auth.SecretHeaders
		return func(context.Context) (http.Header, error) {
			h := make(http.Header, len(headers))
			for _, hn := range headers {
				v, err := a.secrets.Get(name, secrets.HeaderKind(hn))
				if err != nil {
					return nil, missingSecret(name, secrets.HeaderKind(hn), err)
				}
				h.Set(hn, v)
			}
			return h, nil
		}
	case catalog.AuthOAuth:
		return func(ctx context.Context) (http.Header, error) {
			c, err := a.oauthCredentials(s)
			if err != nil {
				return nil, err
			}
			return c.Header(ctx)
		}
	}
	return nil
}

// missingSecret turns a keychain error into what the AI client and the user
// read: what is missing and how to set it.
func missingSecret(server, kind string, err error) error {
	if errors.Is(err, secrets.ErrNotFound) {
		return fmt.Errorf("no %s credential for %s in the OS keychain: set it in Keyport or run 'keyport secret set %s %s'",
			kind, server, server, kind)
	}
	return fmt.Errorf("read %s's %s credential: %w", server, kind, err)
}

// oauthSources keeps one oauth.Credentials per server and process, so every
// proxy and bridge of this process shares its token and refreshes once.
type oauthSources struct {
	mu     sync.Mutex
	src    map[string]*oauth.Credentials
	url    map[string]string
	signIn map[string]*sync.Mutex
	store  *secrets.Store // uncached, see oauthStore
}

// oauthCredentials returns the shared OAuth source of a server.
func (a *App) oauthCredentials(s catalog.Server) (*oauth.Credentials, error) {
	a.oauth.mu.Lock()
	defer a.oauth.mu.Unlock()
	if c := a.oauth.src[s.Name]; c != nil && a.oauth.url[s.Name] == s.URL {
		return c, nil
	}
	c, err := oauth.NewCredentials(oauth.CredentialsConfig{
		Server:      s.Name,
		ResourceURL: s.URL,
		Store:       a.oauthStoreLocked(),
		LockDir:     a.lockDir(),
		Logger:      a.log,
		OnStateChange: func(st oauth.State) {
			a.publish(Event{Kind: EventServers, Server: st.Server})
			if st.NeedsSignIn != nil {
				a.publish(Event{Kind: EventNotice, Server: st.Server,
					Title: "Sign in needed", Body: st.NeedsSignIn.Error()})
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if a.oauth.src == nil {
		a.oauth.src, a.oauth.url = map[string]*oauth.Credentials{}, map[string]string{}
	}
	a.oauth.src[s.Name], a.oauth.url[s.Name] = c, s.URL
	return c, nil
}

// oauthState is an OAuth server's sign-in state; ok is false when it has
// no credentials source.
func (a *App) oauthState(s catalog.Server) (oauth.State, bool) {
	c, err := a.oauthCredentials(s)
	if err != nil {
		return oauth.State{}, false
	}
	a.rtMu.Lock()
	started := a.started
	a.rtMu.Unlock()
	if !started {
		// The CLI may block on the keychain; the GUI's views must not, and
		// Start warms every OAuth source in the background instead.
		return c.Status(), true
	}
	return c.State(), true
}

// oauthClientMode says how Keyport identifies itself to s's authorization
// server: as the signed-in client was obtained, else as configured.
func (a *App) oauthClientMode(s catalog.Server, st oauth.State) string {
	switch st.Registration {
	case "preregistered":
		return OAuthPreregistered
	case "metadata-document":
		return OAuthMetadataURL
	case "dynamic":
		if s.Auth.ClientID == "" {
			return OAuthDynamic
		}
	}
	switch {
	case s.Auth.ClientID != "":
		return OAuthPreregistered
	case a.clientMetadataURL(s) != "":
		return OAuthMetadataURL
	}
	return OAuthDynamic
}

// clientMetadataURL is s's Client ID Metadata Document URL: its own, else
// the catalog's default.
func (a *App) clientMetadataURL(s catalog.Server) string {
	if s.Auth.ClientMetadataURL != "" {
		return s.Auth.ClientMetadataURL
	}
	if cat := a.catalog(); cat != nil {
		return cat.OAuth.ClientMetadataURL
	}
	return ""
}

// oauthKinds are the keychain kinds app/oauth may have written for a server,
// removed with it.
func (a *App) oauthKinds(string) []string {
	return []string{oauth.KindToken, oauth.KindClients, oauth.KindStepUp, oauth.KindClientSecret}
}

// SignIn runs the OAuth browser flow for a server and stores the tokens in
// the keychain; running proxies pick them up on their next request. One
// sign-in per server runs at a time: a second call waits for the first.
func (a *App) SignIn(ctx context.Context, name string, openURL func(string) error) error {
	cfg, err := a.LoginConfig(name)
	if err != nil {
		return err
	}
	cfg.OpenBrowser = openURL
	mu := a.signInLock(name)
	mu.Lock()
	defer mu.Unlock()
	if _, err := oauth.Login(ctx, cfg); err != nil {
		return err
	}
	a.oauthChanged(name)
	return nil
}

// SignOut revokes and removes a server's OAuth tokens.
func (a *App) SignOut(ctx context.Context, name string) error {
	cfg, err := a.LogoutConfig(name)
	if err != nil {
		return err
	}
	if _, err := oauth.Logout(ctx, cfg); err != nil {
		return err
	}
	a.oauthChanged(name)
	return nil
}

// oauthChanged makes this process's source re-read a server's tokens after
// a sign-in or sign-out, and tells subscribers.
func (a *App) oauthChanged(name string) {
	if s, err := a.server(name); err == nil && s.Auth.Type == catalog.AuthOAuth {
		if c, err := a.oauthCredentials(s); err == nil {
			c.Reread() // the new sign-in, at once and without a signed-out moment
		}
	}
	a.publish(Event{Kind: EventServers, Server: name})
}

// warmOAuth reads every OAuth server's sign-in from the keychain in the
// background, so the GUI shows "signed in" or "Sign in needed" without
// touching the keychain on its own goroutine.
func (a *App) warmOAuth() {
	for _, s := range a.servers() {
		if s.Auth.Type != catalog.AuthOAuth {
			continue
		}
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			if c, err := a.oauthCredentials(s); err == nil {
				c.Status()
				a.publish(Event{Kind: EventServers, Server: s.Name})
			}
		}()
	}
}

// signInLock is the per-server lock that keeps two sign-ins (a double
// click) from opening two browser tabs.
func (a *App) signInLock(name string) *sync.Mutex {
	a.oauth.mu.Lock()
	defer a.oauth.mu.Unlock()
	if a.oauth.signIn == nil {
		a.oauth.signIn = map[string]*sync.Mutex{}
	}
	if a.oauth.signIn[name] == nil {
		a.oauth.signIn[name] = &sync.Mutex{}
	}
	return a.oauth.signIn[name]
}

// oauthStore is the keychain as app/oauth sees it. It reads through to the
// keychain on every Get (no cache): refresh tokens rotate, and a value
// cached here could be one another process already spent.
func (a *App) oauthStore() oauth.TokenStore {
	a.oauth.mu.Lock()
	defer a.oauth.mu.Unlock()
	return a.oauthStoreLocked()
}

// oauthStoreLocked is oauthStore with a.oauth.mu held.
func (a *App) oauthStoreLocked() oauth.TokenStore {
	if a.oauth.store == nil {
		a.oauth.store = secrets.New(secrets.Options{
			Backend: a.keychain, Service: a.keychainService, Redactor: a.secrets.Redactor(),
		})
	}
	return oauth.KeychainStore(a.oauth.store)
}

// lockDir holds the cross-process lock files (OAuth refresh).
func (a *App) lockDir() string { return filepath.Join(a.dir, "locks") }

// describeAuth names a server's auth for the CLI's Type column.
func describeAuth(t string) string {
	if t == "" {
		return string(catalog.AuthNone)
	}
	return strings.ToLower(t)
}
