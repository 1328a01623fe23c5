// Package fakecore is an in-memory ui.Core for the UI's layout goldens,
// behaviour tests, screenshots and benchmarks. It starts no proxy and
// touches no file or keychain; every call is recorded. It is safe for
// concurrent use.
package fakecore

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"keyport/app"
	"keyport/app/telemetry"
)

// Core is a fake application core.
type Core struct {
	mu         sync.Mutex
	servers    map[string]*app.ServerView
	clients    map[string]map[string]app.ClientView // server -> client ID -> view
	undo       map[string]func()
	catalogErr string
	subs       map[int]chan app.Event
	nextSub    int
	calls      []string
	autostart  bool
	window     app.WindowPrefs
	demoHidden bool
	demo       *app.ServerView
	profiles   map[string]*app.ProfileView

	// Tools lists each server's tools (as the proxy would).
	ToolNames map[string][]string
	// AuditLog holds each server's audit entries, oldest first.
	AuditLog map[string][]app.AuditEntry
	// Registry is what SearchRegistry searches.
	Registry  []app.RegistryResult
	reviews   map[string]app.ToolReview // tool pinning, by server
	proxyErr  map[string]string
	gate      chan struct{}
	slowReads chan struct{}
	clientErr error
	closed    int
}

// FailProxy makes SetProxyEnabled(on) fail for server with msg (and leave
// it in state error); "" clears it.
func (c *Core) FailProxy(server, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.proxyErr[server] = msg
}

// SlowClients makes Clients wait for a value on gate (or its close)
// before answering, as a busy tray process would; nil answers at once.
func (c *Core) SlowClients(gate chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slowReads = gate
}

// SetGate makes SetProxyEnabled wait for a value on gate before answering
// (nil: answer at once), so tests can see the "starting" state.
func (c *Core) SetGate(gate chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate = gate
}

// FailClients makes ApplyClient fail with err (nil: succeed).
func (c *Core) FailClients(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clientErr = err
}

// Closed counts Close calls.
func (c *Core) Closed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// New returns a fake with the given servers and, for every server, the six
// known clients in state missing.
func New(servers ...app.ServerView) *Core {
	c := &Core{
		servers:   map[string]*app.ServerView{},
		clients:   map[string]map[string]app.ClientView{},
		undo:      map[string]func(){},
		subs:      map[int]chan app.Event{},
		ToolNames: map[string][]string{},
		AuditLog:  map[string][]app.AuditEntry{},
		proxyErr:  map[string]string{},
	}
	for _, s := range servers {
		c.put(s)
	}
	return c
}

// KnownClients are the clients every fake server starts with.
var KnownClients = []app.ClientView{
	{ID: "claude", Name: "Claude Desktop", Path: "~/.config/Claude/claude_desktop_config.json", Detected: true, NeedsRestart: "Restart Claude Desktop to load the change."},
	{ID: "cursor", Name: "Cursor", Path: "~/.cursor/mcp.json", Detected: true},
	{ID: "claude-code", Name: "Claude Code", Path: "~/.claude.json", Detected: true},
	{ID: "vscode", Name: "VS Code", Path: "~/.config/Code/User/mcp.json", Detected: true},
	{ID: "windsurf", Name: "Windsurf", Path: "~/.codeium/windsurf/mcp_config.json", Detected: false},
	{ID: "gemini", Name: "Gemini CLI", Path: "~/.gemini/settings.json", Detected: false},
}

func (c *Core) put(s app.ServerView) {
	if s.State == "" {
		s.State = app.ProxyStopped
	}
	cp := s
	c.servers[s.Name] = &cp
	if s.Demo {
		c.demo = &cp
	}
	m := map[string]app.ClientView{}
	for _, cl := range KnownClients {
		cl.State = app.ClientMissing
		m[cl.ID] = cl
	}
	c.clients[s.Name] = m
}

