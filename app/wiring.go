package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"syscall"

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
	// Transport wraps the bridge's HTTP transport. For a Shared target it
	// fails over: once the tray app's proxy refuses connections (the user
	// quit Keyport, or turned the proxy off), this process starts its own
	// proxy and sends everything there, so the AI client never notices.
	Transport func(http.RoundTripper) http.RoundTripper
	// Close stops this process's own proxy, if any.
	Close func(ctx context.Context) error
}

// BridgeTarget finds the proxy a bridge for server name talks to: the tray
// app's persistent proxy when it runs, so there is one policy, one audit log
// and one credential refresh; otherwise a proxy of this process on a free
// loopback port, applying the same configuration. When the tray app's proxy
// goes away later, the target fails over to a proxy of this process and
// says so on log (the bridge's own logger; nil means the app's).
func (a *App) BridgeTarget(ctx context.Context, name string, log *slog.Logger) (BridgeTarget, error) {
	if log == nil {
		log = a.log
	}
	s, err := a.server(name)
	if err != nil {
		return BridgeTarget{}, err
	}
	own := func() (*proxymgr.Proxy, error) {
		cfg, err := a.proxyConfig(ctx, s, 0)
		if err != nil {
			return nil, err
		}
		p, err := proxymgr.New(cfg)
		if err != nil {
			return nil, err
		}
		if err := p.Start(context.WithoutCancel(ctx)); err != nil {
			return nil, fmt.Errorf("start %s's proxy: %w", name, err)
		}
		return p, nil
	}
	if p := a.state.Get().Proxies[name]; p.Enabled && p.Port != 0 && probeProxy(p.Port, name) {
		f := &failover{name: name, shared: localURL(p.Port), start: own, log: log}
		return BridgeTarget{URL: f.shared, Shared: true, Transport: f.wrap, Close: f.close}, nil
	}
	p, err := own()
	if err != nil {
		return BridgeTarget{}, err
	}
	return BridgeTarget{URL: p.URL(), Transport: func(rt http.RoundTripper) http.RoundTripper { return rt }, Close: p.Shutdown}, nil
}

// failover sends a bridge's requests to the tray app's proxy (shared)
// until it refuses a connection, then to a proxy of this process, started
// at that moment and kept until close.
type failover struct {
	name   string
	shared string
	start  func() (*proxymgr.Proxy, error)
	log    *slog.Logger

	mu  sync.Mutex
	own *proxymgr.Proxy
}

func (f *failover) wrap(base http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if own := f.current(); own != nil {
			return base.RoundTrip(redirect(req, own.URL()))
		}
		resp, err := base.RoundTrip(req)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			return resp, err
		}
		// Nothing was sent: the connection was refused.
		own, serr := f.takeOver()
		if serr != nil {
			return nil, fmt.Errorf("Keyport's proxy for %s stopped, and this bridge could not start its own: %w", f.name, serr)
		}
		return base.RoundTrip(redirect(req, own.URL()))
	})
}

func (f *failover) current() *proxymgr.Proxy {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.own
}

// takeOver starts this process's proxy once.
func (f *failover) takeOver() (*proxymgr.Proxy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.own != nil {
		return f.own, nil
	}
	p, err := f.start()
	if err != nil {
		return nil, err
	}
	f.log.Warn("Keyport's proxy stopped answering; this bridge now runs its own", "server", f.name, "url", p.URL())
	f.own = p
	return p, nil
}

func (f *failover) close(ctx context.Context) error {
	if own := f.current(); own != nil {
		return own.Shutdown(ctx)
	}
	return nil
}

// redirect is req sent to the endpoint target instead (same path and query
// as the proxies serve the same endpoint), with a fresh body.
func redirect(req *http.Request, target string) *http.Request {
	u, err := url.Parse(target)
	if err != nil {
		return req
	}
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host = u.Scheme, u.Host
	r.Host = ""
	if req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			r.Body = body
		}
	}
	return r
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

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
