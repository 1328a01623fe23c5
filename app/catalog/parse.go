package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FileName is the servers file's name in the config dir.
const FileName = "servers.yaml"

// The official MCP Registry, used for import unless disabled in servers.yaml.
const (
	OfficialRegistryName = "official"
	OfficialRegistryURL  = "https://registry.modelcontextprotocol.io"
)

// Catalog is one loaded servers.yaml: the servers in file order and the
// registries configured for import. Treat it as immutable.
type Catalog struct {
	// Path is the file it was loaded from.
	Path string
	// Servers in file order, validated, with defaults filled.
	Servers []Server
	// Registries as written in the file (see RegistrySources for the
	// effective list).
	Registries []Registry
	// Profiles in file order, checked against Servers (profiles.go).
	Profiles []Profile
	// Telemetry is the OpenTelemetry export (nil: none configured in the
	// file; the OTEL_EXPORTER_OTLP_* environment may still turn it on).
	Telemetry *Telemetry
	// Managed says what the organization's managed file sets; nil when
	// there is none. See managed.go.
	Managed *ManagedState
	// OAuth holds the defaults of every OAuth server.
	OAuth OAuthDefaults
}

// OAuthDefaults are servers.yaml's top-level oauth settings: what an OAuth
// server uses unless its own auth section says otherwise.
type OAuthDefaults struct {
	// ClientMetadataURL is the default auth.client_metadata_url.
	ClientMetadataURL string `yaml:"client_metadata_url,omitempty"`
}

// Registry is an MCP Registry (v0.1 API) to search and import from.
type Registry struct {
	Name     string `yaml:"name"`
	URL      string `yaml:"url"`
	Disabled bool   `yaml:"disabled,omitempty"`
}

// Lookup returns the server called name.
func (c *Catalog) Lookup(name string) (Server, bool) {
	if c != nil {
		for _, s := range c.Servers {
			if s.Name == name {
				return s, true
			}
		}
	}
	return Server{}, false
}

// Names are the server names in file order.
func (c *Catalog) Names() []string {
	if c == nil {
		return nil
	}
	names := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		names[i] = s.Name
	}
	return names
}

// Empty reports whether the catalog has no server (the app then shows the
// demo server unless the user hid it).
func (c *Catalog) Empty() bool { return c == nil || len(c.Servers) == 0 }

// RegistrySources is the effective registry list: the official registry
// first (unless an entry named "official" disables or replaces it), then the
// file's other enabled registries.
func (c *Catalog) RegistrySources() []Registry {
	official := Registry{Name: OfficialRegistryName, URL: OfficialRegistryURL}
	var rest []Registry
	if c != nil {
		for _, r := range c.Registries {
			if r.Name == OfficialRegistryName {
				official = r
				continue
			}
			if !r.Disabled {
				rest = append(rest, r)
			}
		}
	}
	if official.Disabled {
		return rest
	}
	return append([]Registry{official}, rest...)
}

// Problem is one error in servers.yaml.
type Problem struct {
	Line  int    // 1-based; 0 when unknown
	Field string // e.g. "servers[1].url"; "" for a YAML syntax error
	Msg   string
}

// LoadError lists every problem found in servers.yaml, each naming the
// file, the line and the field: "servers.yaml:12: servers[1].url: ...".
type LoadError struct {
	Path     string
	Problems []Problem
	// syntax is set when the file is not YAML (or not shaped like a
	// servers file at all): such a file is never rewritten.
	syntax bool
}

// maxProblems bounds the problems listed in one error.
const maxProblems = 20