// SetClient sets a client's view for a server (e.g. stale) and notifies.
func (c *Core) SetClient(server string, v app.ClientView) {
	c.mu.Lock()
	c.clients[server][v.ID] = v
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventClients, Server: server})
}

// Update changes a server with f and notifies, as a status change would.
func (c *Core) Update(name string, f func(*app.ServerView)) {
	c.mu.Lock()
	if s := c.servers[name]; s != nil {
		f(s)
	}
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers, Server: name})
}

// SetCatalogError sets the catalog error and notifies.
func (c *Core) SetCatalogError(msg string) {
	c.mu.Lock()
	c.catalogErr = msg
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventCatalogError, Err: msg})
}

// AppendAudit adds an audit entry and sends EventAudit.
func (c *Core) AppendAudit(server string, e app.AuditEntry) {
	c.mu.Lock()
	c.AuditLog[server] = append(c.AuditLog[server], e)
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventAudit, Server: server})
}

// Emit sends an event to every subscriber.
func (c *Core) Emit(ev app.Event) { c.emit(ev) }

func (c *Core) emit(ev app.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.subs {
		select {
		case ch <- ev:
		default: // a slow subscriber misses a refresh, never blocks the core
		}
	}
}

// Calls returns the recorded calls, e.g. "SetProxyEnabled cloud true".
func (c *Core) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

func (c *Core) record(format string, args ...any) {
	c.calls = append(c.calls, fmt.Sprintf(format, args...))
}

// Servers returns the servers sorted by name.
func (c *Core) Servers() []app.ServerView {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]app.ServerView, 0, len(c.servers))
	for _, s := range c.servers {
		if s.Demo && c.demoHidden {
			continue
		}
		cp := *s
		cp.Labels = clone(s.Labels)
		cp.Allow, cp.Deny = slices.Clone(s.Allow), slices.Clone(s.Deny)
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func clone(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// CatalogError returns the catalog error.
func (c *Core) CatalogError() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.catalogErr
}

// Subscribe returns an event channel.
func (c *Core) Subscribe() (<-chan app.Event, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.nextSub
	c.nextSub++
	ch := make(chan app.Event, 64)
	c.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.subs, id)
			c.mu.Unlock()
			close(ch)
		})
	}
}

// SetProxyEnabled turns a server's fake proxy on or off.
func (c *Core) SetProxyEnabled(ctx context.Context, name string, on bool) error {
	c.mu.Lock()
	c.record("SetProxyEnabled %s %t", name, on)
	gate := c.gate
	s := c.servers[name]
	c.mu.Unlock()
	if s == nil {
		return fmt.Errorf("no server named %q", name)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	var err error
	s.Enabled = on
	switch {
	case !on:
		s.State, s.LastError = app.ProxyStopped, ""
	case c.proxyErr[name] != "":
		s.State, s.LastError = app.ProxyError, c.proxyErr[name]
		err = errors.New(c.proxyErr[name])
	default:
		s.State, s.LastError = app.ProxyRunning, ""
		if s.Port == 0 {
			s.Port = 41000 + len(name)
		}
		s.LocalURL = fmt.Sprintf("http://127.0.0.1:%d/mcp", s.Port)
	}
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers, Server: name})
	return err
}

// SetSecret marks a credential kind as set. The value is not kept.
func (c *Core) SetSecret(name, kind, value string) error {
	c.mu.Lock()
	defer c.emit(app.Event{Kind: app.EventServers, Server: name})
	defer c.mu.Unlock()
	c.record("SetSecret %s %s (%d bytes)", name, kind, len(value))
	s := c.servers[name]
	if s == nil {
		return fmt.Errorf("no server named %q", name)
	}
	if value == "" {
		return errors.New("empty secret")
	}
	s.Credential.Missing = slices.DeleteFunc(s.Credential.Missing, func(k string) bool { return k == kind })
	if !slices.Contains(s.Credential.Kinds, kind) {
		s.Credential.Kinds = append(s.Credential.Kinds, kind)
	}
	s.Credential.Set = len(s.Credential.Missing) == 0
	return nil
}

