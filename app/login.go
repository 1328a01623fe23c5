package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"keyport/app/oauth"
)

// LoginRequest is a browser sign-in the CLI asks for (keyport login).
type LoginRequest struct {
	// Name is the server's name: a catalog server, or any name with URL.
	Name string
	// URL signs in to an MCP URL outside the catalog; "": the catalog
	// server's URL, client and scopes.
	URL string
	// ClientID, Scopes and CallbackPort override the catalog's when set.
	ClientID     string
	Scopes       []string
	CallbackPort int
	// Timeout bounds the sign-in; 0: oauth.DefaultLoginTimeout.
	Timeout time.Duration
	// OpenBrowser opens the authorization URL. Required.
	OpenBrowser func(url string) error
	// Logger receives the sign-in's logs; nil: the App's.
	Logger *slog.Logger
}

// LoginResult is a successful sign-in; it holds no secret.
type LoginResult = oauth.LoginResult

// LogoutResult says what Logout did.
type LogoutResult = oauth.LogoutResult

// Login signs in to a server in the browser and stores the tokens in the
// keychain (one sign-in per server at a time in this process). Running
// proxies, here and in other processes, pick the new tokens up.
func (a *App) Login(ctx context.Context, r LoginRequest) (*LoginResult, error) {
	var cfg oauth.LoginConfig
	if r.URL == "" {
		c, err := a.LoginConfig(r.Name)
		if err != nil {
			return nil, err
		}
		cfg = c
	} else {
		cfg = oauth.LoginConfig{Server: r.Name, ResourceURL: r.URL, Store: a.oauthStore(), LockDir: a.lockDir(), Logger: a.log}
	}
	if r.ClientID != "" && r.ClientID != cfg.ClientID {
		cfg.ClientID = r.ClientID
		secret, err := oauth.ClientSecretFromStore(cfg.Store, r.Name)
		if err != nil {
			return nil, err
		}
		cfg.ClientSecret = secret
	}
	if len(r.Scopes) > 0 {
		cfg.Scopes = r.Scopes
	}
	if r.CallbackPort != 0 {
		cfg.CallbackPort = r.CallbackPort
	}
	cfg.Timeout = r.Timeout
	cfg.OpenBrowser = r.OpenBrowser
	if r.Logger != nil {
		cfg.Logger = r.Logger
	}
	mu := a.signInLock(r.Name)
	mu.Lock()
	defer mu.Unlock()
	res, err := oauth.Login(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.oauthChanged(r.Name)
	return res, nil
}

// Logout revokes (when revoke is set and the authorization server can) and
// removes a server's OAuth tokens and registrations; its pre-registered
// client secret stays (keyport secret rm removes it).
func (a *App) Logout(ctx context.Context, name string, revoke bool, log *slog.Logger) (*LogoutResult, error) {
	if log == nil {
		log = a.log
	}
	res, err := oauth.Logout(ctx, oauth.LogoutConfig{Server: name, Store: a.oauthStore(), LockDir: a.lockDir(), Logger: log, Revoke: revoke})
	if err != nil {
		return nil, err
	}
	a.oauthChanged(name)
	return res, nil
}

// ClientMetadataDocument is the Client ID Metadata Document to host at
// url ("": the catalog's oauth.client_metadata_url) for sign-ins on
// redirectPort (0: oauth.DefaultMetadataCallbackPort), as JSON.
func (a *App) ClientMetadataDocument(url string, redirectPort int) ([]byte, error) {
	if url == "" {
		if cat := a.catalog(); cat != nil {
			url = cat.OAuth.ClientMetadataURL
		}
	}
	if url == "" {
		return nil, fmt.Errorf("give the https URL where the document will be hosted (--url), or set oauth.client_metadata_url in %s", a.ServersFile())
	}
	doc, err := oauth.NewClientMetadata(url, redirectPort)
	if err != nil {
		return nil, err
	}
	return doc.JSON(), nil
}

// DefaultLoginTimeout is how long a sign-in waits for the browser.
const DefaultLoginTimeout = oauth.DefaultLoginTimeout

// BrowserOpener opens a URL in the browser: the command in BROWSER (read
// through getenv; the URL is appended, or replaces %s), else the
// platform's opener.
func BrowserOpener(getenv func(string) string) func(url string) error {
	return oauth.BrowserOpener(getenv)
}
