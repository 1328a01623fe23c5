package fakecore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"keyport/app"
)

// profiles are kept beside the servers (profiles.go keeps its own lock
// usage: c.mu guards them too).

// AddProfile puts a profile into the fake catalog (for goldens and
// screenshots).
func (c *Core) AddProfile(v app.ProfileView) {
	c.mu.Lock()
	if c.profiles == nil {
		c.profiles = map[string]*app.ProfileView{}
	}
	if v.State == "" {
		v.State = app.ProxyStopped
	}
	c.profiles[v.Name] = &v
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers})
}

// Profiles returns the fake profiles, sorted by name.
func (c *Core) Profiles() []app.ProfileView {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]app.ProfileView, 0, len(c.profiles))
	for _, v := range c.profiles {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b app.ProfileView) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SetProfileEnabled turns a fake profile endpoint on or off.
func (c *Core) SetProfileEnabled(_ context.Context, name string, on bool) error {
	c.mu.Lock()
	c.record("SetProfileEnabled %s %t", name, on)
	p := c.profiles[name]
	if p == nil {
		c.mu.Unlock()
		return fmt.Errorf("no profile %q", name)
	}
	p.Enabled = on
	if on {
		p.State = app.ProxyRunning
		if p.Port == 0 {
			p.Port = 42000 + len(name)
		}
		p.LocalURL = fmt.Sprintf("http://127.0.0.1:%d/mcp", p.Port)
	} else {
		p.State = app.ProxyStopped
	}
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers})
	return nil
}

// SetProfile stores a profile.
func (c *Core) SetProfile(p app.NewProfile, create bool) error {
	c.mu.Lock()
	c.record("SetProfile %s %d %t", p.Name, len(p.Servers), create)
	if c.profiles == nil {
		c.profiles = map[string]*app.ProfileView{}
	}
	old, exists := c.profiles[p.Name]
	if exists && create {
		c.mu.Unlock()
		return fmt.Errorf("a profile named %q already exists", p.Name)
	}
	v := app.ProfileView{NewProfile: p, State: app.ProxyStopped}
	if exists {
		v.Enabled, v.State, v.Port, v.LocalURL = old.Enabled, old.State, old.Port, old.LocalURL
	}
	c.profiles[p.Name] = &v
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers})
	return nil
}

// RemoveProfile deletes a profile.
func (c *Core) RemoveProfile(name string) error {
	c.mu.Lock()
	c.record("RemoveProfile %s", name)
	delete(c.profiles, name)
	c.mu.Unlock()
	c.emit(app.Event{Kind: app.EventServers})
	return nil
}

// ProfileTools lists the fake tools of a server (ToolNames), each sized as
// a short definition.
func (c *Core) ProfileTools(_ context.Context, server string) ([]app.ProfileTool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("ProfileTools %s", server)
	var out []app.ProfileTool
	for _, n := range c.ToolNames[server] {
		out = append(out, app.ProfileTool{Name: n, Description: n + " of " + server, Bytes: 180 + 4*len(n)})
	}
	return out, nil
}