// ClearSecrets marks every credential missing.
func (c *Core) ClearSecrets(name string) error {
	c.mu.Lock()
	defer c.emit(app.Event{Kind: app.EventServers, Server: name})
	defer c.mu.Unlock()
	c.record("ClearSecrets %s", name)
	s := c.servers[name]
	if s == nil {
		return fmt.Errorf("no server named %q", name)
	}
	s.Credential.Set = false
	s.Credential.Missing = slices.Clone(s.Credential.Kinds)
	if s.AuthType == "oauth" {
		s.Credential.SignInNeeded = true
	}
	return nil
}

// SignIn opens a fake authorization URL and marks the server signed in.
func (c *Core) SignIn(ctx context.Context, name string, openURL func(string) error) error {
	c.mu.Lock()
	c.record("SignIn %s", name)
	c.mu.Unlock()
	if err := openURL("https://auth.example.com/authorize?server=" + name); err != nil {
		return err
	}
	c.Update(name, func(s *app.ServerView) { s.Credential.SignInNeeded = false; s.Credential.Set = true })
	return nil
}

// SetToolPolicy stores a policy after checking its patterns.
func (c *Core) SetToolPolicy(name string, allow, deny []string) error {
	if _, err := c.CheckPolicy(allow, deny, nil); err != nil {
		return err
	}
	c.mu.Lock()
	c.record("SetToolPolicy %s allow=%v deny=%v", name, allow, deny)
	if s := c.servers[name]; s != nil {
		s.Allow, s.Deny = slices.Clone(allow), slices.Clone(deny)
	}
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers, Server: name})
	return nil
}

// Tools lists a server's tools, marked by its policy. The proxy must run.
func (c *Core) Tools(ctx context.Context, name string) ([]app.Tool, error) {
	c.mu.Lock()
	s := c.servers[name]
	names := slices.Clone(c.ToolNames[name])
	c.record("Tools %s", name)
	c.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("no server named %q", name)
	}
	if s.State != app.ProxyRunning {
		return nil, fmt.Errorf("%s's proxy is not running: turn it on to list its tools", name)
	}
	allowed, err := c.CheckPolicy(s.Allow, s.Deny, names)
	if err != nil {
		return nil, err
	}
	out := make([]app.Tool, len(names))
	for i, n := range names {
		out[i] = app.Tool{Name: n, Description: "The " + strings.ReplaceAll(n, "_", " ") + " tool.", Allowed: slices.Contains(allowed, n)}
	}
	return out, nil
}

