package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"keyport/app/catalog"
	"keyport/app/state"
	"keyport/app/telemetry"
	"keyport/proxymgr"
)

// appRuntime is what a running App holds besides its files: the proxy manager,
// the demo server, the OAuth sources and the watchers.
type appRuntime struct {
	oauth    oauthSources
	prompts  signInPrompts
	clients  clientsRuntime
	profiles profilesRuntime // profiles.go

	rtMu        sync.Mutex
	mgr         *proxymgr.Manager
	demo        *demoRuntime
	started     bool
	lastTraffic map[string]int64  // requests+errors+denials last seen, per server
	startErrs   map[string]string // why a proxy the user turned on could not start
	elsewhere   map[string]bool   // proxies another Keyport process serves on their port (portwait.go)

	exporter        *telemetry.Exporter // the OpenTelemetry export of this process
	telemetryWanted bool                // this process exports (tray app, keyport proxy)
	pins            pinRuntime          // the tool pin store (pins.go)
}

// manager returns the proxy manager, creating it on first use.
func (a *App) manager() *proxymgr.Manager {
	a.rtMu.Lock()
	defer a.rtMu.Unlock()
	if a.mgr == nil {
		a.mgr = proxymgr.NewManager(proxymgr.ManagerOptions{Logger: a.log})
	}
	return a.mgr
}

// Start brings the App to life for the tray app: it watches servers.yaml and
// the client configs, restores the proxies the user left on (on the same
// ports) and forwards status changes to subscribers. It returns once that is
// set up; the work goes on until Close.
func (a *App) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return errClosed
	}
	if a.ctx != nil {
		a.mu.Unlock()
		return errors.New("app already started")
	}
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	runCtx := a.ctx
	a.mu.Unlock()

	if err := a.secrets.Check(); err != nil {
		// Not fatal: servers without credentials still work, and the UI
		// shows the keychain error where a credential is needed.
		a.log.Warn("OS keychain unavailable", "err", err)
	}

	w, err := a.file.Watch(runCtx)
	if err != nil {
		a.log.Warn("cannot watch servers.yaml; edits are seen at the next start", "err", err)
	} else {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			defer w.Close()
			for {
				select {
				case <-runCtx.Done():
					return
				case u, ok := <-w.Updates():
					if !ok {
						return
					}
					old := a.setCatalog(u.Catalog, u.Err)
					a.applyCatalog(old, u.Catalog, u.Err)
				}
			}
		}()
	}

	events, cancel := a.manager().Subscribe(64)
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		defer cancel()
		for {
			select {
			case <-runCtx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				a.proxyEvent(ev.Status.Name)
			}
		}
	}()

	if err := a.startClientWatcher(runCtx); err != nil {
		a.log.Warn("cannot watch client configs", "err", err)
	}

	a.rtMu.Lock()
	a.started = true
	a.rtMu.Unlock()
	a.warmOAuth()
	a.wantTelemetry()
	a.watchPins()
	a.restoreProxies(runCtx)
	a.restoreProfiles()
	return nil
}

// restoreProxies starts, in the background, the proxies that were on.
func (a *App) restoreProxies(ctx context.Context) {
	st := a.state.Get()
	for _, s := range a.servers() {
		if p := st.Proxies[s.Name]; p.Enabled {
			a.bg.Add(1)
			go func() {
				defer a.bg.Done()
				if err := a.startProxy(ctx, s.Name); err != nil {
					a.log.Warn("could not restore proxy", "server", s.Name, "err", err)
				}
			}()
		}
	}
}

// proxyEvent publishes a proxy's change, and EventAudit when its traffic
// moved (the audit tab re-reads then; no polling). Notifications about
// proxy states are the UI's: it sees every transition in the views.
func (a *App) proxyEvent(name string) {
	a.publish(Event{Kind: EventServers, Server: name})
	// Events come per request under traffic: read the counters alone, not a
	// whole view (catalog lookup, credential state).
	st, _ := a.manager().Status(name)
	c := st.Counters
	traffic := c.Requests + c.Errors + c.Denials
	a.rtMu.Lock()
	if a.lastTraffic == nil {
		a.lastTraffic = map[string]int64{}
	}
	moved := a.lastTraffic[name] != traffic
	a.lastTraffic[name] = traffic
	a.rtMu.Unlock()
	if moved {
		a.publish(Event{Kind: EventAudit, Server: name})
	}
}

