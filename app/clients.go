package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"keyport/app/catalog"
	"keyport/app/state"
	"keyport/clientcfg"
	"keyport/proxymgr"
)

// clientsRuntime holds the client config editor (created on first use).
type clientsRuntime struct {
	once   sync.Once
	editor *clientcfg.Editor
	err    error
}

// editor returns the client config editor; its backups and undo journal
// live in the config dir.
func (a *App) editor() (*clientcfg.Editor, error) {
	a.clients.once.Do(func() {
		a.clients.editor, a.clients.err = clientcfg.NewEditor(clientcfg.Options{
			StateDir: filepath.Join(a.dir, "clientcfg"),
			Logger:   a.log,
		})
	})
	return a.clients.editor, a.clients.err
}

// clientEnv is the environment client config paths resolve in.
func (a *App) clientEnv() clientcfg.Env {
	return clientcfg.Env{GOOS: runtime.GOOS, Home: a.home, Getenv: a.env}
}

// want is what Keyport writes into a client for a server: the URL of its
// persistent local proxy (remote-capable clients), or a stdio entry running
// `keyport-cli connect NAME` by absolute path (Claude Desktop; see
// bridgeExe). The proxy's port
// is reserved now if it has none yet, so the entry stays right across
// restarts.
func (a *App) want(server string) (clientcfg.Want, error) {
	port, err := a.reservePort(server)
	if err != nil {
		return clientcfg.Want{}, err
	}
	return a.wantOn(server, port), nil
}

// wantOn is the entry for server's proxy on port (0: none yet, no URL).
func (a *App) wantOn(server string, port int) clientcfg.Want {
	w := clientcfg.Want{
		Server:  server,
		Command: a.bridgeExe(),
		Args:    []string{"connect", server},
		// GUI-launched clients strip the environment: tell the bridge
		// where the config is rather than hoping HOME leads there.
		Env: map[string]string{catalog.EnvConfigDir: a.dir},
	}
	if port != 0 {
		w.URL = localURL(port)
	}
	return w
}

// bridgeExe is the binary stdio clients run for `connect`: keyport-cli when
// it sits next to this binary (a bridge then needs about half the memory
// and start-up, and an AI client runs one per server for hours), this
// binary otherwise (a package that lacks it still works).
func (a *App) bridgeExe() string {
	name := "keyport-cli" // cmd/keyport-cli
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	lean := filepath.Join(filepath.Dir(a.exe), name)
	if fi, err := os.Stat(lean); err == nil && fi.Mode().IsRegular() && (runtime.GOOS == "windows" || fi.Mode().Perm()&0o111 != 0) {
		return lean
	}
	return a.exe
}

// reservePort returns the port recorded for a server's proxy, picking and
// recording a free one when there is none.
func (a *App) reservePort(server string) (int, error) {
	if p := a.state.Get().Proxies[server].Port; p != 0 {
		return p, nil
	}
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	err = a.state.Update(func(st *state.State) error {
		p := st.Proxies[server]
		if p.Port == 0 {
			p.Port = port
		}
		port = p.Port
		setProxy(st, server, p)
		return nil
	})
	return port, err
}

// freePort asks the OS for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// clientTarget resolves a client id to its user-scope config file.
func (a *App) clientTarget(id string) (clientcfg.Target, error) {
	if a.home == "" {
		return clientcfg.Target{}, errNoHome
	}
	c, ok := clientcfg.Lookup(id)
	if !ok {
		return clientcfg.Target{}, fmt.Errorf("unknown client %q (known: %v)", id, clientcfg.ClientIDs())
	}
	return c.UserTarget(a.clientEnv())
}

// errNoHome is why client configs cannot be found without a home dir.
var errNoHome = errors.New("no home directory (HOME is not set): client config files cannot be found")

// Clients returns every known client's state for a server, in table order.
func (a *App) Clients(server string) []ClientView {
	ed, err := a.editor()
	if err == nil && a.home == "" {
		err = errNoHome
	}
	env := a.clientEnv()
	var w clientcfg.Want
	var wantErr error
	if server != "" {
		if _, err := a.server(server); err != nil {
			wantErr = err
		} else {
			w = a.wantNoReserve(server)
		}
	}
	var out []ClientView
	for _, c := range clientcfg.Clients() {
		v := ClientView{ID: c.ID, Name: c.Name, NeedsRestart: c.NeedsRestart, Detected: c.Detected(env)}
		t, terr := c.UserTarget(env)
		if terr != nil {
			v.State, v.Detail = ClientMissing, terr.Error()
			out = append(out, v)
			continue
		}
		v.Path = t.Path
		switch {
		case err != nil:
			v.State, v.Detail = ClientMissing, err.Error()
		case server == "":
			v.State = ClientMissing
		case wantErr != nil:
			v.State, v.Detail = ClientMissing, wantErr.Error()
		default:
			v.State, v.Detail = a.entryState(ed, t, w)
			v.CanUndo = ed.CanUndo(t)
		}
		out = append(out, v)
	}
	// The organization's default clients come first.
	if def := a.catalog().DefaultClients(); len(def) > 0 {
		for i := range out {
			out[i].Default = slices.Contains(def, out[i].ID)
		}
		slices.SortStableFunc(out, func(x, y ClientView) int {
			switch {
			case x.Default && !y.Default:
				return -1
			case y.Default && !x.Default:
				return 1
			}
			return 0
		})
	}
	return out
}