// CheckPolicy applies allow and deny patterns (literal, glob or ^regex$;
// deny wins; an empty allow list allows all) to tools.
func (c *Core) CheckPolicy(allow, deny []string, tools []string) ([]string, error) {
	match := func(p, name string) (bool, error) {
		if strings.HasPrefix(p, "^") && strings.HasSuffix(p, "$") {
			re, err := regexp.Compile(p)
			if err != nil {
				return false, fmt.Errorf("pattern %q: %v", p, err)
			}
			return re.MatchString(name), nil
		}
		ok, err := path.Match(p, name)
		if err != nil {
			return false, fmt.Errorf("pattern %q: %v", p, err)
		}
		return ok, nil
	}
	for _, p := range append(slices.Clone(allow), deny...) {
		if _, err := match(p, ""); err != nil {
			return nil, err
		}
	}
	out := []string{}
	for _, t := range tools {
		ok := len(allow) == 0
		for _, p := range allow {
			if m, _ := match(p, t); m {
				ok = true
			}
		}
		for _, p := range deny {
			if m, _ := match(p, t); m {
				ok = false
			}
		}
		if ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// Audit returns the newest n entries, oldest first.
func (c *Core) Audit(name string, n int) ([]app.AuditEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := c.AuditLog[name]
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return slices.Clone(all), nil
}

// AuditPath is a path under /nonexistent: the fake keeps no log file.
func (c *Core) AuditPath(name string) string { return "/nonexistent/keyport/audit/" + name + ".jsonl" }

// Clients returns the server's client views, in the known order.
func (c *Core) Clients(server string) []app.ClientView {
	c.mu.Lock()
	gate := c.slowReads
	c.mu.Unlock()
	if gate != nil {
		<-gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.clients[server]
	var out []app.ClientView
	for _, k := range KnownClients {
		if v, ok := m[k.ID]; ok {
			out = append(out, v)
		}
	}
	return out
}

func entryDiff(v app.ClientView, server string, on bool) string {
	line := fmt.Sprintf(`    "%s": {"url": "http://127.0.0.1:41000/mcp"}`, server)
	sign := "+"
	if !on {
		sign = "-"
	}
	return fmt.Sprintf("--- %s\n+++ %s\n@@ -1,3 +1,4 @@\n {\n   \"mcpServers\": {\n%s%s\n   }\n", v.Path, v.Path, sign, line)
}

// PreviewClient returns a small diff of the change.
func (c *Core) PreviewClient(clientID, server string, on bool) (app.ClientChange, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("PreviewClient %s %s %t", clientID, server, on)
	v, ok := c.clients[server][clientID]
	if !ok {
		return app.ClientChange{}, fmt.Errorf("unknown client %q", clientID)
	}
	return app.ClientChange{Path: v.Path, Diff: entryDiff(v, server, on)}, nil
}

// ApplyClient installs or removes the entry; UndoClient restores it.
func (c *Core) ApplyClient(clientID, server string, on bool) (app.ClientChange, error) {
	c.mu.Lock()
	c.record("ApplyClient %s %s %t", clientID, server, on)
	if err := c.clientErr; err != nil {
		c.mu.Unlock()
		return app.ClientChange{}, err
	}
	v, ok := c.clients[server][clientID]
	if !ok {
		c.mu.Unlock()
		return app.ClientChange{}, fmt.Errorf("unknown client %q", clientID)
	}
	before := v
	c.undo[clientID] = func() { c.clients[server][clientID] = before }
	v.State = app.ClientMissing
	if on {
		v.State = app.ClientOK
	}
	v.CanUndo = true
	v.Detail = ""
	c.clients[server][clientID] = v
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventClients, Server: server})
	return app.ClientChange{Path: v.Path, Diff: entryDiff(v, server, on), Wrote: true}, nil
}

// UndoClient restores the client's state before the last ApplyClient.
func (c *Core) UndoClient(clientID string) error {
	c.mu.Lock()
	c.record("UndoClient %s", clientID)
	f := c.undo[clientID]
	delete(c.undo, clientID)
	if f != nil {
		f()
	}
	c.mu.Unlock()
	if f == nil {
		return fmt.Errorf("nothing to undo for %s", clientID)
	}
	c.emit(app.Event{Kind: app.EventClients})
	return nil
}

// AddServer adds a server after basic checks.
func (c *Core) AddServer(s app.NewServer) error {
	c.mu.Lock()
	c.record("AddServer %s %s %s secrets=%d", s.Name, s.URL, s.AuthType, len(s.Secrets))
	if _, dup := c.servers[s.Name]; dup {
		c.mu.Unlock()
		return fmt.Errorf("a server named %q exists: choose another name", s.Name)
	}
	v := app.ServerView{Name: s.Name, UpstreamURL: s.URL, Description: s.Description, Labels: s.Labels, AuthType: s.AuthType}
	for k := range s.Secrets {
		v.Credential.Kinds = append(v.Credential.Kinds, k)
	}
	v.Credential.Needed = len(s.Secrets) > 0
	v.Credential.Set = v.Credential.Needed
	c.put(v)
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers, Server: s.Name})
	return nil
}

