package registry

import (
	"fmt"
	"net/textproto"
	"regexp"
	"slices"
	"strings"

	"keyport/app/catalog"
	"keyport/app/secrets"
)

// QuestionKind says what a Question fills in.
type QuestionKind string

// Question kinds.
const (
	// AskVariable fills a {variable} of the remote's URL or of a header.
	AskVariable QuestionKind = "variable"
	// AskHeader is the whole value of a header.
	AskHeader QuestionKind = "header"
)

// Question is a value the user must (or may) give to import a server.
type Question struct {
	// Key identifies the answer in Resolve's map: "url:{name}",
	// "header:{Header}" or "header:{Header}:{variable}".
	Key         string
	Kind        QuestionKind
	Name        string // the variable or header name
	Header      string // for AskVariable in a header template: the header
	Description string
	Required    bool
	// Secret answers are read without echo and stored in the keychain.
	Secret      bool
	Default     string
	Choices     []string
	Placeholder string
	Format      string
}

// Plan is how an entry becomes a catalog server: a template and the
// questions to ask. Build it with NewPlan, answer it with Resolve.
type Plan struct {
	Entry     Entry
	Remote    Remote // the streamable-http remote used
	Questions []Question

	registry string // registry base URL, for Server.Source
	name     string // the catalog name chosen
}

// Name is the catalog name the server will get.
func (p *Plan) Name() string { return p.name }

// Import is a resolved plan: the server to add to servers.yaml and the
// secret values to store in the keychain under it, by kind
// ("header/X-Api-Key").
type Import struct {
	Server  catalog.Server
	Secrets map[string]string
}

var varRE = regexp.MustCompile(`\{([^{}]+)\}`)

// NewPlan prepares the import of e from the registry at registryURL. taken
// reports catalog names already used (nil: none); the plan picks a free one.
func NewPlan(e Entry, registryURL string, taken func(string) bool) (*Plan, error) {
	remotes := e.StreamableRemotes()
	if len(remotes) == 0 {
		return nil, fmt.Errorf("%s has no streamable-http remote (%s); Keyport proxies remote streamable-HTTP servers only", e.Server.Name, offers(e))
	}
	p := &Plan{Entry: e, Remote: remotes[0], registry: registryURL, name: DeriveName(e.Server.Name, taken)}
	r := p.Remote
	for _, v := range templateVars(r.URL) {
		in, ok := r.Variables[v]
		if in.IsSecret {
			return nil, fmt.Errorf("%s: its URL needs the secret %q, and Keyport keeps secrets out of URLs and servers.yaml; it cannot be imported", e.Server.Name, v)
		}
		if in.Value != "" {
			continue // fixed by the publisher
		}
		p.Questions = append(p.Questions, Question{
			Key: "url:" + v, Kind: AskVariable, Name: v, Description: in.Description,
			Required: !ok || in.IsRequired || in.Default == "", Default: in.Default,
			Choices: in.Choices, Placeholder: in.Placeholder, Format: in.Format,
		})
	}
	for _, h := range r.Headers {
		name := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(h.Name))
		if name == "" {
			continue
		}
		secret := h.IsSecret || name == "Authorization" || name == "Cookie"
		if h.Value == "" {
			p.Questions = append(p.Questions, Question{
				Key: "header:" + name, Kind: AskHeader, Name: name, Description: h.Description,
				Required: h.IsRequired, Secret: secret, Default: h.Default,
				Choices: h.Choices, Placeholder: h.Placeholder, Format: h.Format,
			})
			continue
		}
		for _, v := range templateVars(h.Value) {
			in, ok := h.Variables[v]
			if in.Value != "" {
				continue
			}
			p.Questions = append(p.Questions, Question{
				Key: "header:" + name + ":" + v, Kind: AskVariable, Name: v, Header: name,
				Description: in.Description, Required: !ok || in.IsRequired || in.Default == "",
				Secret: secret || in.IsSecret, Default: in.Default,
				Choices: in.Choices, Placeholder: in.Placeholder, Format: in.Format,
			})
		}
	}
	return p, nil
}

