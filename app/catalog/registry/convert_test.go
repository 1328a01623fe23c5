package registry

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"keyport/app/catalog"
)

func entry(t *testing.T, name string) Entry {
	t.Helper()
	_, c := startFake(t)
	all, err := c.Search(context.Background(), ListOptions{All: true, Limit: 100}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(all) - 1; i >= 0; i-- { // the latest version sorts last
		if all[i].Server.Name == name {
			return all[i]
		}
	}
	t.Fatalf("no fixture entry %q", name)
	return Entry{}
}

func questionKeys(p *Plan) []string {
	var out []string
	for _, q := range p.Questions {
		flags := ""
		if q.Required {
			flags += " required"
		}
		if q.Secret {
			flags += " secret"
		}
		if q.Default != "" {
			flags += " default=" + q.Default
		}
		if len(q.Choices) > 0 {
			flags += " choices=" + strings.Join(q.Choices, "|")
		}
		out = append(out, q.Key+flags)
	}
	return out
}

func TestPlanAndResolve(t *testing.T) {
	t.Parallel()
	const reg = "https://registry.example"
	tests := []struct {
		entry     string
		questions []string
		answers   map[string]string
		server    catalog.Server
		secrets   map[string]string
		err       string
	}{
		{
			entry:     "com.example/acme-analytics",
			questions: []string{"header:X-Api-Key required secret"},
			answers:   map[string]string{"header:X-Api-Key": "ak-123"},
			server: catalog.Server{Name: "acme-analytics", URL: "https://analytics.example.com/mcp",
				Auth: catalog.Auth{Type: catalog.AuthHeaders, SecretHeaders: []string{"X-Api-Key"}}},
			secrets: map[string]string{"header/X-Api-Key": "ak-123"},
		},
		{
			entry:     "com.example/acme-analytics",
			questions: []string{"header:X-Api-Key required secret"},
			err:       "import com.example/acme-analytics: X-Api-Key is required (API key for authentication)",
		},
		{
			entry:     "io.modelcontextprotocol.anonymous/hybrid-mcp",
			questions: []string{"header:X-Api-Key required secret", "header:X-Region default=us-east-1 choices=us-east-1|eu-west-1|ap-southeast-1"},
			answers:   map[string]string{"header:X-Api-Key": "k"},
			server: catalog.Server{Name: "hybrid", URL: "https://mcp.anonymous.modelcontextprotocol.io/http",
				Headers: map[string]string{"X-Region": "us-east-1"},
				Auth:    catalog.Auth{Type: catalog.AuthHeaders, SecretHeaders: []string{"X-Api-Key"}}},
			secrets: map[string]string{"header/X-Api-Key": "k"},
		},
		{
			entry:     "io.modelcontextprotocol.anonymous/hybrid-mcp",
			questions: []string{"header:X-Api-Key required secret", "header:X-Region default=us-east-1 choices=us-east-1|eu-west-1|ap-southeast-1"},
			answers:   map[string]string{"header:X-Api-Key": "k", "header:X-Region": "mars"},
			err:       "import io.modelcontextprotocol.anonymous/hybrid-mcp: X-Region must be one of us-east-1, eu-west-1, ap-southeast-1",
		},
		{
			entry:     "io.github.user/remote-weather",
			questions: []string{"url:host default=api.example.com", "header:Authorization required secret"},
			answers:   map[string]string{"header:Authorization": "Bearer w-1"},
			server: catalog.Server{Name: "remote-weather", Description: "Remote Weather: Remote MCP server reachable over streamable HTTP.",
				URL: "https://api.example.com/mcp", Auth: catalog.Auth{Type: catalog.AuthHeaders, SecretHeaders: []string{"Authorization"}}},
			secrets: map[string]string{"header/Authorization": "Bearer w-1"},
		},
		{
			entry:     "io.github.user/remote-weather",
			questions: []string{"url:host default=api.example.com", "header:Authorization required secret"},
			answers:   map[string]string{"header:Authorization": "x", "url:host": "weather.internal:8443"},
			server: catalog.Server{Name: "remote-weather", Description: "Remote Weather: Remote MCP server reachable over streamable HTTP.",
				URL: "https://weather.internal:8443/mcp", Auth: catalog.Auth{Type: catalog.AuthHeaders, SecretHeaders: []string{"Authorization"}}},
			secrets: map[string]string{"header/Authorization": "x"},
		},
		{
			entry:     "io.modelcontextprotocol.anonymous/multi-tenant-server",
			questions: []string{"url:tenant_id required"},
			err:       "import io.modelcontextprotocol.anonymous/multi-tenant-server: tenant_id is required (Tenant identifier (e.g., 'us-cell1', 'emea-cell1'))",
		},
		{
			entry:     "io.modelcontextprotocol.anonymous/multi-tenant-server",
			questions: []string{"url:tenant_id required"},
			answers:   map[string]string{"url:tenant_id": "us-cell1"},
			server:    catalog.Server{Name: "multi-tenant", URL: "https://anonymous.modelcontextprotocol.io/mcp/us-cell1"},
			secrets:   map[string]string{},
		},
		{
			entry:   "com.example.email/email-integration-mcp",
			server:  catalog.Server{Name: "email-integration", URL: "https://email.example.com/mcp"},
			secrets: map[string]string{},
		},
		{entry: "io.modelcontextprotocol.anonymous/events-server",
			err: "io.modelcontextprotocol.anonymous/events-server has no streamable-http remote (it offers: sse remote); Keyport proxies remote streamable-HTTP servers only"},
		{entry: "io.github.user/weather",
			err: "io.github.user/weather has no streamable-http remote (it lists no remote and no package); Keyport proxies remote streamable-HTTP servers only"},
		{entry: "io.github.example/widget-mcp",
			err: "io.github.example/widget-mcp has no streamable-http remote (it offers: cargo package); Keyport proxies remote streamable-HTTP servers only"},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			t.Parallel()
			e := entry(t, tt.entry)
			p, err := NewPlan(e, reg, nil)
			if err != nil {
				if err.Error() != tt.err {
					t.Fatalf("NewPlan: %v\nwant %s", err, tt.err)
				}
				return
			}
			if got := questionKeys(p); !reflect.DeepEqual(got, tt.questions) {
				t.Fatalf("questions = %q\nwant %q", got, tt.questions)
			}
			imp, err := p.Resolve(tt.answers)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("Resolve: %v\nwant %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.server
			if want.Description == "" {
				want.Description = describe(e.Server)
			}
			want.Source = &catalog.Source{Registry: reg, Name: e.Server.Name, Version: e.Server.Version}
			if err := want.Check(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(imp.Server, want) {
				t.Fatalf("server:\n got %+v\nwant %+v", imp.Server, want)
			}
			if !maps.Equal(imp.Secrets, tt.secrets) {
				t.Fatalf("secrets = %v, want %v", imp.Secrets, tt.secrets)
			}
		})
	}
}

// TestImportIntoServersFile: an imported server round-trips through
// servers.yaml, and its secret value is nowhere in the file.
func TestImportIntoServersFile(t *testing.T) {
	t.Parallel()
	f := catalog.NewFile(filepath.Join(t.TempDir(), "servers.yaml"))
	if _, err := f.Init(); err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(entry(t, "com.example/acme-analytics"), catalog.OfficialRegistryURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := p.Resolve(map[string]string{"header:X-Api-Key": "very-secret-key"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Add(imp.Server); err != nil {
		t.Fatal(err)
	}
	c, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Lookup("acme-analytics"); !ok || !got.Equal(imp.Server) {
		t.Fatalf("loaded %+v", got)
	}
	b, _ := os.ReadFile(f.Path())
	if strings.Contains(string(b), "very-secret-key") {
		t.Fatal("the secret reached servers.yaml")
	}
}

func TestPlanTemplatedSecretHeader(t *testing.T) {
	t.Parallel()
	var e Entry
	if err := json.Unmarshal([]byte(`{"server":{"name":"io.example/tpl","description":"d","version":"1","remotes":[{"type":"streamable-http","url":"https://{region}.example.com/mcp",
	  "variables":{"region":{"default":"eu","choices":["eu","us"]}},
	  "headers":[{"name":"authorization","value":"Bearer {token}","variables":{"token":{"isRequired":true,"isSecret":true}}},
	             {"name":"X-Trace","value":"{trace}","variables":{"trace":{"description":"optional trace id"}}},
	             {"name":"X-Fixed","value":"v1"}]}]}}`), &e); err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(e, "https://r.example", func(n string) bool { return n == "tpl" })
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "example-tpl" {
		t.Fatalf("name = %q (tpl is taken)", p.Name())
	}
	want := []string{"url:region default=eu choices=eu|us", "header:Authorization:token required secret", "header:X-Trace:trace required"}
	if got := questionKeys(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("questions = %q\nwant %q", got, want)
	}
	imp, err := p.Resolve(map[string]string{"header:Authorization:token": "t0k", "header:X-Trace:trace": "abc", "url:region": "us"})
	if err != nil {
		t.Fatal(err)
	}
	if imp.Server.URL != "https://us.example.com/mcp" || imp.Secrets["header/Authorization"] != "Bearer t0k" ||
		imp.Server.Headers["X-Trace"] != "abc" || imp.Server.Headers["X-Fixed"] != "v1" {
		t.Fatalf("import = %+v %v", imp.Server, imp.Secrets)
	}
	var secretURL Entry
	_ = json.Unmarshal([]byte(`{"server":{"name":"io.example/s","version":"1","remotes":[{"type":"streamable-http","url":"https://x.example/{key}","variables":{"key":{"isSecret":true}}}]}}`), &secretURL)
	if _, err := NewPlan(secretURL, "", nil); err == nil || !strings.Contains(err.Error(), `its URL needs the secret "key"`) {
		t.Fatalf("secret in URL: %v", err)
	}
}

func TestDeriveName(t *testing.T) {
	t.Parallel()
	taken := func(names ...string) func(string) bool {
		return func(n string) bool {
			for _, x := range names {
				if x == n {
					return true
				}
			}
			return false
		}
	}
	long := "io.example/" + strings.Repeat("very-long-name-", 8)
	tests := []struct {
		in    string
		taken []string
		want  string
	}{
		{"io.github.user/remote-weather", nil, "remote-weather"},
		{"io.github.user/remote-weather", []string{"remote-weather"}, "user-remote-weather"},
		{"io.github.user/remote-weather", []string{"remote-weather", "user-remote-weather"}, "remote-weather-2"},
		{"io.github.user/remote-weather", []string{"remote-weather", "user-remote-weather", "remote-weather-2"}, "remote-weather-3"},
		{"io.github.domdomegg/airtable-mcp-server", nil, "airtable"},
		{"com.example.email/email-integration-mcp", nil, "email-integration"},
		{"io.modelcontextprotocol.anonymous/mcp-fs", nil, "mcp-fs"},
		{"io.github.joelverhagen/Knapcode.SampleMcpServer", nil, "knapcode-samplemcpserver"},
		{"io.example/___", nil, "example"},
		{"io.example/-mcp", nil, "mcp"},
		{"Ünïcode/Ωmega", nil, "mega"},
		{"noslash", nil, "noslash"},
		{long, nil, strings.TrimRight((strings.Repeat("very-long-name-", 8))[:56], "-")},
	}
	for _, tt := range tests {
		got := DeriveName(tt.in, taken(tt.taken...))
		if got != tt.want {
			t.Errorf("DeriveName(%q, %q) = %q, want %q", tt.in, tt.taken, got, tt.want)
		}
		if err := catalog.CheckName(got); err != nil {
			t.Errorf("DeriveName(%q) = %q is not a valid name: %v", tt.in, got, err)
		}
	}
}

func FuzzDecodeList(f *testing.F) {
	for _, name := range []string{"page1.json", "page2.json", "search-github.json", "server-latest.json", "bad/truncated.json", "bad/wrong-shape.json", "bad/html-502.html"} {
		f.Add(readFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if l, err := DecodeList(data); err == nil {
			for _, e := range l.Servers {
				if e.Server.Name == "" {
					t.Fatal("accepted an entry without a name")
				}
				if p, err := NewPlan(e, "https://r.example", nil); err == nil {
					_, _ = p.Resolve(nil) // must not panic
					if catalog.CheckName(p.Name()) != nil {
						t.Fatalf("derived an invalid name %q", p.Name())
					}
				}
			}
		}
		if e, err := DecodeEntry(data); err == nil && e.Server.Name == "" {
			t.Fatal("accepted an entry without a name")
		}
	})
}