// RemoveServer removes a server.
func (c *Core) RemoveServer(name string) error {
	c.mu.Lock()
	c.record("RemoveServer %s", name)
	delete(c.servers, name)
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers, Server: name})
	return nil
}

// SearchRegistry returns the registry entries whose name, title or
// description contain the query.
func (c *Core) SearchRegistry(ctx context.Context, q string) ([]app.RegistryResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("SearchRegistry %s", q)
	var out []app.RegistryResult
	for _, r := range c.Registry {
		if strings.Contains(strings.ToLower(r.Name+" "+r.Title+" "+r.Description), strings.ToLower(q)) {
			out = append(out, r)
		}
	}
	return out, nil
}

// ImportFromRegistry adds a registry server.
func (c *Core) ImportFromRegistry(ctx context.Context, r app.RegistryResult, secrets map[string]string) error {
	ns := app.NewServer{Name: r.Name, URL: r.URL, Description: r.Description, AuthType: "none"}
	if len(r.SecretHeaders) > 0 {
		ns.AuthType = "headers"
		ns.Secrets = map[string]string{}
		for h, v := range secrets {
			ns.Secrets["header/"+h] = v
		}
	}
	c.mu.Lock()
	c.record("ImportFromRegistry %s secrets=%d", r.ID, len(secrets))
	c.mu.Unlock()
	return c.AddServer(ns)
}

// SetDemoHidden hides or shows the demo server.
func (c *Core) SetDemoHidden(hidden bool) error {
	c.mu.Lock()
	c.record("SetDemoHidden %t", hidden)
	c.demoHidden = hidden
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers})
	return nil
}

// Telemetry reports the export's status: none configured, as on a fresh
// install.
func (c *Core) Telemetry() telemetry.Status {
	return telemetry.Status{Reason: "no collector configured"}
}

// Autostart reports the start-at-login setting.
func (c *Core) Autostart() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.autostart
}

// SetAutostart sets it.
func (c *Core) SetAutostart(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("SetAutostart %t", on)
	c.autostart = on
	return nil
}

// SetReview sets a server's tool pinning review (the tools held for
// review) and its view's count, and notifies.
func (c *Core) SetReview(name string, r app.ToolReview) {
	c.mu.Lock()
	if c.reviews == nil {
		c.reviews = map[string]app.ToolReview{}
	}
	r.Server = name
	c.reviews[name] = r
	if s := c.servers[name]; s != nil {
		s.ToolChanges = r.Pending()
	}
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers, Server: name})
}

// ToolReview returns what SetReview set (nothing held otherwise).
func (c *Core) ToolReview(name string) (app.ToolReview, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("ToolReview %s", name)
	if c.servers[name] == nil {
		return app.ToolReview{}, fmt.Errorf("no server named %q", name)
	}
	r, ok := c.reviews[name]
	if !ok {
		return app.ToolReview{Server: name, Mode: "hold"}, nil
	}
	r.Changes = slices.Clone(r.Changes)
	return r, nil
}

// decide approves (the tool joins the listed tools) or blocks held tools.
func (c *Core) decide(verb, name string, tools []string, all, approve bool) ([]app.ToolDecision, error) {
	c.mu.Lock()
	c.record("%s %s %v all=%t", verb, name, tools, all)
	r := c.reviews[name]
	var out []app.ToolDecision
	kept := r.Changes[:0:0]
	for _, ch := range r.Changes {
		if !all && !slices.Contains(tools, ch.Tool) {
			kept = append(kept, ch)
			continue
		}
		out = append(out, app.ToolDecision{Tool: ch.Tool, OldHash: ch.OldHash, NewHash: ch.NewHash})
		if approve {
			if !slices.Contains(c.ToolNames[name], ch.Tool) {
				c.ToolNames[name] = append(c.ToolNames[name], ch.Tool)
			}
			r.Approved++
			continue
		}
		ch.Blocked = true
		kept = append(kept, ch)
	}
	if len(out) == 0 && !all {
		c.mu.Unlock()
		return nil, fmt.Errorf("no held tool %v on %s", tools, name)
	}
	r.Changes = kept
	if c.reviews == nil {
		c.reviews = map[string]app.ToolReview{}
	}
	c.reviews[name] = r
	if s := c.servers[name]; s != nil {
		s.ToolChanges = r.Pending()
	}
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers, Server: name})
	return out, nil
}