// applyCatalog reacts to a new catalog: proxies of changed servers restart,
// those of removed servers stop, and subscribers hear of it.
func (a *App) applyCatalog(old, cur *catalog.Catalog, err error) {
	if err != nil {
		a.publish(Event{Kind: EventCatalogError, Err: err.Error()})
		return
	}
	a.publish(Event{Kind: EventCatalogError, Err: a.CatalogError()})
	d := catalog.Compare(old, cur)
	// The demo comes and goes with the emptiness of the catalog.
	if old.Empty() != cur.Empty() {
		if cur.Empty() {
			d.Added = append(d.Added, DemoName)
		} else {
			d.Removed = append(d.Removed, DemoName)
		}
	}
	a.rtMu.Lock()
	mgr, started := a.mgr, a.started
	a.rtMu.Unlock()
	if mgr != nil {
		for _, name := range d.Removed {
			a.stopProxy(name)
		}
		for _, name := range d.Changed {
			if st, ok := mgr.Status(name); ok && st.State != proxymgr.StateStopped {
				if err := a.startProxy(a.runContext(), name); err != nil {
					a.log.Warn("could not restart proxy after a catalog change", "server", name, "err", err)
				}
			}
		}
		if started {
			st := a.state.Get()
			for _, name := range d.Added {
				if st.Proxies[name].Enabled {
					if err := a.startProxy(a.runContext(), name); err != nil {
						a.log.Warn("could not start proxy", "server", name, "err", err)
					}
				}
			}
		}
	}
	if started {
		a.warmOAuth()
	}
	a.applyProfiles(old, cur)
	if d.TelemetryChanged {
		a.restartTelemetry()
	}
	a.publish(Event{Kind: EventServers})
	a.publish(Event{Kind: EventClients})
}

// runContext is the context proxies run under: the App's, or a fresh one
// for CLI use before Start.
func (a *App) runContext() context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctx != nil {
		return a.ctx
	}
	return context.Background()
}

// SetProxyEnabled turns a server's persistent proxy on or off and records
// the choice, so the proxy comes back on the same port at the next start.
func (a *App) SetProxyEnabled(ctx context.Context, name string, on bool) error {
	if _, err := a.server(name); err != nil {
		return err
	}
	if !on {
		a.stopProxy(name)
		return a.state.Update(func(st *state.State) error {
			p := st.Proxies[name]
			p.Enabled = false
			setProxy(st, name, p)
			return nil
		})
	}
	if err := a.state.Update(func(st *state.State) error {
		p := st.Proxies[name]
		p.Enabled = true
		setProxy(st, name, p)
		return nil
	}); err != nil {
		return err
	}
	return a.startProxy(ctx, name)
}

func setProxy(st *state.State, name string, p state.Proxy) {
	if st.Proxies == nil {
		st.Proxies = map[string]state.Proxy{}
	}
	st.Proxies[name] = p
}

// startProxy (re)starts a server's persistent proxy on its recorded port,
// and records the port it got.
func (a *App) startProxy(ctx context.Context, name string) error {
	s, err := a.server(name)
	if err != nil {
		return err
	}
	cfg, err := a.proxyConfig(ctx, s, a.state.Get().Proxies[name].Port)
	if err != nil {
		a.setStartErr(name, err)
		return err
	}
	mgr := a.manager()
	var st proxymgr.Status
	if cur, ok := mgr.Status(name); ok && cur.State != proxymgr.StateStopped {
		st, err = mgr.Restart(a.runContext(), cfg)
	} else {
		st, err = mgr.Start(a.runContext(), cfg)
	}
	if err != nil && a.servedElsewhere(name, cfg.Port, err) {
		return nil // portwait.go: taken over once the other process ends
	}
	a.setStartErr(name, err)
	if err != nil {
		a.publish(Event{Kind: EventServers, Server: name})
		return err
	}
	if err := a.state.Update(func(s *state.State) error {
		p := s.Proxies[name]
		p.Port = st.Port
		setProxy(s, name, p)
		return nil
	}); err != nil {
		a.log.Warn("could not record the proxy's port", "server", name, "err", err)
	}
	a.publish(Event{Kind: EventServers, Server: name})
	a.publish(Event{Kind: EventClients, Server: name})
	return nil
}

// setStartErr records (or, for nil, clears) why a server's proxy could not
// start, so its view says so while the user has it on.
func (a *App) setStartErr(name string, err error) {
	a.rtMu.Lock()
	defer a.rtMu.Unlock()
	if a.startErrs == nil {
		a.startErrs = map[string]string{}
	}
	if err == nil {
		delete(a.startErrs, name)
	} else {
		a.startErrs[name] = err.Error()
	}
}

// stopProxy stops a server's proxy if it runs.
func (a *App) stopProxy(name string) {
	a.setStartErr(name, nil)
	a.rtMu.Lock()
	mgr := a.mgr
	a.rtMu.Unlock()
	if mgr == nil {
		return
	}
	if err := mgr.Stop(name); err != nil && !errors.Is(err, proxymgr.ErrNotRunning) {
		a.log.Warn("stop proxy", "server", name, "err", err)
	}
	a.publish(Event{Kind: EventServers, Server: name})
}