func (e *LoadError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i == maxProblems {
			fmt.Fprintf(&b, "\n... and %d more problems", len(e.Problems)-maxProblems)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Path)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
		if p.Field != "" {
			b.WriteString(p.Field + ": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// Parse reads a servers file. path names the file in errors. Every problem
// is reported at once, as a *LoadError.
func Parse(path string, data []byte) (*Catalog, error) {
	c, _, err := parse(path, data)
	return c, err
}

// parse also returns the YAML document for editing (nil for a syntax error).
func parse(path string, data []byte) (*Catalog, *yaml.Node, error) {
	p := &parser{}
	cat := &Catalog{Path: path}
	doc := p.document(data)
	if doc != nil {
		p.file(doc, cat)
	}
	if len(p.problems) > 0 {
		sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
		return nil, doc, &LoadError{Path: path, Problems: p.problems, syntax: p.syntax}
	}
	return cat, doc, nil
}

type parser struct {
	problems []Problem
	syntax   bool
}

func (p *parser) add(line int, field, format string, args ...any) {
	p.problems = append(p.problems, Problem{Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

var yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)

// document decodes the YAML; it returns nil after a syntax error.
func (p *parser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{} // empty file
		}
		p.syntax = true
		p.yamlError(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.syntax = true
		line := extra.Line
		if err != nil {
			p.yamlError(err)
			return nil
		}
		p.add(line, "", "a second YAML document (---): servers.yaml holds one document")
		return nil
	}
	return &doc
}

func (p *parser) yamlError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	found := false
	for _, l := range strings.Split(msg, "\n") {
		if m := yamlLineRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			p.add(n, "", "YAML: %s", m[2])
			found = true
		}
	}
	if !found {
		p.add(0, "", "YAML: %s", msg)
	}
}

func (p *parser) file(doc *yaml.Node, cat *Catalog) {
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		p.syntax = true
		p.add(root.Line, "", `the file must be a mapping with a "servers" list (servers: [...])`)
		return
	}
	if p.duplicates(root, "") {
		p.syntax = true // an edit could not know which one to keep
		return
	}
	var profiles *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], deref(root.Content[i+1])
		switch k.Value {
		case "profiles": // after servers, which they refer to
			if !isNull(v) && v.Kind != yaml.SequenceNode {
				p.add(v.Line, "profiles", "must be a list of profiles (- name: ...)")
				continue
			}
			profiles = v
		case "servers":
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.SequenceNode {
				p.syntax = true
				p.add(v.Line, "servers", "must be a list of servers (- name: ...)")
				continue
			}
			p.servers(v, cat)
		case "registries":
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.SequenceNode {
				p.add(v.Line, "registries", "must be a list (- name: ..., url: ...)")
				continue
			}
			p.registries(v, cat)
		case "telemetry":
			cat.Telemetry = p.telemetry(v, "telemetry")
		case "oauth":
			p.oauthDefaults(v, cat)
		default:
			p.unknown(k, k.Value, []string{"servers", "registries", "profiles", "telemetry", "oauth"})
		}
	}
	if !isNull(profiles) {
		p.profiles(profiles, cat)
	}
}

// oauthDefaults reads the top-level oauth mapping.
func (p *parser) oauthDefaults(v *yaml.Node, cat *Catalog) {
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		p.add(v.Line, "oauth", "must be a mapping (client_metadata_url: https://...)")
		return
	}
	p.duplicates(v, "oauth.")
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], deref(v.Content[i+1])
		if k.Value != "client_metadata_url" {
			p.unknown(k, "oauth."+k.Value, []string{"client_metadata_url"})
			continue
		}
		if isNull(val) {
			continue
		}
		if val.Kind != yaml.ScalarNode {
			p.add(val.Line, "oauth.client_metadata_url", "must be a string, not %s", kindName(val))
			continue
		}
		if msg := CheckClientMetadataURL(val.Value); msg != "" {
			p.add(val.Line, "oauth.client_metadata_url", "%s", msg)
			continue
		}
		cat.OAuth.ClientMetadataURL = val.Value
	}
}

var serverFields = []string{"name", "description", "url", "insecure", "labels", "headers", "auth", "tools", "audit", "tls", "source"}

