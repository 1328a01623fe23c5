package app

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"keyport/app/catalog"
	"keyport/app/catalog/demo"
	"keyport/app/secrets"
	"keyport/proxymgr/policy"
)

// DemoName is the catalog name of the built-in demo server.
const DemoName = demo.Name

// servers returns the effective server list: the catalog's, or the demo
// server alone when the catalog is empty and the user has not hidden it.
func (a *App) servers() []catalog.Server {
	cat := a.catalog()
	if !cat.Empty() {
		return cat.Servers
	}
	if !demo.Visible(cat, a.state.Get().HideDemo) || a.CatalogErr() != nil {
		return nil
	}
	return []catalog.Server{a.demoServer()}
}

// server finds a server by name in the effective list.
func (a *App) server(name string) (catalog.Server, error) {
	for _, s := range a.servers() {
		if s.Name == name {
			return s, nil
		}
	}
	if err := a.CatalogErr(); err != nil {
		return catalog.Server{}, fmt.Errorf("no server %q: servers.yaml has errors: %w", name, err)
	}
	names := make([]string, 0)
	for _, s := range a.servers() {
		names = append(names, s.Name)
	}
	if len(names) == 0 {
		return catalog.Server{}, fmt.Errorf("no server %q: the catalog is empty; add one with 'keyport add NAME URL' or edit %s", name, a.ServersFile())
	}
	return catalog.Server{}, fmt.Errorf("no server %q (known: %s)", name, strings.Join(names, ", "))
}

// Server returns one server's view.
func (a *App) Server(name string) (ServerView, error) {
	s, err := a.server(name)
	if err != nil {
		return ServerView{}, err
	}
	return a.view(s), nil
}

// Servers returns every server with its status, sorted by name.
func (a *App) Servers() []ServerView {
	list := a.servers()
	views := make([]ServerView, 0, len(list))
	for _, s := range list {
		views = append(views, a.view(s))
	}
	slices.SortFunc(views, func(x, y ServerView) int { return strings.Compare(x.Name, y.Name) })
	return views
}

// view builds the view of one server. It reads memory only (the keychain
// index is cached by secrets.Store), so the UI may call it on its goroutine.
func (a *App) view(s catalog.Server) ServerView {
	v := ServerView{
		Name:        s.Name,
		Description: s.Description,
		UpstreamURL: s.URL,
		Labels:      maps.Clone(s.Labels),
		AuthType:    string(s.Auth.Type),
		Demo:        a.isDemo(s.Name),
		Allow:       slices.Clone(s.Tools.Allow),
		Deny:        slices.Clone(s.Tools.Deny),
		State:       ProxyStopped,
	}
	if v.Demo {
		v.UpstreamURL = "built-in demo server (in-process)"
	}
	if m := s.Managed; m != nil {
		v.Managed, v.ManagedDeny, v.ManagedPinning = m.Server, slices.Clone(m.Deny), m.Pinning
	}
	p := a.state.Get().Proxies[s.Name]
	v.Enabled, v.Port = p.Enabled, p.Port
	v.Credential = a.credentialStatus(s)
	a.fillProxyStatus(&v)
	if v.Port != 0 && v.LocalURL == "" {
		v.LocalURL = localURL(v.Port)
	}
	return v
}

