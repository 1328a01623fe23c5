package catalog

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"keyport/proxymgr/policy"
)

// Profile is one entry of servers.yaml's profiles: a named set of servers,
// each optionally narrowed to some of its tools, served to AI clients on
// one local endpoint.
type Profile struct {
	// Name identifies the profile (same rules as a server's name).
	Name string `yaml:"name"`
	// Description is shown in `keyport profile ls` and the app.
	Description string `yaml:"description,omitempty"`
	// Prefix says when names get their server's prefix (SERVER_NAME):
	// "auto" (the default) when they collide, "always" for every one.
	Prefix string `yaml:"prefix,omitempty"`
	// Servers are the profile's servers, in order.
	Servers []ProfileServer `yaml:"servers"`
}

// Prefix modes.
const (
	PrefixAuto   = "auto"
	PrefixAlways = "always"
)

// ProfileServer is one server of a profile.
type ProfileServer struct {
	// Server is the server's name in servers.
	Server string `yaml:"server"`
	// Tools narrows the server to these tools (its own names); empty
	// serves every tool its policy allows.
	Tools []string `yaml:"tools,omitempty"`
	// Overrides rename tools and replace their descriptions, keyed by the
	// server's own tool name.
	Overrides map[string]ToolOverride `yaml:"overrides,omitempty"`
}

// ToolOverride is what a profile changes about one tool.
type ToolOverride struct {
	// Rename is the name clients see instead.
	Rename string `yaml:"rename,omitempty"`
	// Description replaces the server's description of the tool, so the
	// model reads the user's words (an answer to tool poisoning too).
	Description string `yaml:"description,omitempty"`
}

// Profile finds the profile called name.
func (c *Catalog) Profile(name string) (Profile, bool) {
	if c != nil {
		for _, p := range c.Profiles {
			if p.Name == name {
				return p, true
			}
		}
	}
	return Profile{}, false
}

// Equal reports whether two profiles are the same in every field.
func (p Profile) Equal(o Profile) bool { return reflect.DeepEqual(p, o) }

// Uses reports whether the profile serves server.
func (p Profile) Uses(server string) bool {
	return slices.ContainsFunc(p.Servers, func(s ProfileServer) bool { return s.Server == server })
}

// ProfileDiff is what changed between the profiles of two catalogs, by
// name, each list sorted. A profile whose servers changed (in servers:) is
// in Changed too.
type ProfileDiff struct {
	Added, Changed, Removed []string
}

// CompareProfiles returns the profile changes from old to cur.
func CompareProfiles(old, cur *Catalog) ProfileDiff {
	var d ProfileDiff
	before := map[string]Profile{}
	if old != nil {
		for _, p := range old.Profiles {
			before[p.Name] = p
		}
	}
	serverChanged := map[string]bool{}
	for _, s := range Compare(old, cur).Changed {
		serverChanged[s] = true
	}
	now := map[string]bool{}
	if cur != nil {
		for _, p := range cur.Profiles {
			now[p.Name] = true
			prev, ok := before[p.Name]
			switch {
			case !ok:
				d.Added = append(d.Added, p.Name)
			case !prev.Equal(p) || slices.ContainsFunc(p.Servers, func(s ProfileServer) bool { return serverChanged[s.Server] }):
				d.Changed = append(d.Changed, p.Name)
			}
		}
	}
	for name := range before {
		if !now[name] {
			d.Removed = append(d.Removed, name)
		}
	}
	slices.Sort(d.Added)
	slices.Sort(d.Changed)
	slices.Sort(d.Removed)
	return d
}

// ProfileEntryPrefix is how a profile's client entries are named
// (keyport-profile-NAME): a server may not be called profile-NAME.
const ProfileEntryPrefix = "profile-"

// maxDescription bounds a description override.
const maxDescription = 8 << 10