func (p *parser) servers(seq *yaml.Node, cat *Catalog) {
	firstLine := map[string]int{} // name -> line, for duplicates
	firstIndex := map[string]int{}
	for i, item := range seq.Content {
		item = deref(item)
		prefix := fmt.Sprintf("servers[%d]", i)
		if item.Kind != yaml.MappingNode {
			p.add(item.Line, prefix, "must be a mapping (name: ..., url: ...)")
			continue
		}
		var s Server
		lines := map[string]int{"": item.Line}
		before := len(p.problems)
		p.duplicates(item, prefix+".")
		f := fields{p: p, prefix: prefix, lines: lines}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], deref(item.Content[j+1])
			lines[k.Value] = k.Line
			switch k.Value {
			case "name":
				s.Name = f.str(v, "name")
			case "description":
				s.Description = f.str(v, "description")
			case "url":
				s.URL = f.str(v, "url")
			case "insecure":
				s.Insecure = f.boolean(v, "insecure")
			case "labels":
				s.Labels = f.strMap(v, "labels")
			case "headers":
				s.Headers = f.strMap(v, "headers")
			case "auth":
				f.mapping(v, "auth", []string{"type", "secret_headers", "client_id", "scopes", "callback_port", "client_metadata_url"}, func(k string, v *yaml.Node) {
					switch k {
					case "type":
						s.Auth.Type = AuthType(f.str(v, "auth.type"))
					case "secret_headers":
						s.Auth.SecretHeaders = f.strList(v, "auth.secret_headers")
					case "client_id":
						s.Auth.ClientID = f.str(v, "auth.client_id")
					case "scopes":
						s.Auth.Scopes = f.strList(v, "auth.scopes")
					case "callback_port":
						s.Auth.CallbackPort = f.integer(v, "auth.callback_port")
					case "client_metadata_url":
						s.Auth.ClientMetadataURL = f.str(v, "auth.client_metadata_url")
					}
				})
			case "tools":
				f.mapping(v, "tools", []string{"allow", "deny", "pinning"}, func(k string, v *yaml.Node) {
					switch k {
					case "allow":
						s.Tools.Allow = f.strList(v, "tools.allow")
					case "deny":
						s.Tools.Deny = f.strList(v, "tools.deny")
					case "pinning":
						s.Tools.Pinning = PinMode(f.str(v, "tools.pinning"))
					}
				})
			case "audit":
				f.mapping(v, "audit", []string{"params"}, func(_ string, v *yaml.Node) {
					s.Audit.Params = AuditParams(f.str(v, "audit.params"))
				})
			case "tls":
				f.mapping(v, "tls", []string{"ca_file"}, func(_ string, v *yaml.Node) {
					s.TLS.CAFile = f.str(v, "tls.ca_file")
				})
			case "source":
				s.Source = &Source{}
				f.mapping(v, "source", []string{"registry", "name", "version"}, func(k string, v *yaml.Node) {
					switch k {
					case "registry":
						s.Source.Registry = f.str(v, "source.registry")
					case "name":
						s.Source.Name = f.str(v, "source.name")
					case "version":
						s.Source.Version = f.str(v, "source.version")
					}
				})
			default:
				p.unknown(k, prefix+"."+k.Value, serverFields)
			}
		}
		if len(p.problems) > before {
			continue // type errors first; Check would only repeat them
		}
		if err := s.Check(); err != nil {
			var fes FieldErrors
			if errors.As(err, &fes) {
				for _, fe := range fes {
					p.add(lineOf(lines, fe.Field), prefix+"."+fe.Field, "%s", fe.Msg)
				}
			}
			continue
		}
		if j, dup := firstIndex[s.Name]; dup {
			p.add(lineOf(lines, "name"), prefix+".name", "%q is already the name of servers[%d] (line %d); names must be unique", s.Name, j, firstLine[s.Name])
			continue
		}
		firstIndex[s.Name], firstLine[s.Name] = i, lineOf(lines, "name")
		cat.Servers = append(cat.Servers, s)
	}
}

func (p *parser) registries(seq *yaml.Node, cat *Catalog) {
	seen := map[string]int{}
	for i, item := range seq.Content {
		item = deref(item)
		prefix := fmt.Sprintf("registries[%d]", i)
		if item.Kind != yaml.MappingNode {
			p.add(item.Line, prefix, "must be a mapping (name: ..., url: ...)")
			continue
		}
		var r Registry
		lines := map[string]int{"": item.Line}
		f := fields{p: p, prefix: prefix, lines: lines}
		before := len(p.problems)
		p.duplicates(item, prefix+".")
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], deref(item.Content[j+1])
			lines[k.Value] = k.Line
			switch k.Value {
			case "name":
				r.Name = f.str(v, "name")
			case "url":
				r.URL = f.str(v, "url")
			case "disabled":
				r.Disabled = f.boolean(v, "disabled")
			default:
				p.unknown(k, prefix+"."+k.Value, []string{"name", "url", "disabled"})
			}
		}
		if len(p.problems) > before {
			continue
		}
		if err := CheckName(r.Name); err != nil {
			p.add(lineOf(lines, "name"), prefix+".name", "%v", err)
			continue
		}
		if j, dup := seen[r.Name]; dup {
			p.add(lineOf(lines, "name"), prefix+".name", "%q is already the name of registries[%d]", r.Name, j)
			continue
		}
		seen[r.Name] = i
		if r.URL == "" && r.Name == OfficialRegistryName {
			r.URL = OfficialRegistryURL
		}
		if msg := checkURL(r.URL, false); msg != "" {
			p.add(lineOf(lines, "url"), prefix+".url", "%s", msg)
			continue
		}
		r.URL = strings.TrimRight(r.URL, "/")
		cat.Registries = append(cat.Registries, r)
	}
}