// localURL is the MCP endpoint of a local proxy on port.
func localURL(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/mcp", port) }

// credentialStatus reports which of a server's secrets are in the keychain.
func (a *App) credentialStatus(s catalog.Server) CredentialStatus {
	var cs CredentialStatus
	switch s.Auth.Type {
	case catalog.AuthOAuth:
		cs.Needed = true
		cs.Set = a.signedIn(s)
		cs.SignInNeeded = !cs.Set
		return cs
	case catalog.AuthNone, "":
		return cs
	}
	needed := s.SecretKinds()
	cs.Needed = len(needed) > 0
	have, err := a.secrets.Kinds(s.Name)
	if err != nil {
		cs.Missing = needed
		return cs
	}
	for _, k := range needed {
		if !slices.Contains(have, k) {
			cs.Missing = append(cs.Missing, k)
		}
	}
	cs.Set = len(cs.Missing) == 0
	return cs
}

// AddServer adds a server to servers.yaml and its secrets to the keychain.
// Secrets are written first and removed again if the file edit fails, so a
// failure leaves nothing half-done.
func (a *App) AddServer(n NewServer) error {
	s := catalog.Server{
		Name:        n.Name,
		Description: n.Description,
		URL:         n.URL,
		Labels:      n.Labels,
		Headers:     n.Headers,
		Auth:        catalog.Auth{Type: catalog.AuthType(n.AuthType)},
	}
	values := map[string]string{}
	for k, v := range n.Secrets {
		if name, ok := strings.CutPrefix(k, "header/"); ok {
			if s.Auth.Type == catalog.AuthHeaders {
				s.Auth.SecretHeaders = append(s.Auth.SecretHeaders, name)
			}
			k = secrets.HeaderKind(name) // the canonical kind
		}
		values[k] = v
	}
	slices.Sort(s.Auth.SecretHeaders)
	return a.addServer(s, values)
}

// addServer validates s, stores its secrets, then adds it to servers.yaml;
// if the file edit fails the secrets are removed again, so a failure leaves
// nothing half-done.
func (a *App) addServer(s catalog.Server, secretValues map[string]string) error {
	if err := s.Check(); err != nil {
		return fmt.Errorf("server %q: %w", s.Name, err)
	}
	if err := a.CatalogErr(); err != nil {
		return fmt.Errorf("servers.yaml has errors; fix them before adding a server: %w", err)
	}
	if err := a.catalog().CheckAllowed(s); err != nil {
		return err
	}
	if _, ok := a.catalog().Lookup(s.Name); ok {
		return fmt.Errorf("a server named %q already exists; pick another name or remove it first (keyport rm %s)", s.Name, s.Name)
	}
	for _, kind := range s.SecretKinds() {
		if secretValues[kind] == "" {
			return fmt.Errorf("server %q needs a value for %s", s.Name, kind)
		}
	}
	var stored []string
	undo := func() {
		for _, k := range stored {
			_ = a.secrets.Delete(s.Name, k)
		}
	}
	for _, kind := range s.SecretKinds() {
		if err := a.secrets.Set(s.Name, kind, secretValues[kind]); err != nil {
			undo()
			return err
		}
		stored = append(stored, kind)
	}
	if err := a.file.Add(s); err != nil {
		undo()
		return err
	}
	a.catalogChanged()
	return nil
}

// RemoveServer removes a server from servers.yaml, stops its proxy, deletes
// its keychain items and removes its entries from every client config.
func (a *App) RemoveServer(name string) error {
	if a.isDemo(name) {
		return a.SetDemoHidden(true)
	}
	if s, ok := a.catalog().Lookup(name); !ok {
		_, err := a.server(name)
		return err
	} else if err := refuseManaged(s, "removed"); err != nil {
		return err
	}
	a.stopProxy(name)
	var errs []error
	if err := a.removeFromClients(name); err != nil {
		errs = append(errs, err)
	}
	if err := a.file.Remove(name); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := a.secrets.DeleteServer(name, a.oauthKinds(name)...); err != nil {
		errs = append(errs, fmt.Errorf("remove %s's keychain items: %w", name, err))
	}
	if err := a.state.ForgetServer(name); err != nil {
		errs = append(errs, err)
	}
	a.catalogChanged()
	return errors.Join(errs...)
}

// SetToolPolicy replaces a server's tool allow and deny patterns in
// servers.yaml. A running proxy picks the change up through the reload.
func (a *App) SetToolPolicy(name string, allow, deny []string) error {
	s, ok := a.catalog().Lookup(name)
	if !ok {
		if name == DemoName {
			return errors.New("the demo server's policy cannot be edited; add your own server to try policies")
		}
		_, err := a.server(name)
		return err
	}
	if err := refuseManaged(s, "edited"); err != nil {
		return err
	}
	// The organization's deny patterns stay whatever the caller sends; they
	// are applied from the managed file, never written to servers.yaml.
	var own []string
	for _, d := range s.Managed.DenyPatterns() {
		if !slices.Contains(deny, d) {
			return fmt.Errorf("server %q: the deny pattern %q is %s (%s); it cannot be removed here", name, d, catalog.ManagedByOrg, a.catalog().Managed.Path)
		}
	}
	for _, d := range deny {
		if !s.IsManagedDeny(d) {
			own = append(own, d)
		}
	}
	s.Tools = catalog.Tools{Allow: allow, Deny: own}
	s.Managed = nil
	if err := s.Check(); err != nil {
		return err
	}
	if err := a.file.Update(s); err != nil {
		return err
	}
	a.catalogChanged()
	return nil
}

// SetDemoHidden hides or shows the built-in demo server.
func (a *App) SetDemoHidden(hidden bool) error {
	if hidden {
		a.stopProxy(DemoName)
	}
	if err := a.state.SetHideDemo(hidden); err != nil {
		return err
	}
	a.catalogChanged()
	return nil
}

// SetSecret stores a credential item (kind "bearer" or "header/NAME") of a
// server in the keychain.
func (a *App) SetSecret(name, kind, value string) error {
	s, err := a.server(name)
	if err != nil {
		return err
	}
	if !slices.Contains(s.SecretKinds(), kind) {
		want := s.SecretKinds()
		if len(want) == 0 {
			return fmt.Errorf("server %q uses auth type %q, which needs no secret", name, s.Auth.Type)
		}
		return fmt.Errorf("server %q has no secret %q (it uses: %s)", name, kind, strings.Join(want, ", "))
	}
	if value == "" {
		return errors.New("the secret is empty")
	}
	if err := a.secrets.Set(name, kind, value); err != nil {
		return err
	}
	a.publish(Event{Kind: EventServers, Server: name})
	return nil
}

// ClearSecrets removes every credential of a server from the keychain.
func (a *App) ClearSecrets(name string) error {
	s, err := a.server(name)
	if err != nil {
		return err
	}
	for _, kind := range s.SecretKinds() {
		if err := a.secrets.Delete(name, kind); err != nil && !errors.Is(err, secrets.ErrNotFound) {
			return err
		}
	}
	a.publish(Event{Kind: EventServers, Server: name})
	return nil
}

// catalogChanged re-reads servers.yaml after one of our own edits and
// applies it at once, rather than waiting for the file watcher.
func (a *App) catalogChanged() {
	old, cur, err := a.reloadCatalog()
	a.applyCatalog(old, cur, err)
}

// SecretKinds lists the keychain kinds a server's credentials use
// ("bearer", "header/X-API-Key"...).
func (a *App) SecretKinds(name string) ([]string, error) {
	s, err := a.server(name)
	if err != nil {
		return nil, err
	}
	return s.SecretKinds(), nil
}

// probeToolNames are unlike tool names; a deny pattern that matches them all
// matches any tool.
var probeToolNames = []string{"a", "Z", "get_weather", "x-y.z/1", "9", "日本語"}

// AllowsNoTool reports whether a server's tool policy denies every tool (a
// deny pattern such as "*" or "^.*$"): `keyport ls` marks it with [!].
func (a *App) AllowsNoTool(v ServerView) bool {
	for _, d := range v.Deny {
		p, err := policy.Compile(nil, []string{d})
		if err != nil {
			continue
		}
		all := true
		for _, n := range probeToolNames {
			if p.Allowed(n) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// refuseManaged refuses to change a server the organization's managed
// settings define, saying why.
func refuseManaged(s catalog.Server, what string) error {
	if s.Managed != nil && s.Managed.Server {
		return fmt.Errorf("server %q is %s (managed settings); it cannot be %s here — ask your administrator", s.Name, catalog.ManagedByOrg, what)
	}
	return nil
}