// wantNoReserve is want without reserving a port: a server whose proxy
// never ran has no entry anywhere yet, so its state is simply missing.
func (a *App) wantNoReserve(server string) clientcfg.Want {
	return a.wantOn(server, a.state.Get().Proxies[server].Port)
}

// entryState reads one client's entry for w.Server.
func (a *App) entryState(ed *clientcfg.Editor, t clientcfg.Target, w clientcfg.Want) (ClientState, string) {
	sts, err := ed.Status(t, []clientcfg.Want{w})
	if err != nil {
		return ClientMissing, err.Error()
	}
	for _, st := range sts {
		if st.Server != w.Server {
			continue
		}
		switch st.State {
		case clientcfg.StateOK:
			if w.URL == "" { // no port yet: an entry cannot be right
				return ClientStale, "the server's proxy has no port yet"
			}
			return ClientOK, st.Detail
		case clientcfg.StateStale:
			return ClientStale, st.Detail
		case clientcfg.StateForeign:
			return ClientForeign, st.Detail
		}
	}
	return ClientMissing, ""
}

// clientOp builds the install (on) or remove (off) operation.
func (a *App) clientOp(server string, on bool) (clientcfg.Op, error) {
	if !on {
		return clientcfg.RemoveOp(server), nil
	}
	w, err := a.want(server)
	if err != nil {
		return clientcfg.Op{}, err
	}
	return clientcfg.InstallOp(w), nil
}

// PreviewClient shows the change Install (on) or Remove (off) would make to
// a client's config file, writing nothing.
func (a *App) PreviewClient(clientID, server string, on bool) (ClientChange, error) {
	return a.clientChange(clientID, server, on, false)
}

// ApplyClient installs (on) or removes (off) a server's entry in a client's
// config file.
func (a *App) ApplyClient(clientID, server string, on bool) (ClientChange, error) {
	return a.clientChange(clientID, server, on, true)
}

func (a *App) clientChange(clientID, server string, on, write bool) (ClientChange, error) {
	if _, err := a.server(server); err != nil && on {
		return ClientChange{}, err
	}
	ed, err := a.editor()
	if err != nil {
		return ClientChange{}, err
	}
	t, err := a.clientTarget(clientID)
	if err != nil {
		return ClientChange{}, err
	}
	op, err := a.clientOp(server, on)
	if err != nil {
		return ClientChange{}, err
	}
	var ch clientcfg.Change
	if write {
		ch, err = ed.Apply(t, op)
	} else {
		ch, err = ed.Preview(t, op)
	}
	if err != nil {
		return ClientChange{}, err
	}
	if write {
		a.rememberClient(clientID, server, on)
		a.publish(Event{Kind: EventClients, Server: server})
	}
	return ClientChange{Path: ch.Path, Diff: ch.Diff, Wrote: ch.Wrote}, nil
}

// rememberClient records which servers the user wired into a client.
func (a *App) rememberClient(clientID, server string, on bool) {
	err := a.state.Update(func(st *state.State) error {
		if st.Clients == nil {
			st.Clients = map[string]state.Client{}
		}
		c := st.Clients[clientID]
		c.Servers = slices.DeleteFunc(c.Servers, func(s string) bool { return s == server })
		if on {
			c.Servers = append(c.Servers, server)
			slices.Sort(c.Servers)
			c.Enabled = true
		}
		st.Clients[clientID] = c
		return nil
	})
	if err != nil {
		a.log.Warn("could not record the client's servers", "client", clientID, "err", err)
	}
}

// UndoClient restores a client's config file to before Keyport's last change.
func (a *App) UndoClient(clientID string) error {
	ed, err := a.editor()
	if err != nil {
		return err
	}
	t, err := a.clientTarget(clientID)
	if err != nil {
		return err
	}
	if _, err := ed.Undo(t); err != nil {
		return err
	}
	a.publish(Event{Kind: EventClients})
	return nil
}

