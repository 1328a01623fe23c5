package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"syscall"

	"keyport/app/catalog"
	"keyport/proxymgr"
)

// BridgeTarget is where `keyport connect NAME` sends a server's traffic.
type BridgeTarget struct {
	// URL is the local proxy's MCP endpoint.
	URL string
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
// loopback port, applying the same configuration and following edits of
// servers.yaml as the app's proxies do. When the tray app's proxy goes away
// later, the target fails over to a proxy of this process. What happens is
// logged on log (the bridge's own logger; nil means the app's).
func (a *App) BridgeTarget(name string, log *slog.Logger) (BridgeTarget, error) {
	if log == nil {
		log = a.log
	}
	if _, err := a.server(name); err != nil {
		return BridgeTarget{}, err
	}
	// The bridge's own proxy serves the server's assigned port when it is
	// free, so the entries of remote clients (Cursor...) reach it too; any
	// free port does for the bridge itself when another program holds it.
	own := &ownProxy{a: a, name: name, log: log, port: a.state.Get().Proxies[name].Port, anyPort: true}
	if p := a.state.Get().Proxies[name]; p.Enabled && p.Port != 0 && probeProxy(p.Port, name) {
		f := &failover{name: name, shared: localURL(p.Port), own: own, log: log}
		return BridgeTarget{URL: f.shared, Shared: true, Transport: f.wrap, Close: own.close}, nil
	}
	u, err := own.start()
	if err != nil {
		return BridgeTarget{}, err
	}
	same := func(rt http.RoundTripper) http.RoundTripper { return rt }
	return BridgeTarget{URL: u, Transport: same, Close: own.close}, nil
}

// ServeProxy starts a proxy for catalog server name in this process, for
// `keyport proxy NAME`: on port, or, for 0, on the port Keyport assigned to
// the server (reserving one if it has none), which is the port written into
// client entries. Like a bridge's own proxy it follows servers.yaml until
// stop. It returns the proxy's URL.
func (a *App) ServeProxy(name string, port int, log *slog.Logger) (url string, stop func(context.Context) error, err error) {
	if log == nil {
		log = a.log
	}
	if _, err := a.server(name); err != nil {
		return "", nil, err
	}
	assigned := port == 0
	if assigned {
		if port, err = a.reservePort(name); err != nil {
			return "", nil, err
		}
	}
	own := &ownProxy{a: a, name: name, port: port, log: log}
	u, err := own.start()
	if err != nil {
		if errors.Is(err, proxymgr.ErrPortInUse) {
			err = portTakenError(name, port, assigned, err)
		}
		return "", nil, err
	}
	// Its audit events go to the organization's collector too (this
	// process exports unless the tray app already does).
	a.wantTelemetry()
	return u, func(ctx context.Context) error { return errors.Join(own.close(ctx), a.stopTelemetry()) }, nil
}

// portTakenError says what to do when the port of name's proxy is taken:
// by Keyport itself (the tray app or another keyport proxy serves the
// server there already), or by another program.
func portTakenError(name string, port int, assigned bool, err error) error {
	if probeProxy(port, name) {
		return fmt.Errorf("Keyport already serves %s on 127.0.0.1:%d (the Keyport app, or another 'keyport proxy %s'): clients can connect to %s now; to run it here, turn it off in Keyport first, or pass -p PORT", name, port, name, localURL(port))
	}
	if assigned {
		return fmt.Errorf("port %d, which Keyport assigned to %s (its client entries use it), is in use by another program: free it, or pass -p PORT (entries written by 'keyport config' keep port %d): %w", port, name, port, proxymgr.ErrPortInUse)
	}
	return err
}

// ownProxy is a proxy of this process for one server (a bridge's, or
// `keyport proxy NAME`), started on demand. It follows servers.yaml: an
// edit of the server (its policy, its URL) is applied on the same port, so
// the URL stays valid and the clients' sessions go on; removing the server
// stops it.
type ownProxy struct {
	a       *App
	name    string
	port    int  // 0: a free port
	anyPort bool // when port is taken, take a free one instead
	log     *slog.Logger

	mu     sync.Mutex
	mgr    *proxymgr.Manager
	url    string
	cancel context.CancelFunc
	done   chan struct{}
}

// start starts the proxy once, with the server as servers.yaml has it now
// (a takeover may come long after the bridge started), and returns its URL.
func (o *ownProxy) start() (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mgr != nil {
		return o.url, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := o.a.file.Watch(ctx)
	if err != nil {
		o.log.Warn("cannot watch servers.yaml; this bridge keeps the server's configuration as it is now", "err", err)
		if _, _, err := o.a.reloadCatalog(); err != nil {
			o.log.Warn("servers.yaml", "err", err)
		}
	} else {
		cur, curErr := w.Current()
		o.a.setCatalog(cur, curErr)
	}
	fail := func(err error) (string, error) {
		cancel()
		if w != nil {
			w.Close()
		}
		return "", err
	}
	cfg, err := o.config(o.port)
	if err == nil {
		err = cfg.Check()
	}
	if err != nil {
		return fail(err)
	}
	mgr := proxymgr.NewManager(proxymgr.ManagerOptions{Logger: o.log})
	st, err := mgr.Start(ctx, cfg)
	if errors.Is(err, proxymgr.ErrPortInUse) && o.anyPort && cfg.Port != 0 {
		o.log.Info("the server's assigned port is taken; this bridge's proxy uses a free one", "server", o.name, "port", cfg.Port)
		cfg.Port = 0
		st, err = mgr.Start(ctx, cfg)
	}
	if err != nil {
		return fail(fmt.Errorf("start %s's proxy: %w", o.name, err))
	}
	o.mgr, o.url, o.cancel, o.done = mgr, st.URL, cancel, make(chan struct{})
	if w == nil {
		close(o.done)
	} else {
		go o.follow(ctx, w, st.Port)
	}
	return o.url, nil
}

func (o *ownProxy) config(port int) (proxymgr.Config, error) {
	s, err := o.a.server(o.name)
	if err != nil {
		return proxymgr.Config{}, err
	}
	cfg, err := o.a.proxyConfig(context.Background(), s, port)
	cfg.Logger = o.log // the bridge's log (--log-file), or keyport proxy's stderr
	return cfg, err
}

// follow applies servers.yaml's changes of the server until ctx ends.
func (o *ownProxy) follow(ctx context.Context, w *catalog.Watcher, port int) {
	defer close(o.done)
	defer w.Close()
	for {
		var u catalog.Update
		select {
		case <-ctx.Done():
			return
		case next, ok := <-w.Updates():
			if !ok {
				return
			}
			u = next
		}
		o.a.setCatalog(u.Catalog, u.Err)
		switch {
		case u.Err != nil:
			o.log.Warn("servers.yaml has errors; the proxy keeps its configuration", "server", o.name, "err", u.Err)
		case slices.Contains(u.Diff.Removed, o.name):
			o.log.Warn("the server was removed from servers.yaml; its proxy in this bridge stopped", "server", o.name)
			_ = o.mgr.Stop(o.name)
		case slices.Contains(u.Diff.Changed, o.name):
			cfg, err := o.config(port)
			if err == nil {
				_, err = o.mgr.Restart(ctx, cfg)
			}
			if err != nil {
				// Never keep serving a configuration the user replaced.
				o.log.Error("cannot apply the server's new configuration; its proxy in this bridge stopped", "server", o.name, "err", err)
				_ = o.mgr.Stop(o.name)
				continue
			}
			o.log.Info("servers.yaml changed; the bridge's proxy applies the new configuration", "server", o.name)
		}
	}
}

// close stops the proxy, if it was started.
func (o *ownProxy) close(ctx context.Context) error {
	o.mu.Lock()
	mgr, cancel, done := o.mgr, o.cancel, o.done
	o.mu.Unlock()
	if mgr == nil {
		return nil
	}
	cancel()
	<-done
	return mgr.Close(ctx)
}

// failover sends a bridge's requests to the tray app's proxy (shared)
// until it refuses a connection, then to the bridge's own proxy, started at
// that moment and kept until close.
type failover struct {
	name   string
	shared string
	own    interface{ start() (string, error) } // an *ownProxy or *ownProfile
	log    *slog.Logger

	mu      sync.Mutex
	current string // the own proxy's URL once taken over
}

func (f *failover) wrap(base http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if u := f.target(); u != "" {
			return base.RoundTrip(redirect(req, u))
		}
		resp, err := base.RoundTrip(req)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			return resp, err
		}
		// Nothing was sent: the connection was refused.
		u, serr := f.takeOver()
		if serr != nil {
			return nil, fmt.Errorf("Keyport's proxy for %s stopped, and this bridge could not start its own: %w", f.name, serr)
		}
		return base.RoundTrip(redirect(req, u))
	})
}

func (f *failover) target() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.current
}

// takeOver starts the bridge's own proxy once.
func (f *failover) takeOver() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current != "" {
		return f.current, nil
	}
	u, err := f.own.start()
	if err != nil {
		return "", err
	}
	f.log.Warn("Keyport's proxy stopped answering; this bridge now runs its own", "server", f.name, "url", u)
	f.current = u
	return u, nil
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