// duplicates reports keys defined twice in a mapping (YAML forbids it; the
// node parser lets it through). It reports whether there were any.
func (p *parser) duplicates(m *yaml.Node, prefix string) bool {
	first := map[string]int{}
	found := false
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if l, dup := first[k.Value]; dup {
			p.add(k.Line, prefix+k.Value, "defined twice (first at line %d)", l)
			found = true
			continue
		}
		first[k.Value] = k.Line
	}
	return found
}

// unknown reports an unknown key, suggesting the closest known one.
func (p *parser) unknown(k *yaml.Node, field string, known []string) {
	best, dist := "", 3
	for _, kn := range known {
		if d := editDistance(k.Value, kn); d < dist {
			best, dist = kn, d
		}
	}
	if best != "" {
		p.add(k.Line, field, "unknown field; did you mean %q?", best)
		return
	}
	p.add(k.Line, field, "unknown field (known: %s)", strings.Join(known, ", "))
}

// fields decodes the values of one entry, recording each field's line.
type fields struct {
	p      *parser
	prefix string
	lines  map[string]int
}

func (f fields) bad(v *yaml.Node, field, format string, args ...any) {
	f.lines[field] = v.Line
	if f.prefix != "" {
		field = f.prefix + "." + field
	}
	f.p.add(v.Line, field, format, args...)
}

func (f fields) str(v *yaml.Node, field string) string {
	if isNull(v) {
		return ""
	}
	if v.Kind != yaml.ScalarNode {
		f.bad(v, field, "must be a string, not %s", kindName(v))
		return ""
	}
	return v.Value
}

func (f fields) boolean(v *yaml.Node, field string) bool {
	var b bool
	if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil {
		f.bad(v, field, "must be true or false")
	}
	return b
}

func (f fields) integer(v *yaml.Node, field string) int {
	var n int
	if isNull(v) {
		return 0
	}
	if v.Kind != yaml.ScalarNode || v.Decode(&n) != nil {
		f.bad(v, field, "must be a whole number")
	}
	return n
}

func (f fields) strList(v *yaml.Node, field string) []string {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		f.bad(v, field, "must be a list, e.g. [a, b]")
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for i, item := range v.Content {
		item = deref(item)
		name := fmt.Sprintf("%s[%d]", field, i)
		f.lines[name] = item.Line
		if item.Kind != yaml.ScalarNode || isNull(item) {
			f.bad(item, name, "must be a string, not %s", kindName(item))
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

func (f fields) strMap(v *yaml.Node, field string) map[string]string {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		f.bad(v, field, "must be a mapping (key: value)")
		return nil
	}
	out := make(map[string]string, len(v.Content)/2)
	f.p.duplicates(v, f.prefix+"."+field+".")
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := deref(v.Content[i]), deref(v.Content[i+1])
		name := field + "." + k.Value
		f.lines[name] = k.Line
		if k.Kind != yaml.ScalarNode {
			f.bad(k, field, "keys must be strings")
			continue
		}
		if val.Kind != yaml.ScalarNode {
			f.bad(val, name, "must be a string, not %s", kindName(val))
			continue
		}
		if isNull(val) {
			out[k.Value] = ""
			continue
		}
		out[k.Value] = val.Value
	}
	return out
}

// mapping walks a nested mapping with known keys, calling set for each.
func (f fields) mapping(v *yaml.Node, field string, known []string, set func(key string, v *yaml.Node)) {
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		f.bad(v, field, "must be a mapping (key: value)")
		return
	}
	f.p.duplicates(v, f.prefix+"."+field+".")
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], deref(v.Content[i+1])
		f.lines[field+"."+k.Value] = k.Line
		if !slices.Contains(known, k.Value) {
			f.p.unknown(k, f.prefix+"."+field+"."+k.Value, known)
			continue
		}
		set(k.Value, val)
	}
}

// lineOf finds the line of field or, failing that, of its closest parent.
func lineOf(lines map[string]int, field string) int {
	for {
		if l, ok := lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			return lines[""]
		}
		field = field[:i]
	}
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if isNull(n) {
		return "empty"
	}
	return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
}

// editDistance is the Levenshtein distance, for "did you mean".
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
