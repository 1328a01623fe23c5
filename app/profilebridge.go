package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"keyport/app/catalog"
	"keyport/proxymgr/gateway"
)

// ownProfile is a profile endpoint of this process (`keyport proxy
// --profile NAME`, or a `keyport connect --profile NAME` bridge while the
// tray app does not serve the profile). Its members are the tray app's
// proxies where they run, else proxies of this process, with the same
// credentials, policy and audit log. It follows servers.yaml.
type ownProfile struct {
	a       *App
	name    string
	port    int  // 0: a free port
	anyPort bool // when port is taken, take a free one
	log     *slog.Logger

	mu      sync.Mutex
	gw      *gateway.Gateway
	proxies map[string]*ownProxy // members this process serves itself
	cancel  context.CancelFunc
	done    chan struct{}
}

// member is the endpoint of a server of the profile: the tray app's proxy
// when it answers, else one of this process.
func (o *ownProfile) member(server string) (string, error) {
	if p := o.a.state.Get().Proxies[server]; p.Port != 0 && probeProxy(p.Port, server) {
		return localURL(p.Port), nil
	}
	o.mu.Lock()
	own := o.proxies[server]
	if own == nil {
		own = &ownProxy{a: o.a, name: server, port: o.a.state.Get().Proxies[server].Port, anyPort: true, log: o.log}
		if o.proxies == nil {
			o.proxies = map[string]*ownProxy{}
		}
		o.proxies[server] = own
	}
	o.mu.Unlock()
	return own.start()
}

// start starts the endpoint once and returns its URL.
func (o *ownProfile) start() (string, error) {
	o.mu.Lock()
	if o.gw != nil {
		defer o.mu.Unlock()
		return o.gw.URL(), nil
	}
	o.mu.Unlock()
	if _, _, err := o.a.reloadCatalog(); err != nil {
		return "", err
	}
	p, err := o.a.profile(o.name)
	if err != nil {
		return "", err
	}
	cfg, err := o.a.gatewayConfig(p, o.port, o.member, o.log)
	if err != nil {
		o.closeProxies(context.Background())
		return "", err
	}
	g, err := gateway.New(cfg)
	if err != nil {
		o.closeProxies(context.Background())
		return "", err
	}
	err = g.Start(context.Background())
	if errors.Is(err, gateway.ErrPortInUse) && o.anyPort && cfg.Port != 0 {
		o.log.Info("the profile's assigned port is taken; this bridge's endpoint uses a free one", "profile", o.name, "port", cfg.Port)
		cfg.Port = 0
		if g, err = gateway.New(cfg); err == nil {
			err = g.Start(context.Background())
		}
	}
	if err != nil {
		o.closeProxies(context.Background())
		return "", err
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.mu.Lock()
	o.gw, o.cancel, o.done = g, cancel, make(chan struct{})
	o.mu.Unlock()
	go o.follow(ctx)
	return g.URL(), nil
}

// follow applies edits of the profile in servers.yaml to the endpoint.
func (o *ownProfile) follow(ctx context.Context) {
	defer close(o.done)
	w, err := o.a.file.Watch(ctx)
	if err != nil {
		o.log.Warn("cannot watch servers.yaml; the profile keeps its configuration", "err", err)
		return
	}
	defer w.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-w.Updates():
			if !ok {
				return
			}
			old := o.a.setCatalog(u.Catalog, u.Err)
			if u.Err != nil {
				o.log.Warn("servers.yaml has errors; the profile keeps its configuration", "profile", o.name, "err", u.Err)
				continue
			}
			d := catalog.CompareProfiles(old, u.Catalog)
			p, ok := u.Catalog.Profile(o.name)
			switch {
			case !ok:
				o.log.Warn("the profile was removed from servers.yaml; its endpoint in this process serves nothing new", "profile", o.name)
			case contains(d.Changed, o.name):
				cfg, err := o.a.gatewayConfig(p, 0, o.member, o.log)
				if err == nil {
					err = o.gw.Update(cfg)
				}
				if err != nil {
					o.log.Error("cannot apply the profile's new configuration", "profile", o.name, "err", err)
					continue
				}
				o.log.Info("servers.yaml changed; the profile's endpoint applies the new configuration", "profile", o.name)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// close stops the endpoint and the proxies of this process it used.
func (o *ownProfile) close(ctx context.Context) error {
	o.mu.Lock()
	g, cancel, done := o.gw, o.cancel, o.done
	o.mu.Unlock()
	var err error
	if g != nil {
		cancel()
		<-done
		err = g.Shutdown(ctx)
	}
	return errors.Join(err, o.closeProxies(ctx))
}

func (o *ownProfile) closeProxies(ctx context.Context) error {
	o.mu.Lock()
	proxies := o.proxies
	o.proxies = nil
	o.mu.Unlock()
	var errs []error
	for _, p := range proxies {
		errs = append(errs, p.close(ctx))
	}
	return errors.Join(errs...)
}

// ServeProfile starts profile name's endpoint in this process, for
// `keyport proxy --profile NAME`: on port, or, for 0, on the port Keyport
// assigned to the profile (the one its client entries hold). It returns
// the endpoint's URL.
func (a *App) ServeProfile(name string, port int, log *slog.Logger) (url string, stop func(context.Context) error, err error) {
	if log == nil {
		log = a.log
	}
	if _, err := a.profile(name); err != nil {
		return "", nil, err
	}
	assigned := port == 0
	if assigned {
		if port, err = a.reserveProfilePort(name); err != nil {
			return "", nil, err
		}
	}
	own := &ownProfile{a: a, name: name, port: port, log: log}
	u, err := own.start()
	if err != nil {
		if errors.Is(err, gateway.ErrPortInUse) {
			if probeProfile(port, name) {
				return "", nil, fmt.Errorf("Keyport already serves profile %s on 127.0.0.1:%d (the Keyport app, or another 'keyport proxy --profile %s'): clients can connect to %s now", name, port, name, localURL(port))
			}
			if assigned {
				return "", nil, fmt.Errorf("port %d, which Keyport assigned to profile %s (its client entries use it), is in use by another program: free it, or pass -p PORT: %w", port, name, err)
			}
		}
		return "", nil, err
	}
	return u, own.close, nil
}

// ProfileBridgeTarget finds the endpoint a `keyport connect --profile NAME`
// bridge talks to: the tray app's when it serves the profile (failing over
// to one of this process if the app goes away), else one of this process.
func (a *App) ProfileBridgeTarget(name string, log *slog.Logger) (BridgeTarget, error) {
	if log == nil {
		log = a.log
	}
	if _, err := a.profile(name); err != nil {
		return BridgeTarget{}, err
	}
	r := a.state.Get().Profiles[name]
	own := &ownProfile{a: a, name: name, port: r.Port, anyPort: true, log: log}
	if r.Enabled && r.Port != 0 && probeProfile(r.Port, name) {
		f := &failover{name: "profile " + name, shared: localURL(r.Port), own: own, log: log}
		return BridgeTarget{URL: f.shared, Shared: true, Transport: f.wrap, Close: own.close}, nil
	}
	u, err := own.start()
	if err != nil {
		return BridgeTarget{}, err
	}
	same := func(rt http.RoundTripper) http.RoundTripper { return rt }
	return BridgeTarget{URL: u, Transport: same, Close: own.close}, nil
}