// validToolName is what MCP clients accept as a tool name (SEP-986).
func validToolName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// profiles parses the profiles list; it runs after servers, which it
// checks the profiles against.
func (p *parser) profiles(seq *yaml.Node, cat *Catalog) {
	servers := map[string]Server{}
	for _, s := range cat.Servers {
		servers[s.Name] = s
	}
	seen := map[string]int{}
	for i, item := range seq.Content {
		item = deref(item)
		prefix := fmt.Sprintf("profiles[%d]", i)
		if item.Kind != yaml.MappingNode {
			p.add(item.Line, prefix, "must be a mapping (name: ..., servers: [...])")
			continue
		}
		before := len(p.problems)
		p.duplicates(item, prefix+".")
		lines := map[string]int{"": item.Line}
		f := fields{p: p, prefix: prefix, lines: lines}
		var pr Profile
		var serversNode *yaml.Node
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], deref(item.Content[j+1])
			lines[k.Value] = k.Line
			switch k.Value {
			case "name":
				pr.Name = f.str(v, "name")
			case "description":
				pr.Description = f.str(v, "description")
			case "prefix":
				pr.Prefix = f.str(v, "prefix")
			case "servers":
				serversNode = v
			default:
				p.unknown(k, prefix+"."+k.Value, []string{"name", "description", "prefix", "servers"})
			}
		}
		if err := CheckName(pr.Name); err != nil {
			p.add(lineOf(lines, "name"), prefix+".name", "%v", err)
		} else if j, dup := seen[pr.Name]; dup {
			p.add(lineOf(lines, "name"), prefix+".name", "%q is already the name of profiles[%d]; names must be unique", pr.Name, j)
		} else if _, clash := servers[ProfileEntryPrefix+pr.Name]; clash {
			p.add(lineOf(lines, "name"), prefix+".name", "%q would name its client entries keyport-profile-%s, which server %q's entries use; rename one of them", pr.Name, pr.Name, ProfileEntryPrefix+pr.Name)
		} else {
			seen[pr.Name] = i
		}
		switch pr.Prefix {
		case "", PrefixAuto:
			pr.Prefix = PrefixAuto
		case PrefixAlways:
		default:
			p.add(lineOf(lines, "prefix"), prefix+".prefix", "%q: use auto (prefix SERVER_ when names collide) or always", pr.Prefix)
		}
		if isNull(serversNode) || serversNode.Kind != yaml.SequenceNode || len(serversNode.Content) == 0 {
			line := lineOf(lines, "servers")
			if serversNode != nil {
				line = serversNode.Line
			}
			p.add(line, prefix+".servers", "list the profile's servers (- github, or - {server: github, tools: [...]})")
		} else {
			pr.Servers = p.profileServers(serversNode, prefix+".servers", servers)
		}
		if len(p.problems) > before {
			continue
		}
		p.checkNames(pr, serversNode, prefix)
		if len(p.problems) == before {
			cat.Profiles = append(cat.Profiles, pr)
		}
	}
}

// profileServers parses a profile's servers: a bare name, or a mapping
// with tools and overrides; each is checked against the server's policy.
func (p *parser) profileServers(seq *yaml.Node, prefix string, servers map[string]Server) []ProfileServer {
	var out []ProfileServer
	used := map[string]int{}
	for i, item := range seq.Content {
		item = deref(item)
		field := fmt.Sprintf("%s[%d]", prefix, i)
		var ps ProfileServer
		lines := map[string]int{"": item.Line}
		f := fields{p: p, prefix: field, lines: lines}
		switch item.Kind {
		case yaml.ScalarNode:
			ps.Server = item.Value
		case yaml.MappingNode:
			p.duplicates(item, field+".")
			for j := 0; j+1 < len(item.Content); j += 2 {
				k, v := item.Content[j], deref(item.Content[j+1])
				lines[k.Value] = k.Line
				switch k.Value {
				case "server":
					ps.Server = f.str(v, "server")
				case "tools":
					ps.Tools = f.strList(v, "tools")
				case "overrides":
					ps.Overrides = p.overrides(v, f)
				default:
					p.unknown(k, field+"."+k.Value, []string{"server", "tools", "overrides"})
				}
			}
		default:
			p.add(item.Line, field, "must be a server name or a mapping (server: ..., tools: [...])")
			continue
		}
		s, ok := servers[ps.Server]
		switch {
		case ps.Server == "":
			p.add(lineOf(lines, "server"), field+".server", "name the server")
			continue
		case !ok:
			p.add(lineOf(lines, "server"), field+".server", "no server %q in servers (known: %s)", ps.Server, strings.Join(slices.Sorted(maps.Keys(servers)), ", "))
			continue
		}
		if j, dup := used[ps.Server]; dup {
			p.add(lineOf(lines, "server"), field+".server", "%q is already the profile's server %d; list a server once", ps.Server, j)
			continue
		}
		used[ps.Server] = i
		pol, err := policy.Compile(s.Tools.Allow, s.Tools.Deny)
		if err != nil {
			continue // the server's own entry reports it
		}
		for k, t := range ps.Tools {
			name := fmt.Sprintf("tools[%d]", k)
			switch {
			case !validToolName(t):
				p.add(lineOf(lines, name), field+"."+name, "%q is not a tool name (letters, digits, _ - .)", t)
			case !pol.Allowed(t):
				p.add(lineOf(lines, name), field+"."+name, "tool %q is not allowed by server %s's tool policy (%s); a profile can only narrow it", t, ps.Server, pol)
			case slices.Index(ps.Tools, t) != k:
				p.add(lineOf(lines, name), field+"."+name, "tool %q is listed twice", t)
			}
		}
		for _, tool := range slices.Sorted(maps.Keys(ps.Overrides)) {
			o := ps.Overrides[tool]
			name := "overrides." + tool
			switch {
			case !pol.Allowed(tool):
				p.add(lineOf(lines, name), field+"."+name, "tool %q is not allowed by server %s's tool policy (%s)", tool, ps.Server, pol)
			case len(ps.Tools) > 0 && !slices.Contains(ps.Tools, tool):
				p.add(lineOf(lines, name), field+"."+name, "tool %q is not in this server's tools for the profile; add it to tools or drop the override", tool)
			case o.Rename != "" && !validToolName(o.Rename):
				p.add(lineOf(lines, name+".rename"), field+"."+name+".rename", "%q is not a valid tool name: use 1-128 letters, digits, _ - or .", o.Rename)
			case len(o.Description) > maxDescription:
				p.add(lineOf(lines, name+".description"), field+"."+name+".description", "is %d bytes; keep it under %d", len(o.Description), maxDescription)
			case o.Rename == "" && o.Description == "":
				p.add(lineOf(lines, name), field+"."+name, "says nothing: give rename, description or both")
			}
		}
		out = append(out, ps)
	}
	return out
}

