package app

import (
	"context"
	"fmt"
	"net/http"

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

// BridgeTarget is where `keyport connect NAME` sends a server's traffic.
type BridgeTarget struct {
	// URL is the local proxy's MCP endpoint.
	URL string
	// Header adds headers for the local proxy (none today).
	Header func(ctx context.Context) (http.Header, error)
	// Shared reports that the tray app's proxy serves it; otherwise this
	// process runs its own proxy, with the same credentials, policy and
	// audit log, until Close.
	Shared bool
	// Close stops this process's own proxy, if any.
	Close func(ctx context.Context) error
}

// BridgeTarget finds the proxy a bridge for server name talks to: the tray
// app's persistent proxy when it runs, so there is one policy, one audit log
// and one credential refresh; otherwise a proxy of this process on a free
// loopback port, applying the same configuration.
func (a *App) BridgeTarget(ctx context.Context, name string) (BridgeTarget, error) {
	s, err := a.server(name)
	if err != nil {
		return BridgeTarget{}, err
	}
	if p := a.state.Get().Proxies[name]; p.Enabled && p.Port != 0 && probeProxy(p.Port, name) {
		return BridgeTarget{URL: localURL(p.Port), Shared: true, Close: func(context.Context) error { return nil }}, nil
	}
	cfg, err := a.proxyConfig(ctx, s, 0)
	if err != nil {
		return BridgeTarget{}, err
	}
	p, err := proxymgr.New(cfg)
	if err != nil {
		return BridgeTarget{}, err
	}
	if err := p.Start(context.WithoutCancel(ctx)); err != nil {
		return BridgeTarget{}, fmt.Errorf("start %s's proxy: %w", name, err)
	}
	return BridgeTarget{URL: p.URL(), Close: p.Shutdown}, nil
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
