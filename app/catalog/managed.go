package catalog

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvManagedFile overrides where the managed settings file is read from
// (tests; an empty value keeps the OS's place).
const EnvManagedFile = "KEYPORT_MANAGED_FILE"

// ManagedByOrg is how every place that shows a managed value says so.
const ManagedByOrg = "set by your organization"

// ManagedPath is the organization's managed settings file: $KEYPORT_MANAGED_FILE,
// else /etc/keyport/managed.yaml (Linux and other Unix),
// /Library/Application Support/Keyport/managed.yaml (macOS),
// %ProgramData%\Keyport\managed.yaml (Windows). Only an administrator can
// write there.
func ManagedPath() string {
	if p := os.Getenv(EnvManagedFile); p != "" {
		return p
	}
	switch runtime.GOOS {
	case "darwin":
		return "/Library/Application Support/Keyport/managed.yaml"
	case "windows":
		pd := os.Getenv("ProgramData")
		if pd == "" {
			pd = `C:\ProgramData`
		}
		return filepath.Join(pd, "Keyport", "managed.yaml")
	}
	return "/etc/keyport/managed.yaml"
}

// StricterPinning is the stricter of two pinning modes ("" is unset):
// hold beats warn beats off. The managed mode of a server is merged with
// the user's through it, so a user can tighten but never loosen.
func StricterPinning(a, b PinMode) PinMode {
	rank := func(m PinMode) int {
		switch m {
		case PinHold:
			return 3
		case PinWarn:
			return 2
		case PinOff:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// Managed is the organization's managed settings file (managed.yaml): what
// it adds, forces and forbids. Users cannot loosen any of it.
type Managed struct {
	Path string
	// Servers are added to every user's catalog, read-only for the user.
	Servers []Server
	// Registries are added to the user's (the user cannot disable them).
	Registries []Registry
	// Rules force deny patterns and the pinning mode on the servers they
	// match.
	Rules []ManagedRule
	// ForbidInsecure refuses servers with insecure: true.
	ForbidInsecure bool
	// AllowedURLs, when set, refuses servers whose URL matches none of
	// these globs (`*` matches anything, e.g. https://*.corp.example/*).
	AllowedURLs []string
	// Telemetry, when set, is the export every user has (it replaces the
	// user's telemetry settings).
	Telemetry *Telemetry
	// DefaultClients are the MCP clients Keyport offers first (ids such
	// as cursor, claude, vscode).
	DefaultClients []string
}

// ManagedRule forces a policy on the servers it matches: by name (literal
// or glob) and/or by labels (all must match). A rule with neither matches
// every server.
type ManagedRule struct {
	Servers []string          `yaml:"servers,omitempty"`
	Labels  map[string]string `yaml:"labels,omitempty"`
	Deny    []string          `yaml:"deny,omitempty"`
	Pinning PinMode           `yaml:"pinning,omitempty"`
}

// ManagedInfo says which values of a server the organization sets.
type ManagedInfo struct {
	// Server: the whole entry comes from the managed file.
	Server bool
	// Deny are the deny patterns the organization forces (also in
	// Server.Tools.Deny).
	Deny []string
	// Pinning is the tool-pinning mode the organization forces ("" none);
	// see PinningMode.
	Pinning PinMode
}

// DenyPatterns is m.Deny (nil for a nil m).
func (m *ManagedInfo) DenyPatterns() []string {
	if m == nil {
		return nil
	}
	return m.Deny
}

// PinningMode is the tool-pinning mode in effect for the server: its own
// (tools.pinning, hold by default) or the organization's, whichever is
// stricter. Every user of the mode asks here, never Tools.Mode alone.
func (s *Server) PinningMode() PinMode {
	if s.Managed == nil {
		return s.Tools.Mode()
	}
	return StricterPinning(s.Tools.Mode(), s.Managed.Pinning)
}

// IsManagedDeny reports whether the organization forces deny pattern p on s.
func (s *Server) IsManagedDeny(p string) bool {
	return s.Managed != nil && (s.Managed.Server || slices.Contains(s.Managed.Deny, p))
}

// Blocked is a server of servers.yaml the managed settings refuse.
type Blocked struct {
	Name   string
	Reason string // says what to fix and that the organization set it
}

// ManagedState is what a merged catalog carries about the managed file.
type ManagedState struct {
	// Path of the managed file.
	Path string
	// Err, when set, says the managed file is invalid now: the last good
	// version is in effect. Show it loudly.
	Err string
	// Settings is the managed file in effect.
	Settings *Managed
	// Blocked lists the user's servers the managed settings refuse.
	Blocked []Blocked
}

// TelemetryManaged reports whether the telemetry settings in effect are
// the organization's.
func (c *Catalog) TelemetryManaged() bool {
	return c != nil && c.Managed != nil && c.Managed.Settings != nil && c.Managed.Settings.Telemetry != nil
}

// ManagedRegistry reports whether the registry called name is set by the
// organization.
func (c *Catalog) ManagedRegistry(name string) bool {
	if c == nil || c.Managed == nil || c.Managed.Settings == nil {
		return false
	}
	return slices.ContainsFunc(c.Managed.Settings.Registries, func(r Registry) bool { return r.Name == name })
}

// DefaultClients are the client ids the organization chose (nil: none).
func (c *Catalog) DefaultClients() []string {
	if c == nil || c.Managed == nil || c.Managed.Settings == nil {
		return nil
	}
	return c.Managed.Settings.DefaultClients
}

// CheckAllowed says why the managed settings refuse a server the user
// wants to add or change (nil when they do not): its name is one the
// organization set, it is insecure where that is forbidden, or its URL is
// outside the allowed patterns.
func (c *Catalog) CheckAllowed(s Server) error {
	if c == nil || c.Managed == nil || c.Managed.Settings == nil {
		return nil
	}
	if reason := c.Managed.Settings.refusal(s); reason != "" {
		return fmt.Errorf("server %q: %s", s.Name, reason)
	}
	return nil
}

// refusal is why m refuses the user's server s, or "".
func (m *Managed) refusal(s Server) string {
	if slices.ContainsFunc(m.Servers, func(o Server) bool { return o.Name == s.Name }) {
		return fmt.Sprintf("the name is taken by a server %s (%s); choose another name", ManagedByOrg, m.Path)
	}
	if m.ForbidInsecure && s.Insecure {
		return fmt.Sprintf("insecure: true is forbidden (%s, %s); use https", ManagedByOrg, m.Path)
	}
	if len(m.AllowedURLs) > 0 && !slices.ContainsFunc(m.AllowedURLs, func(p string) bool { return allowedURL(p, s.URL) }) {
		return fmt.Sprintf("its URL is outside the allowed URL patterns %s (%s): %s", ManagedByOrg, m.Path, strings.Join(m.AllowedURLs, ", "))
	}
	return ""
}

// allowedURL reports whether the server URL raw matches the allowed-URL
// pattern p (scheme://HOST[:PORT]/PATH, `*` matching any run of
// characters). The URL is parsed and each part matched on its own: the
// scheme exactly, the host (with its port, as in the pattern) ignoring
// case, then the path with the query and fragment. So a `*` of the host
// never reaches into the path: https://*.corp.example/* does not let
// https://evil.example/.corp.example/ in.
func allowedURL(p, raw string) bool {
	pScheme, rest, ok := strings.Cut(p, "://")
	if !ok {
		return false
	}
	pHost, pPath := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		pHost, pPath = rest[:i], rest[i:]
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" {
		return false
	}
	path := u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		path += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		path += "#" + u.EscapedFragment()
	}
	return strings.EqualFold(u.Scheme, pScheme) &&
		glob(strings.ToLower(pHost)).MatchString(strings.ToLower(u.Host)) &&
		glob(pPath).MatchString(path)
}

// glob compiles a pattern part: `*` matches any run of characters,
// everything else itself.
func glob(p string) *regexp.Regexp {
	parts := strings.Split(p, "*")
	for i, s := range parts {
		parts[i] = regexp.QuoteMeta(s)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

// matches reports whether rule r applies to server s.
func (r ManagedRule) matches(s Server) bool {
	if len(r.Servers) > 0 && !slices.ContainsFunc(r.Servers, func(p string) bool {
		ok, _ := path.Match(p, s.Name)
		return ok
	}) {
		return false
	}
	for k, v := range r.Labels {
		if s.Labels[k] != v {
			return false
		}
	}
	return true
}

// Merge lays the managed settings m over the user's catalog and returns the
// catalog in effect; neither input is changed. Stricter wins everywhere:
// managed servers replace the user's of the same name, the user's servers
// that m forbids are left out (listed in Managed.Blocked), rules add deny
// patterns and raise the pinning mode, managed registries and telemetry
// win. With m nil it returns user unchanged.
func Merge(user *Catalog, m *Managed) *Catalog {
	if m == nil {
		return user
	}
	out := &Catalog{Managed: &ManagedState{Path: m.Path, Settings: m}}
	if user != nil {
		out.Path = user.Path
		out.Telemetry = user.Telemetry
	}
	apply := func(s Server, whole bool) Server {
		info := &ManagedInfo{Server: whole}
		s.Tools.Deny = slices.Clone(s.Tools.Deny)
		for _, r := range m.Rules {
			if !r.matches(s) {
				continue
			}
			for _, d := range r.Deny {
				if !slices.Contains(info.Deny, d) {
					info.Deny = append(info.Deny, d)
				}
				if !slices.Contains(s.Tools.Deny, d) {
					s.Tools.Deny = append(s.Tools.Deny, d)
				}
			}
			info.Pinning = StricterPinning(info.Pinning, r.Pinning)
		}
		if whole || len(info.Deny) > 0 || info.Pinning != "" {
			s.Managed = info
		}
		return s
	}
	for _, s := range m.Servers {
		out.Servers = append(out.Servers, apply(s, true))
	}
	if user != nil {
		for _, s := range user.Servers {
			if reason := m.refusal(s); reason != "" {
				out.Managed.Blocked = append(out.Managed.Blocked, Blocked{Name: s.Name, Reason: reason})
				continue
			}
			out.Servers = append(out.Servers, apply(s, false))
		}
	}
	out.Registries = slices.Clone(m.Registries)
	if user != nil {
		for _, r := range user.Registries {
			if !slices.ContainsFunc(m.Registries, func(o Registry) bool { return o.Name == r.Name }) {
				out.Registries = append(out.Registries, r)
			}
		}
	}
	if m.Telemetry != nil {
		out.Telemetry = m.Telemetry
	}
	if user != nil {
		out.Profiles = profilesOver(user.Profiles, out.Servers)
	}
	return out
}

var managedFields = []string{"servers", "registries", "rules", "forbid_insecure", "allowed_urls", "telemetry", "default_clients"}

// ParseManaged reads a managed settings file; path names it in errors,
// which list every problem with its line (a *LoadError).
func ParseManaged(path string, data []byte) (*Managed, error) {
	p := &parser{}
	m := &Managed{Path: path}
	doc := p.document(data)
	if doc != nil && doc.Kind != 0 && len(doc.Content) > 0 {
		root := deref(doc.Content[0])
		switch {
		case isNull(root):
		case root.Kind != yaml.MappingNode:
			p.add(root.Line, "", "the managed file must be a mapping (servers:, rules:, telemetry: ...)")
		case !p.duplicates(root, ""):
			p.managed(root, m)
		}
	}
	if len(p.problems) > 0 {
		slices.SortStableFunc(p.problems, func(a, b Problem) int { return a.Line - b.Line })
		return nil, &LoadError{Path: path, Problems: p.problems, syntax: true}
	}
	return m, nil
}

func (p *parser) managed(root *yaml.Node, m *Managed) {
	f := fields{p: p, prefix: "", lines: map[string]int{}}
	cat := &Catalog{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], deref(root.Content[i+1])
		switch k.Value {
		case "servers":
			if v.Kind == yaml.SequenceNode {
				p.servers(v, cat)
			} else if !isNull(v) {
				p.add(v.Line, "servers", "must be a list of servers (- name: ...)")
			}
		case "registries":
			if v.Kind == yaml.SequenceNode {
				p.registries(v, cat)
			} else if !isNull(v) {
				p.add(v.Line, "registries", "must be a list (- name: ..., url: ...)")
			}
		case "rules":
			if v.Kind == yaml.SequenceNode {
				p.rules(v, m)
			} else if !isNull(v) {
				p.add(v.Line, "rules", "must be a list (- servers: [...], deny: [...])")
			}
		case "forbid_insecure":
			m.ForbidInsecure = f.boolean(v, "forbid_insecure")
		case "allowed_urls":
			m.AllowedURLs = f.strList(v, "allowed_urls")
			for j, u := range m.AllowedURLs {
				if !strings.Contains(u, "://") {
					p.add(v.Line, fmt.Sprintf("allowed_urls[%d]", j), "%q is not a URL pattern; write e.g. https://*.corp.example/*", u)
				}
			}
		case "telemetry":
			m.Telemetry = p.telemetry(v, "telemetry")
		case "default_clients":
			m.DefaultClients = f.strList(v, "default_clients")
			for j, c := range m.DefaultClients {
				if !nameRE.MatchString(c) {
					p.add(v.Line, fmt.Sprintf("default_clients[%d]", j), "%q is not a client id (claude, cursor, claude-code, vscode, windsurf, gemini)", c)
				}
			}
		default:
			p.unknown(k, k.Value, managedFields)
		}
	}
	m.Servers, m.Registries = cat.Servers, cat.Registries
}

func (p *parser) rules(seq *yaml.Node, m *Managed) {
	for i, item := range seq.Content {
		item = deref(item)
		prefix := fmt.Sprintf("rules[%d]", i)
		if item.Kind != yaml.MappingNode {
			p.add(item.Line, prefix, "must be a mapping (servers: [...], labels: {...}, deny: [...], pinning: hold)")
			continue
		}
		var r ManagedRule
		lines := map[string]int{"": item.Line}
		f := fields{p: p, prefix: prefix, lines: lines}
		p.duplicates(item, prefix+".")
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], deref(item.Content[j+1])
			lines[k.Value] = k.Line
			switch k.Value {
			case "servers":
				r.Servers = f.strList(v, "servers")
				for n, s := range r.Servers {
					if _, err := path.Match(s, ""); err != nil {
						f.bad(v, fmt.Sprintf("servers[%d]", n), "%q is not a valid name or glob", s)
					}
				}
			case "labels":
				r.Labels = f.strMap(v, "labels")
			case "deny":
				r.Deny = f.strList(v, "deny")
				for n, d := range r.Deny {
					if err := CheckToolPattern(d); err != nil {
						f.bad(v, fmt.Sprintf("deny[%d]", n), "%v", err)
					}
				}
			case "pinning":
				r.Pinning = PinMode(f.str(v, "pinning"))
				if !slices.Contains([]PinMode{PinHold, PinWarn, PinOff}, r.Pinning) {
					f.bad(v, "pinning", "%q is not one of hold, warn, off", r.Pinning)
				}
			default:
				p.unknown(k, prefix+"."+k.Value, []string{"servers", "labels", "deny", "pinning"})
			}
		}
		if len(r.Deny) == 0 && r.Pinning == "" {
			p.add(item.Line, prefix, "forces nothing: give deny patterns or a pinning mode")
		}
		m.Rules = append(m.Rules, r)
	}
}