// overrides parses a server's overrides mapping (tool: {rename, description}).
func (p *parser) overrides(v *yaml.Node, f fields) map[string]ToolOverride {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		f.bad(v, "overrides", "must be a mapping (TOOL: {rename: ..., description: ...})")
		return nil
	}
	p.duplicates(v, f.prefix+".overrides.")
	out := map[string]ToolOverride{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := deref(v.Content[i]), deref(v.Content[i+1])
		name := "overrides." + k.Value
		f.lines[name] = k.Line
		var o ToolOverride
		f.mapping(val, name, []string{"rename", "description"}, func(key string, n *yaml.Node) {
			if key == "rename" {
				o.Rename = f.str(n, name+".rename")
			} else {
				o.Description = f.str(n, name+".description")
			}
		})
		out[k.Value] = o
	}
	return out
}

// checkNames refuses renames that would collide with another name of the
// profile that servers.yaml already knows: another rename, or a tool listed
// for the profile under its own name.
func (p *parser) checkNames(pr Profile, seq *yaml.Node, prefix string) {
	type origin struct {
		what string
		line int
	}
	taken := map[string]origin{}
	for i, ps := range pr.Servers {
		for _, t := range ps.Tools {
			if ps.Overrides[t].Rename == "" {
				if _, ok := taken[t]; !ok {
					taken[t] = origin{fmt.Sprintf("tool %s of %s", t, ps.Server), deref(seq.Content[i]).Line}
				}
			}
		}
	}
	for i, ps := range pr.Servers {
		item := deref(seq.Content[i])
		for _, tool := range slices.Sorted(maps.Keys(ps.Overrides)) {
			r := ps.Overrides[tool].Rename
			if r == "" {
				continue
			}
			line := renameLine(item, tool)
			if o, ok := taken[r]; ok {
				p.add(line, fmt.Sprintf("%s.servers[%d].overrides.%s.rename", prefix, i, tool), "%q collides with %s (line %d) in the profile; choose another name", r, o.what, o.line)
				continue
			}
			taken[r] = origin{fmt.Sprintf("the rename of %s's %s", ps.Server, tool), line}
		}
	}
}

// renameLine finds the line of overrides.TOOL.rename in a profile server.
func renameLine(item *yaml.Node, tool string) int {
	line := item.Line
	find := func(m *yaml.Node, key string) *yaml.Node {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				line = m.Content[i].Line
				return deref(m.Content[i+1])
			}
		}
		return nil
	}
	find(find(find(item, "overrides"), tool), "rename")
	return line
}

// SetProfile adds p to servers.yaml, or replaces the profile of that name
// (keeping its comments and key order). The caller checks p against the
// catalog first (CheckProfile); a file that would not load is not written
// by the app, which validates the result.
func (f *File) SetProfile(p Profile) error {
	if err := CheckName(p.Name); err != nil {
		return fmt.Errorf("profile name: %w", err)
	}
	n, err := profileNode(p)
	if err != nil {
		return err
	}
	return f.editList("profiles", func(seq, _ *yaml.Node) error {
		if i := findServer(seq, p.Name); i >= 0 {
			mergeMapping(deref(seq.Content[i]), n)
			return nil
		}
		seq.Content = append(seq.Content, n)
		seq.Style &^= yaml.FlowStyle
		return nil
	})
}