// removeFromClients removes a server's entries from every client config
// that has one (the server is being removed).
func (a *App) removeFromClients(server string) error {
	ed, err := a.editor()
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range clientcfg.Clients() {
		t, err := c.UserTarget(a.clientEnv())
		if err != nil {
			continue
		}
		entries, err := ed.Entries(t)
		if err != nil {
			continue // unreadable or absent: nothing of ours to remove
		}
		if !slices.ContainsFunc(entries, func(e clientcfg.Entry) bool { return e.Key == clientcfg.EntryKey(server) }) {
			continue
		}
		if _, err := ed.Remove(t, server); err != nil && !errors.Is(err, clientcfg.ErrForeign) {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", server, c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// startClientWatcher watches every client's user config file and tells
// subscribers when one changes on disk (an edit outside Keyport, another
// Keyport process, a client rewriting its file).
func (a *App) startClientWatcher(ctx context.Context) error {
	ed, err := a.editor()
	if err != nil {
		return err
	}
	var targets []clientcfg.Target
	for _, c := range clientcfg.Clients() {
		if t, err := c.UserTarget(a.clientEnv()); err == nil {
			targets = append(targets, t)
		}
	}
	w, err := clientcfg.NewWatcher(ed, clientcfg.WatchOptions{Logger: a.log}, targets...)
	if err != nil {
		return err
	}
	changes := w.Watch(ctx)
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		defer w.Close()
		for range changes {
			a.publish(Event{Kind: EventClients})
		}
	}()
	return nil
}

// SelectServers picks servers for `keyport config`: the names given, or
// every server (all), or those with every label in labels.
func (a *App) SelectServers(names []string, all bool, labels map[string]string) ([]string, error) {
	if len(names) > 0 {
		for _, n := range names {
			if _, err := a.server(n); err != nil {
				return nil, err
			}
		}
		return names, nil
	}
	var out []string
	for _, v := range a.Servers() {
		ok := all || len(labels) > 0
		for k, want := range labels {
			if v.Labels[k] != want {
				ok = false
			}
		}
		if ok {
			out = append(out, v.Name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no server matches: name servers, or use --all or --labels k=v")
	}
	return out, nil
}

// SampleConfig renders the JSON block a client config needs for servers
// (what `keyport config` prints when no client is given). Reserving their
// ports makes the block stay right.
func (a *App) SampleConfig(servers []string, format string) ([]byte, error) {
	f, err := clientcfg.ParseJSONFormat(format)
	if err != nil {
		return nil, err
	}
	wants, err := a.wants(servers)
	if err != nil {
		return nil, err
	}
	return clientcfg.RenderSample(clientcfg.SampleClient(), wants, f)
}

// ConfiguredClient is what ConfigureClient wrote.
type ConfiguredClient struct {
	Path    string // the client's config file
	Restart string // the client's restart note
	// Remote: the entries hold local URLs the client connects to (not a
	// stdio command the client starts itself), so the endpoints must run.
	Remote bool
}

// ConfigureClient installs servers' entries into the client config that
// spec names (a client id, or a file path whose format follows the path),
// laid out per format (pretty, compact or auto).
func (a *App) ConfigureClient(spec string, servers []string, format, cwd string) (ConfiguredClient, error) {
	wants, err := a.wants(servers)
	if err != nil {
		return ConfiguredClient{}, err
	}
	return a.configure(spec, wants, format, cwd)
}

// configure installs entries into the client config spec names.
func (a *App) configure(spec string, wants []clientcfg.Want, format, cwd string) (ConfiguredClient, error) {
	f, err := clientcfg.ParseJSONFormat(format)
	if err != nil {
		return ConfiguredClient{}, err
	}
	t, err := clientcfg.ParseClientConfig(spec, a.clientEnv(), cwd)
	if err != nil {
		return ConfiguredClient{}, err
	}
	ed, err := clientcfg.NewEditor(clientcfg.Options{StateDir: filepath.Join(a.dir, "clientcfg"), Format: f, Logger: a.log})
	if err != nil {
		return ConfiguredClient{}, err
	}
	for _, w := range wants {
		if _, err := ed.Install(t, w); err != nil {
			return ConfiguredClient{}, err
		}
		if t.Client.ID != "" {
			a.rememberClient(t.Client.ID, w.Server, true)
		}
	}
	a.publish(Event{Kind: EventClients})
	return ConfiguredClient{Path: t.Path, Restart: t.Client.NeedsRestart, Remote: t.Client.RemoteCapable()}, nil
}

// Endpoint is a server's local endpoint: the URL remote clients' entries
// hold, and whether something serves it now.
type Endpoint struct {
	Name    string
	URL     string // http://127.0.0.1:PORT/mcp; "" before a port is assigned
	Running bool   // Keyport's proxy for the server answers there now
}

// Endpoint says whether name's local endpoint answers now: this process's
// proxy, or the tray app's (or another keyport proxy's), asked on its port.
func (a *App) Endpoint(name string) (Endpoint, error) {
	if _, err := a.server(name); err != nil {
		return Endpoint{}, err
	}
	port := a.state.Get().Proxies[name].Port
	e := Endpoint{Name: name}
	if port == 0 {
		return e, nil
	}
	e.URL = localURL(port)
	a.rtMu.Lock()
	mgr := a.mgr
	a.rtMu.Unlock()
	if mgr != nil {
		if st, ok := mgr.Status(name); ok && st.Port == port && (st.State == proxymgr.StateRunning || st.State == proxymgr.StateUnreachable) {
			e.Running = true
			return e, nil
		}
	}
	e.Running = probeProxy(port, name)
	return e, nil
}

// wants is want for several servers.
func (a *App) wants(servers []string) ([]clientcfg.Want, error) {
	out := make([]clientcfg.Want, 0, len(servers))
	for _, s := range servers {
		w, err := a.want(s)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}