// ApproveTools approves held tools: they join the server's tools.
func (c *Core) ApproveTools(name string, tools []string, all bool) ([]app.ToolDecision, error) {
	return c.decide("ApproveTools", name, tools, all, true)
}

// BlockTools marks held tools blocked.
func (c *Core) BlockTools(name string, tools []string, all bool) ([]app.ToolDecision, error) {
	return c.decide("BlockTools", name, tools, all, false)
}

// ResetPins forgets the review.
func (c *Core) ResetPins(name string) (int, error) {
	c.mu.Lock()
	c.record("ResetPins %s", name)
	n := c.reviews[name].Approved
	delete(c.reviews, name)
	if s := c.servers[name]; s != nil {
		s.ToolChanges = 0
	}
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers, Server: name})
	return n, nil
}

// WindowPrefs returns the window preferences last set.
func (c *Core) WindowPrefs() app.WindowPrefs {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.window
}

// SetWindowPrefs records them.
func (c *Core) SetWindowPrefs(p app.WindowPrefs) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("SetWindowPrefs %gx%g %.2f", p.Width, p.Height, p.Split)
	c.window = p
	return nil
}

// Close counts the call.
func (c *Core) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("Close")
	c.closed++
	return nil
}

// Sample returns a fake with a realistic catalog: several servers with
// labels, one running with traffic, one in error, one whose upstream is
// unreachable, one with a tool policy, one needing an OAuth sign-in, and a
// few audit entries — for goldens and screenshots.
func Sample() *Core {
	at := time.Date(2026, 7, 1, 9, 30, 0, 0, time.Local)
	c := New(
		app.ServerView{Name: "demo", Demo: true, Description: "Keyport's built-in demo server: try a tool without an account.",
			UpstreamURL: "https://demo.keyport.dev/mcp", AuthType: "none", Labels: map[string]string{"env": "demo"},
			Port: 41001, LocalURL: "http://127.0.0.1:41001/mcp"},
		app.ServerView{Name: "github", Description: "GitHub issues, pull requests and code search.",
			UpstreamURL: "https://api.githubcopilot.com/mcp/", AuthType: "bearer", Labels: map[string]string{"team": "core", "env": "prod"},
			Enabled: true, State: app.ProxyRunning, Port: 41002, LocalURL: "http://127.0.0.1:41002/mcp",
			Credential: app.CredentialStatus{Needed: true, Set: true, Kinds: []string{"bearer"}},
			Allow:      []string{"search_*", "get_*", "list_*"}, Deny: []string{"delete_*"},
			Counters: app.Counters{Requests: 1284, Errors: 3, Denials: 7, BytesIn: 2_457_600, BytesOut: 310_000, Sessions: 4, Streams: 2, LatencyP50: 84 * time.Millisecond}},
		app.ServerView{Name: "linear", Description: "Linear issues and projects.",
			UpstreamURL: "https://mcp.linear.app/mcp", AuthType: "oauth", Labels: map[string]string{"team": "product"},
			Port: 41003, LocalURL: "http://127.0.0.1:41003/mcp",
			Credential: app.CredentialStatus{Needed: true, SignInNeeded: true}},
		app.ServerView{Name: "sentry", Description: "Sentry errors and performance issues.",
			UpstreamURL: "https://mcp.sentry.dev/mcp", AuthType: "headers", Labels: map[string]string{"team": "core", "env": "prod"},
			Enabled: true, State: app.ProxyUnreachable, Port: 41004, LocalURL: "http://127.0.0.1:41004/mcp",
			LastError:  "mcp.sentry.dev does not answer (connection timed out); Keyport retries every 30 s.",
			Credential: app.CredentialStatus{Needed: true, Set: true, Kinds: []string{"header/X-Sentry-Token"}}},
		app.ServerView{Name: "warehouse", Description: "Internal data warehouse queries (read-only).",
			UpstreamURL: "https://mcp.internal.example.com/warehouse", AuthType: "bearer", Labels: map[string]string{"team": "data", "env": "staging"},
			Enabled: true, State: app.ProxyError, Port: 41005, LocalURL: "http://127.0.0.1:41005/mcp",
			LastError:  "port 41005 is taken by another program: quit it, or turn the proxy off and on to pick a new port.",
			Credential: app.CredentialStatus{Needed: true, Missing: []string{"bearer"}, Kinds: []string{"bearer"}}},
	)
	c.ToolNames["github"] = []string{"search_code", "search_issues", "get_issue", "list_pull_requests", "create_issue", "delete_branch", "merge_pull_request"}
	c.ToolNames["demo"] = []string{"echo", "add", "get_time"}
	for i, e := range []struct {
		method, tool, outcome string
		ms                    int
	}{
		{"initialize", "", "ok", 120}, {"tools/list", "", "ok", 45}, {"tools/call", "search_code", "ok", 310},
		{"tools/call", "get_issue", "ok", 95}, {"tools/call", "delete_branch", "denied", 0},
		{"tools/call", "search_issues", "error", 1200}, {"tools/call", "list_pull_requests", "ok", 180},
	} {
		c.AuditLog["github"] = append(c.AuditLog["github"], app.AuditEntry{
			Time: at.Add(time.Duration(i) * 17 * time.Second), Event: "request", Method: e.method, Tool: e.tool,
			Outcome: e.outcome, Duration: time.Duration(e.ms) * time.Millisecond,
			Raw: fmt.Sprintf(`{"event":"request","method":%q,"tool":%q,"outcome":%q}`, e.method, e.tool, e.outcome),
		})
	}
	gh := c.clients["github"]
	v := gh["claude"]
	v.State, v.CanUndo = app.ClientOK, false
	gh["claude"] = v
	v = gh["cursor"]
	v.State, v.Detail = app.ClientStale, "Its URL points at port 40999; the proxy now listens on 41002."
	gh["cursor"] = v
	v = gh["vscode"]
	v.State = app.ClientForeign
	gh["vscode"] = v
	c.Registry = []app.RegistryResult{
		{ID: "io.github.acme/notes", Name: "notes", Title: "Acme Notes", Description: "Search and edit notes.", URL: "https://notes.acme.dev/mcp", Version: "1.2.0"},
		{ID: "com.example/weather", Name: "weather", Title: "Weather", Description: "Forecasts by city.", URL: "https://weather.example.com/mcp", Version: "0.3.1", SecretHeaders: []string{"X-API-Key"}},
	}
	return c
}

// Generate returns n servers named server-0001... with a description, two
// labels out of a few, and every third one running — for benchmarks.
func Generate(n int) []app.ServerView {
	teams := []string{"core", "data", "product", "infra", "security"}
	envs := []string{"prod", "staging", "dev"}
	out := make([]app.ServerView, n)
	for i := range out {
		s := app.ServerView{
			Name:        fmt.Sprintf("server-%04d", i),
			Description: fmt.Sprintf("Generated MCP server number %d for the %s team", i, teams[i%len(teams)]),
			UpstreamURL: fmt.Sprintf("https://mcp%d.example.com/mcp", i),
			Labels:      map[string]string{"team": teams[i%len(teams)], "env": envs[i%len(envs)]},
			AuthType:    "none",
			Port:        20000 + i,
			LocalURL:    fmt.Sprintf("http://127.0.0.1:%d/mcp", 20000+i),
		}
		if i%3 == 0 {
			s.Enabled, s.State = true, app.ProxyRunning
		}
		out[i] = s
	}
	return out
}