// RemoveProfile deletes the profile called name.
func (f *File) RemoveProfile(name string) error {
	return f.editList("profiles", func(seq, _ *yaml.Node) error {
		i := findServer(seq, name)
		if i < 0 {
			return fmt.Errorf("remove profile %q: %w", name, ErrNoProfile)
		}
		seq.Content = append(seq.Content[:i], seq.Content[i+1:]...)
		return nil
	})
}

// ErrNoProfile reports a profile name that is not in servers.yaml.
var ErrNoProfile = fmt.Errorf("no such profile in servers.yaml")

// profileNode encodes p: a server with nothing but its name is written as
// the bare name, the auto prefix is left out.
func profileNode(p Profile) (*yaml.Node, error) {
	if p.Prefix == PrefixAuto {
		p.Prefix = ""
	}
	var n yaml.Node
	if err := n.Encode(p); err != nil {
		return nil, fmt.Errorf("encode profile %q: %w", p.Name, err)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "servers" {
			continue
		}
		for j, ps := range p.Servers {
			if len(ps.Tools) == 0 && len(ps.Overrides) == 0 {
				n.Content[i+1].Content[j] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ps.Server}
			}
		}
	}
	flowScalarLists(&n)
	return &n, nil
}

// dropFromProfiles takes server out of every profile of doc, and drops the
// profiles left without a server.
func dropFromProfiles(doc *yaml.Node, server string) {
	if doc == nil || len(doc.Content) == 0 {
		return
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "profiles" {
			continue
		}
		seq := deref(root.Content[i+1])
		if seq.Kind != yaml.SequenceNode {
			return
		}
		kept := seq.Content[:0]
		for _, item := range seq.Content {
			m := deref(item)
			for j := 0; m.Kind == yaml.MappingNode && j+1 < len(m.Content); j += 2 {
				if m.Content[j].Value != "servers" {
					continue
				}
				list := deref(m.Content[j+1])
				if list.Kind != yaml.SequenceNode {
					continue
				}
				list.Content = slices.DeleteFunc(list.Content, func(s *yaml.Node) bool {
					s = deref(s)
					if s.Kind == yaml.ScalarNode {
						return s.Value == server
					}
					return findServerKey(s, "server") == server
				})
				if len(list.Content) == 0 {
					m = nil
				}
				break
			}
			if m != nil {
				kept = append(kept, item)
			}
		}
		seq.Content = kept
	}
}

// findServerKey is the value of key in mapping m, or "".
func findServerKey(m *yaml.Node, key string) string {
	for j := 0; m.Kind == yaml.MappingNode && j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == key {
			return deref(m.Content[j+1]).Value
		}
	}
	return ""
}

// CheckProfile checks p against the servers of cat with the same rules as
// servers.yaml (the servers exist, the tools and overrides are allowed by
// their policies, renames are valid and collide with nothing), before it
// is written. Errors name the field: "profile coding: servers[1].tools[0]:
// ...".
func CheckProfile(cat *Catalog, p Profile) error {
	n, err := profileNode(p)
	if err != nil {
		return err
	}
	pr := &parser{}
	tmp := &Catalog{}
	if cat != nil {
		tmp.Servers = cat.Servers
	}
	pr.profiles(&yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{n}}, tmp)
	if len(pr.problems) == 0 {
		return nil
	}
	var msgs []string
	for _, pb := range pr.problems {
		field := strings.TrimPrefix(strings.TrimPrefix(pb.Field, "profiles[0]"), ".")
		if field != "" {
			field += ": "
		}
		msgs = append(msgs, field+pb.Msg)
	}
	return fmt.Errorf("profile %s: %s", p.Name, strings.Join(msgs, "; "))
}

// profilesOver is the user's profiles as they apply over servers (the
// catalog in effect after managed settings): a server the organization
// forbids is left out of every profile, and a profile left without a
// server goes. Tools a managed rule denies are hidden by the server's
// proxy, so a profile cannot serve them either.
func profilesOver(profiles []Profile, servers []Server) []Profile {
	var out []Profile
	for _, p := range profiles {
		q := p
		q.Servers = slices.DeleteFunc(slices.Clone(p.Servers), func(ps ProfileServer) bool {
			return !slices.ContainsFunc(servers, func(s Server) bool { return s.Name == ps.Server })
		})
		if len(q.Servers) > 0 {
			out = append(out, q)
		}
	}
	return out
}