// Resolve applies the answers (by Question.Key; a missing or empty answer
// takes the default) and returns the server and its secrets.
func (p *Plan) Resolve(answers map[string]string) (*Import, error) {
	values := map[string]string{}
	for _, q := range p.Questions {
		v := answers[q.Key]
		if v == "" {
			v = q.Default
		}
		if v == "" && q.Required {
			what := q.Name
			if q.Header != "" {
				what = q.Header + " " + q.Name
			}
			return nil, fmt.Errorf("import %s: %s is required (%s)", p.Entry.Server.Name, what, orDefault(q.Description, "no description"))
		}
		if v != "" && len(q.Choices) > 0 && !slices.Contains(q.Choices, v) {
			return nil, fmt.Errorf("import %s: %s must be one of %s", p.Entry.Server.Name, q.Name, strings.Join(q.Choices, ", "))
		}
		values[q.Key] = v
	}
	r := p.Remote
	e := p.Entry.Server
	s := catalog.Server{
		Name:        p.name,
		Description: describe(e),
		URL: fill(r.URL, func(v string) string {
			if in := r.Variables[v]; in.Value != "" {
				return in.Value
			}
			return values["url:"+v]
		}),
		Source: &catalog.Source{Registry: p.registry, Name: e.Name, Version: e.Version},
	}
	imp := &Import{Secrets: map[string]string{}}
	for _, h := range r.Headers {
		name := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(h.Name))
		if name == "" {
			continue
		}
		secret := h.IsSecret || name == "Authorization" || name == "Cookie"
		var v string
		if h.Value == "" {
			v = values["header:"+name]
		} else {
			missing := false
			v = fill(h.Value, func(x string) string {
				if in := h.Variables[x]; in.Value != "" {
					return in.Value
				}
				val := values["header:"+name+":"+x]
				missing = missing || val == ""
				if h.Variables[x].IsSecret {
					secret = true
				}
				return val
			})
			if missing {
				v = "" // an optional template left unfilled: skip the header
			}
		}
		if v == "" {
			continue
		}
		if secret {
			s.Auth.SecretHeaders = append(s.Auth.SecretHeaders, name)
			imp.Secrets[secrets.HeaderKind(name)] = v
		} else {
			if s.Headers == nil {
				s.Headers = map[string]string{}
			}
			s.Headers[name] = v
		}
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("import %s as %q: %w", e.Name, s.Name, err)
	}
	imp.Server = s
	return imp, nil
}

// DeriveName turns a registry name ("io.github.user/remote-weather") into a
// catalog name ("remote-weather"), avoiding names taken reports as used.
func DeriveName(registryName string, taken func(string) bool) string {
	if taken == nil {
		taken = func(string) bool { return false }
	}
	ns, short, ok := strings.Cut(registryName, "/")
	if !ok {
		short, ns = ns, ""
	}
	base := slug(short)
	for _, suffix := range []string{"-mcp-server", "-mcp", "-server"} {
		if b, ok := strings.CutSuffix(base, suffix); ok && b != "" {
			base = b
			break
		}
	}
	if base == "" {
		base = slug(ns[strings.LastIndex(ns, ".")+1:])
	}
	if base == "" {
		base = "server"
	}
	candidates := []string{base}
	if owner := slug(ns[strings.LastIndex(ns, ".")+1:]); owner != "" && owner != base {
		candidates = append(candidates, clip(owner+"-"+base))
	}
	for _, c := range candidates {
		if catalog.CheckName(c) == nil && !taken(c) {
			return c
		}
	}
	for i := 2; ; i++ {
		c := fmt.Sprintf("%s-%d", clip(base), i) // 56 + "-N": within 63
		if catalog.CheckName(c) == nil && !taken(c) {
			return c
		}
	}
}

// slug lowercases s and turns every run of other characters into one dash.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return clip(b.String())
}

// clip shortens a slug to 56 characters (room for a "-N" suffix) without a
// trailing dash.
func clip(s string) string {
	if len(s) > 56 {
		s = s[:56]
	}
	return strings.TrimRight(s, "-")
}

func templateVars(s string) []string {
	var out []string
	for _, m := range varRE.FindAllStringSubmatch(s, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

func fill(tmpl string, value func(string) string) string {
	return varRE.ReplaceAllStringFunc(tmpl, func(m string) string { return value(m[1 : len(m)-1]) })
}

func describe(e ServerJSON) string {
	d := strings.TrimSpace(e.Description)
	if e.Title != "" && !strings.HasPrefix(d, e.Title) {
		if d == "" {
			d = e.Title
		} else {
			d = e.Title + ": " + d
		}
	}
	if len(d) > 2000 {
		d = d[:1997] + "..."
	}
	return d
}

func offers(e Entry) string {
	var what []string
	for _, r := range e.Server.Remotes {
		what = append(what, r.Type+" remote")
	}
	for _, p := range e.Server.Packages {
		what = append(what, p.RegistryType+" package")
	}
	if len(what) == 0 {
		return "it lists no remote and no package"
	}
	slices.Sort(what)
	return "it offers: " + strings.Join(slices.Compact(what), ", ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
