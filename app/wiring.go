package app

import (
	"context"
	"fmt"

	"keyport/app/catalog"
	"keyport/app/oauth"
	"keyport/proxymgr"
)

// This file holds what the CLI verbs that run a proxy, a bridge or a
// sign-in need from the catalog and the keychain.

// ProxyConfig is the proxy configuration of a catalog server, for
// `keyport proxy NAME`: its upstream, credentials from the keychain, tool
// policy and audit log. port 0 picks a free port.
func (a *App) ProxyConfig(ctx context.Context, name string, port int) (proxymgr.Config, error) {
	s, err := a.server(name)
	if err != nil {
		return proxymgr.Config{}, err
	}
	cfg, err := a.proxyConfig(ctx, s, port)
	if err != nil {
		return proxymgr.Config{}, err
	}
	if err := cfg.Check(); err != nil {
		return proxymgr.Config{}, err
	}
	return cfg, nil
}

// LoginConfig is the sign-in configuration of an OAuth server of the
// catalog, for `keyport login NAME`; the caller sets how to open the
// browser and the timeout.
func (a *App) LoginConfig(name string) (oauth.LoginConfig, error) {
	s, err := a.server(name)
	if err != nil {
		return oauth.LoginConfig{}, err
	}
	if s.Auth.Type != catalog.AuthOAuth {
		return oauth.LoginConfig{}, fmt.Errorf("server %q uses auth type %q; sign-in is for servers with auth.type oauth in servers.yaml", name, s.Auth.Type)
	}
	store := a.oauthStore()
	secret, err := oauth.ClientSecretFromStore(store, name)
	if err != nil {
		return oauth.LoginConfig{}, err
	}
	return oauth.LoginConfig{
		Server:       name,
		ResourceURL:  s.URL,
		ClientID:     s.Auth.ClientID,
		ClientSecret: secret,
		Scopes:       s.Auth.Scopes,
		CallbackPort: s.Auth.CallbackPort,
		Store:        store,
		LockDir:      a.lockDir(),
		Logger:       a.log,
	}, nil
}

// LogoutConfig is the sign-out configuration of a server, for `keyport logout NAME`.
func (a *App) LogoutConfig(name string) (oauth.LogoutConfig, error) {
	if _, err := a.server(name); err != nil {
		return oauth.LogoutConfig{}, err
	}
	return oauth.LogoutConfig{Server: name, Store: a.oauthStore(), LockDir: a.lockDir(), Logger: a.log, Revoke: true}, nil
}
