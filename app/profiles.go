package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"keyport/app/catalog"
	"keyport/app/state"
	"keyport/clientcfg"
	"keyport/proxymgr/gateway"
	"keyport/proxymgr/policy"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A profile is a named set of servers (servers.yaml's profiles:) served to
// AI clients on one local endpoint: a gateway (proxymgr/gateway) whose
// member sessions go through each server's own Keyport proxy, so
// credentials, policy and the audit log stay in that proxy. Like a server,
// a profile's endpoint is turned on and off, and keeps its port.

// ProfileServer is one server of a profile as the user chose it.
type ProfileServer struct {
	Server string
	// Tools narrows the server to these tools; nil serves every tool its
	// policy allows.
	Tools []string
	// Overrides by the server's own tool name.
	Overrides map[string]ToolOverride
}

// ToolOverride renames a tool and/or replaces its description.
type ToolOverride struct {
	Rename      string
	Description string
}

// NewProfile is what `keyport profile add` and the Profiles view submit.
type NewProfile struct {
	Name         string
	Description  string
	PrefixAlways bool // prefix every name with SERVER_ (else only colliding ones)
	Servers      []ProfileServer
}

// ProfileView is one profile with its endpoint's status.
type ProfileView struct {
	NewProfile
	Enabled   bool // the user turned the endpoint on
	State     ProxyState
	Port      int    // recorded even while stopped
	LocalURL  string // http://127.0.0.1:PORT/mcp, empty until a port is known
	LastError string
	// Members is, while the endpoint runs, whether each server is reached.
	Members  []ProfileMember
	Sessions int // client sessions open on the endpoint (2025 era)
}

// ProfileMember is a server of a running profile as the endpoint sees it.
type ProfileMember struct {
	Server string
	Up     bool
	Error  string
	Idle   bool // no client has used it yet: not tried, so not known down
}

// ProfileEntryName is the client config entry key of a profile's
// endpoint, without the keyport- prefix: keyport-profile-NAME.
func ProfileEntryName(name string) string { return catalog.ProfileEntryPrefix + name }

// profilesRuntime holds the running profile endpoints of the tray app.
type profilesRuntime struct {
	mu       sync.Mutex
	gateways map[string]*gateway.Gateway
	errs     map[string]string // why an endpoint the user turned on could not start
}

func toCatalogProfile(p NewProfile) catalog.Profile {
	cp := catalog.Profile{Name: p.Name, Description: p.Description, Prefix: catalog.PrefixAuto}
	if p.PrefixAlways {
		cp.Prefix = catalog.PrefixAlways
	}
	for _, s := range p.Servers {
		ps := catalog.ProfileServer{Server: s.Server, Tools: slices.Clone(s.Tools)}
		if len(ps.Tools) == 0 {
			ps.Tools = nil
		}
		for tool, o := range s.Overrides {
			if ps.Overrides == nil {
				ps.Overrides = map[string]catalog.ToolOverride{}
			}
			ps.Overrides[tool] = catalog.ToolOverride{Rename: o.Rename, Description: o.Description}
		}
		cp.Servers = append(cp.Servers, ps)
	}
	return cp
}

func fromCatalogProfile(cp catalog.Profile) NewProfile {
	p := NewProfile{Name: cp.Name, Description: cp.Description, PrefixAlways: cp.Prefix == catalog.PrefixAlways}
	for _, s := range cp.Servers {
		ps := ProfileServer{Server: s.Server, Tools: slices.Clone(s.Tools)}
		for tool, o := range s.Overrides {
			if ps.Overrides == nil {
				ps.Overrides = map[string]ToolOverride{}
			}
			ps.Overrides[tool] = ToolOverride{Rename: o.Rename, Description: o.Description}
		}
		p.Servers = append(p.Servers, ps)
	}
	return p
}

// profile finds a profile of the catalog.
func (a *App) profile(name string) (catalog.Profile, error) {
	cat := a.catalog()
	if p, ok := cat.Profile(name); ok {
		return p, nil
	}
	if err := a.CatalogErr(); err != nil {
		return catalog.Profile{}, fmt.Errorf("no profile %q: servers.yaml has errors: %w", name, err)
	}
	var names []string
	for _, p := range cat.Profiles {
		names = append(names, p.Name)
	}
	if len(names) == 0 {
		return catalog.Profile{}, fmt.Errorf("no profile %q: there are none yet; add one with 'keyport profile add NAME SERVER...'", name)
	}
	return catalog.Profile{}, fmt.Errorf("no profile %q (known: %s)", name, strings.Join(names, ", "))
}

// Profiles returns every profile with its endpoint's status, sorted by name.
func (a *App) Profiles() []ProfileView {
	cat := a.catalog()
	out := make([]ProfileView, 0, len(cat.Profiles))
	for _, p := range cat.Profiles {
		out = append(out, a.profileView(p))
	}
	slices.SortFunc(out, func(x, y ProfileView) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// profileMembers converts the gateway's member states.
func profileMembers(ms []gateway.MemberStatus) []ProfileMember {
	var out []ProfileMember
	for _, m := range ms {
		out = append(out, ProfileMember{Server: m.Server, Up: m.Up, Error: m.Error, Idle: m.Idle})
	}
	return out
}

// Profile returns one profile's view.
func (a *App) Profile(name string) (ProfileView, error) {
	p, err := a.profile(name)
	if err != nil {
		return ProfileView{}, err
	}
	return a.profileView(p), nil
}

func (a *App) profileView(p catalog.Profile) ProfileView {
	st := a.state.Get().Profiles[p.Name]
	v := ProfileView{NewProfile: fromCatalogProfile(p), Enabled: st.Enabled, Port: st.Port, State: ProxyStopped}
	if st.Port != 0 {
		v.LocalURL = localURL(st.Port)
	}
	a.profiles.mu.Lock()
	g, startErr := a.profiles.gateways[p.Name], a.profiles.errs[p.Name]
	a.profiles.mu.Unlock()
	switch {
	case g != nil:
		gs := g.Status()
		v.State, v.Port, v.LocalURL, v.Sessions = ProxyRunning, g.Port(), g.URL(), gs.Sessions
		v.Members = profileMembers(gs.Members)
	case startErr != "" && st.Enabled:
		v.State, v.LastError = ProxyError, startErr
	case st.Port != 0 && !a.runsInProcess():
		// The tray app, or a `keyport proxy --profile`, serves it.
		if h, ok := probeProfileHealth(st.Port, p.Name); ok {
			v.State, v.Sessions = ProxyRunning, h.Sessions
			v.Members = profileMembers(h.Members)
		}
	}
	return v
}

// runsInProcess reports whether this process is the tray app (it runs the
// profile endpoints itself); the CLI asks the app's endpoint on its port.
func (a *App) runsInProcess() bool {
	a.rtMu.Lock()
	defer a.rtMu.Unlock()
	return a.started
}

// probeProfile reports whether Keyport's endpoint for profile name answers
// on port.
func probeProfile(port int, name string) bool {
	_, ok := probeProfileHealth(port, name)
	return ok
}

// probeProfileHealth asks Keyport's endpoint for profile name on port how
// it is; ok is false when no such endpoint answers there. A body it cannot
// read (an older Keyport) still counts as running, with no members known.
func probeProfileHealth(port int, name string) (h gateway.Health, ok bool) {
	c := http.Client{Timeout: 300 * time.Millisecond}
	resp, err := c.Get("http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + gateway.HealthPath)
	if err != nil {
		return h, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(gateway.HealthProfileHeader) != name {
		return h, false
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h) != nil {
		h = gateway.Health{}
	}
	return h, true
}

// SetProfile writes a profile into servers.yaml: a new one (create), or
// the one of that name replaced. It is checked against the servers first,
// with servers.yaml's own rules, so nothing invalid is written.
func (a *App) SetProfile(p NewProfile, create bool) error {
	if err := a.CatalogErr(); err != nil {
		return fmt.Errorf("servers.yaml has errors; fix them first: %w", err)
	}
	cat := a.catalog()
	if _, exists := cat.Profile(p.Name); exists && create {
		return fmt.Errorf("a profile named %q already exists; remove it first ('keyport profile rm %s') or edit it in the app", p.Name, p.Name)
	} else if !exists && !create {
		_, err := a.profile(p.Name)
		return err
	}
	cp := toCatalogProfile(p)
	if err := catalog.CheckProfile(cat, cp); err != nil {
		return err
	}
	if err := a.file.SetProfile(cp); err != nil {
		return err
	}
	a.catalogChanged()
	return a.CatalogErr()
}

// RemoveProfile removes a profile from servers.yaml, stops its endpoint,
// forgets its port and removes its entries from every client config.
func (a *App) RemoveProfile(name string) error {
	if _, err := a.profile(name); err != nil {
		return err
	}
	a.stopProfile(name)
	var errs []error
	if err := a.removeFromClients(ProfileEntryName(name)); err != nil {
		errs = append(errs, err)
	}
	if err := a.file.RemoveProfile(name); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := a.state.Update(func(st *state.State) error {
		delete(st.Profiles, name)
		return nil
	}); err != nil {
		errs = append(errs, err)
	}
	a.catalogChanged()
	return errors.Join(errs...)
}

// SetProfileEnabled turns a profile's endpoint on or off and records the
// choice. Turning it on turns on its servers' proxies too: the endpoint
// reaches each server through its proxy.
func (a *App) SetProfileEnabled(ctx context.Context, name string, on bool) error {
	p, err := a.profile(name)
	if err != nil {
		return err
	}
	if err := a.state.Update(func(st *state.State) error {
		if st.Profiles == nil {
			st.Profiles = map[string]state.Proxy{}
		}
		r := st.Profiles[name]
		r.Enabled = on
		st.Profiles[name] = r
		return nil
	}); err != nil {
		return err
	}
	if !on {
		a.stopProfile(name)
		return nil
	}
	for _, s := range p.Servers {
		if v, err := a.Server(s.Server); err == nil && v.State != ProxyRunning && v.State != ProxyUnreachable {
			if err := a.SetProxyEnabled(ctx, s.Server, true); err != nil {
				a.log.Warn("a server of the profile could not start; the profile serves the others", "profile", name, "server", s.Server, "err", err)
			}
		}
	}
	return a.startProfile(name)
}

// reserveProfilePort returns the port recorded for a profile's endpoint,
// picking and recording a free one when there is none.
func (a *App) reserveProfilePort(name string) (int, error) {
	if p := a.state.Get().Profiles[name].Port; p != 0 {
		return p, nil
	}
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	err = a.state.Update(func(st *state.State) error {
		if st.Profiles == nil {
			st.Profiles = map[string]state.Proxy{}
		}
		r := st.Profiles[name]
		if r.Port == 0 {
			r.Port = port
		}
		port = r.Port
		st.Profiles[name] = r
		return nil
	})
	return port, err
}

// gatewayConfig is the gateway configuration of profile p, whose members
// are reached at the URLs member returns.
func (a *App) gatewayConfig(p catalog.Profile, port int, member func(server string) (string, error), log *slog.Logger) (gateway.Config, error) {
	cfg := gateway.Config{Name: p.Name, Port: port, PrefixAlways: p.Prefix == catalog.PrefixAlways, Logger: log}
	for _, s := range p.Servers {
		u, err := member(s.Server)
		if err != nil {
			return gateway.Config{}, err
		}
		m := gateway.Member{Server: s.Server, URL: u, Tools: slices.Clone(s.Tools)}
		for tool, o := range s.Overrides {
			if m.Overrides == nil {
				m.Overrides = map[string]gateway.Override{}
			}
			m.Overrides[tool] = gateway.Override{Name: o.Rename, Description: o.Description}
		}
		cfg.Members = append(cfg.Members, m)
	}
	return cfg, nil
}

// memberURL is the endpoint of a server's proxy in the tray app: where it
// runs, or its assigned port (it is being started, or will be).
func (a *App) memberURL(server string) (string, error) {
	if st, ok := a.manager().Status(server); ok && st.Port != 0 {
		return localURL(st.Port), nil
	}
	port, err := a.reservePort(server)
	if err != nil {
		return "", err
	}
	return localURL(port), nil
}

// startProfile starts (or reconfigures) a profile's endpoint in the tray
// app on its recorded port.
func (a *App) startProfile(name string) error {
	p, err := a.profile(name)
	if err != nil {
		return err
	}
	port, err := a.reserveProfilePort(name)
	if err != nil {
		return err
	}
	cfg, err := a.gatewayConfig(p, port, a.memberURL, a.log)
	if err != nil {
		a.setProfileErr(name, err)
		return err
	}
	cfg.OnChange = func() { a.publish(Event{Kind: EventServers}) }
	a.profiles.mu.Lock()
	running := a.profiles.gateways[name]
	a.profiles.mu.Unlock()
	if running != nil {
		err := running.Update(cfg)
		a.setProfileErr(name, err)
		a.publish(Event{Kind: EventServers})
		return err
	}
	g, err := gateway.New(cfg)
	if err == nil {
		err = g.Start(a.runContext())
	}
	if err != nil {
		if errors.Is(err, gateway.ErrPortInUse) && probeProfile(port, name) {
			err = fmt.Errorf("another Keyport process ('keyport proxy --profile %s' or a bridge) serves profile %s on port %d; turn it on again when that process ended", name, name, port)
		}
		a.setProfileErr(name, err)
		a.publish(Event{Kind: EventServers})
		return err
	}
	a.profiles.mu.Lock()
	if a.profiles.gateways == nil {
		a.profiles.gateways = map[string]*gateway.Gateway{}
	}
	a.profiles.gateways[name] = g
	a.profiles.mu.Unlock()
	a.setProfileErr(name, nil)
	a.publish(Event{Kind: EventServers})
	a.publish(Event{Kind: EventClients})
	return nil
}

func (a *App) setProfileErr(name string, err error) {
	a.profiles.mu.Lock()
	defer a.profiles.mu.Unlock()
	if a.profiles.errs == nil {
		a.profiles.errs = map[string]string{}
	}
	if err == nil {
		delete(a.profiles.errs, name)
	} else {
		a.profiles.errs[name] = err.Error()
	}
}

// stopProfile stops a profile's endpoint if it runs.
func (a *App) stopProfile(name string) {
	a.profiles.mu.Lock()
	g := a.profiles.gateways[name]
	delete(a.profiles.gateways, name)
	delete(a.profiles.errs, name)
	a.profiles.mu.Unlock()
	if g != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		if err := g.Shutdown(ctx); err != nil {
			a.log.Warn("stop profile endpoint", "profile", name, "err", err)
		}
		cancel()
	}
	a.publish(Event{Kind: EventServers})
}

// stopProfiles stops every profile endpoint (the app is closing).
func (a *App) stopProfiles() {
	a.profiles.mu.Lock()
	names := slices.Collect(maps.Keys(a.profiles.gateways))
	a.profiles.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() { a.stopProfile(n) })
	}
	wg.Wait()
}

// restoreProfiles starts, in the background, the profile endpoints that
// were on (after the proxies: their members).
func (a *App) restoreProfiles() {
	for name, r := range a.state.Get().Profiles {
		if !r.Enabled {
			continue
		}
		if _, err := a.profile(name); err != nil {
			continue
		}
		a.bg.Go(func() {
			if err := a.startProfile(name); err != nil {
				a.log.Warn("could not restore a profile endpoint", "profile", name, "err", err)
			}
		})
	}
}

// applyProfiles follows servers.yaml: endpoints of changed profiles take
// the new configuration (their client sessions go on and hear
// list_changed), those of removed profiles stop, added ones the user had
// on start.
func (a *App) applyProfiles(old, cur *catalog.Catalog) {
	if !a.runsInProcess() {
		return
	}
	d := catalog.CompareProfiles(old, cur)
	for _, name := range d.Removed {
		a.stopProfile(name)
	}
	st := a.state.Get()
	for _, name := range append(slices.Clone(d.Changed), d.Added...) {
		a.profiles.mu.Lock()
		_, running := a.profiles.gateways[name]
		a.profiles.mu.Unlock()
		if running || st.Profiles[name].Enabled {
			if err := a.startProfile(name); err != nil {
				a.log.Warn("could not apply the profile's new configuration", "profile", name, "err", err)
			}
		}
	}
}

// ProfileEndpoint says whether a profile's endpoint answers now (for
// `keyport config --profile`).
func (a *App) ProfileEndpoint(name string) (Endpoint, error) {
	if _, err := a.profile(name); err != nil {
		return Endpoint{}, err
	}
	e := Endpoint{Name: name}
	port := a.state.Get().Profiles[name].Port
	if port == 0 {
		return e, nil
	}
	e.URL = localURL(port)
	a.profiles.mu.Lock()
	g := a.profiles.gateways[name]
	a.profiles.mu.Unlock()
	e.Running = g != nil || probeProfile(port, name)
	return e, nil
}

// profileWant is what Keyport writes into a client for a profile: the URL
// of its endpoint (remote-capable clients), or a stdio entry running
// `keyport-cli connect --profile NAME`. The entry is keyport-profile-NAME.
func (a *App) profileWant(name string) (clientcfg.Want, error) {
	if _, err := a.profile(name); err != nil {
		return clientcfg.Want{}, err
	}
	port, err := a.reserveProfilePort(name)
	if err != nil {
		return clientcfg.Want{}, err
	}
	return clientcfg.Want{
		Server:  ProfileEntryName(name),
		Command: a.bridgeExe(),
		Args:    []string{"connect", "--profile", name},
		Env:     map[string]string{catalog.EnvConfigDir: a.dir},
		URL:     localURL(port),
	}, nil
}

// ConfigureProfileClient writes a profile's one entry (keyport-profile-NAME)
// into the client config spec names (as ConfigureClient does for servers).
func (a *App) ConfigureProfileClient(spec, name, format, cwd string) (ConfiguredClient, error) {
	w, err := a.profileWant(name)
	if err != nil {
		return ConfiguredClient{}, err
	}
	return a.configure(spec, []clientcfg.Want{w}, format, cwd)
}

// SampleProfileConfig renders the JSON block of a profile's entry.
func (a *App) SampleProfileConfig(name, format string) ([]byte, error) {
	f, err := clientcfg.ParseJSONFormat(format)
	if err != nil {
		return nil, err
	}
	w, err := a.profileWant(name)
	if err != nil {
		return nil, err
	}
	return clientcfg.RenderSample(clientcfg.SampleClient(), []clientcfg.Want{w}, f)
}

// ProfileTool is a tool a server's policy allows, as the Profiles view
// offers it: Bytes is the size of its definition in a tools/list, so the
// view can show what a selection costs the model's context.
type ProfileTool struct {
	Name        string
	Description string
	Bytes       int
}

// ApproxTokens estimates the tokens of n bytes of tool definitions (JSON
// runs at about four bytes per token in the common tokenizers).
func ApproxTokens(n int) int { return (n + 3) / 4 }

// ProfileTools lists the tools of server that its policy allows, with the
// size of each definition, straight from the server with its credentials
// (the Tools of the policy editor, narrowed to what a profile may serve).
func (a *App) ProfileTools(ctx context.Context, server string) ([]ProfileTool, error) {
	s, err := a.server(server)
	if err != nil {
		return nil, err
	}
	pol, err := policy.Compile(s.Tools.Allow, s.Tools.Deny)
	if err != nil {
		return nil, err
	}
	endpoint := s.URL
	if a.isDemo(s.Name) {
		if endpoint, err = a.ensureDemo(ctx); err != nil {
			return nil, err
		}
	}
	hc, err := a.upstreamClient(s)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "keyport", Version: Version}, nil)
	sess, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		return nil, fmt.Errorf("list %s's tools: %w", server, err)
	}
	defer sess.Close()
	var out []ProfileTool
	for t, err := range sess.Tools(ctx, nil) {
		if err != nil {
			return nil, fmt.Errorf("list %s's tools: %w", server, err)
		}
		if !pol.Allowed(t.Name) {
			continue
		}
		b, _ := json.Marshal(t)
		out = append(out, ProfileTool{Name: t.Name, Description: t.Description, Bytes: len(b) + 1})
	}
	return out, nil
}