// proxyConfig builds the proxy configuration of a server.
func (a *App) proxyConfig(ctx context.Context, s catalog.Server, port int) (proxymgr.Config, error) {
	upstream := s.URL
	if a.isDemo(s.Name) {
		u, err := a.ensureDemo(ctx)
		if err != nil {
			return proxymgr.Config{}, err
		}
		upstream = u
	}
	cfg := proxymgr.Config{
		Name:        s.Name,
		Upstream:    upstream,
		Port:        port,
		Credentials: a.proxyCredentials(s),
		Headers:     s.Headers,
		Policy:      proxymgr.ToolPolicy{Allow: s.Tools.Allow, Deny: s.Tools.Deny},
		Audit: proxymgr.AuditConfig{
			File:     a.AuditPath(s.Name),
			Params:   auditParams(s.Audit.Params),
			Redactor: a.secrets.Redactor(),
		},
		Logger: a.log, // proxymgr adds server=NAME itself
	}
	a.pinConfig(&cfg, s)
	if s.TLS.CAFile != "" {
		p, err := s.CAFilePath()
		if err != nil {
			return proxymgr.Config{}, fmt.Errorf("server %s: tls.ca_file: %w", s.Name, err)
		}
		cfg.CAFile = p
	}
	if s.Auth.Type == catalog.AuthOAuth {
		a.oauthHooks(&cfg, s)
	}
	return cfg, nil
}

func auditParams(p catalog.AuditParams) proxymgr.AuditParams {
	switch p {
	case catalog.AuditFull:
		return proxymgr.AuditParamsFull
	case catalog.AuditNone:
		return proxymgr.AuditParamsNone
	}
	return proxymgr.AuditParamsRedacted
}

// AuditPath is the audit log file of a server.
func (a *App) AuditPath(name string) string {
	return filepath.Join(a.dir, "audit", name+".jsonl")
}

// fillProxyStatus completes a view with its proxy's live status: from this
// process's manager, or, in the CLI, by asking the tray app's proxy on its
// recorded port.
func (a *App) fillProxyStatus(v *ServerView) {
	a.rtMu.Lock()
	mgr, startErr := a.mgr, a.startErrs[v.Name]
	a.rtMu.Unlock()
	if startErr != "" && v.Enabled {
		v.State, v.LastError = ProxyError, startErr
		if a.isServedElsewhere(v.Name) {
			v.State = ProxyRunning // by another Keyport process, on this port
		}
		return
	}
	if mgr != nil {
		if st, ok := mgr.Status(v.Name); ok {
			v.State = proxyState(st.State)
			if st.Port != 0 {
				v.Port = st.Port
				v.LocalURL = localURL(st.Port)
			}
			v.LastError = st.LastError
			c := st.Counters
			v.Counters = Counters{
				Requests: c.Requests, Errors: c.Errors, Denials: c.Denials,
				BytesIn: c.BytesIn, BytesOut: c.BytesOut, Sessions: c.Sessions,
				Streams: c.Streams, AuditDrops: c.AuditDrops, Redactions: c.Redactions, LatencyP50: st.Latency,
				ForeignPeers: c.ForeignPeers,
			}
			return
		}
	}
	if v.Enabled && v.Port != 0 && probeProxy(v.Port, v.Name) {
		v.State = ProxyRunning
	}
}

func proxyState(s proxymgr.State) ProxyState {
	switch s {
	case proxymgr.StateStarting:
		return ProxyStarting
	case proxymgr.StateRunning:
		return ProxyRunning
	case proxymgr.StateUnreachable:
		return ProxyUnreachable
	case proxymgr.StateError:
		return ProxyError
	}
	return ProxyStopped
}

// probeProxy reports whether Keyport's proxy for name answers on port (the
// tray app runs it): it asks the proxy's health endpoint, which names the
// server, so another program on that port is not mistaken for it.
func probeProxy(port int, name string) bool {
	c := http.Client{Timeout: 300 * time.Millisecond}
	resp, err := c.Get("http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + proxymgr.HealthPath)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && resp.Header.Get(proxymgr.HealthServerHeader) == name
}

// stopRuntime stops every proxy (in-flight requests get up to 5 s) and the
// demo server.
func (a *App) stopRuntime() error {
	var errs []error
	errs = append(errs, a.stopTelemetry())
	a.rtMu.Lock()
	mgr, demo := a.mgr, a.demo
	a.rtMu.Unlock()
	a.stopProfiles()
	if mgr != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		errs = append(errs, mgr.Close(ctx))
		cancel()
	}
	if demo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		errs = append(errs, demo.stop(ctx))
		cancel()
	}
	a.closePins()
	return errors.Join(errs...)
}
