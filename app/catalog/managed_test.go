package catalog

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, yml string) *Catalog {
	t.Helper()
	c, err := Parse("servers.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustManaged(t *testing.T, yml string) *Managed {
	t.Helper()
	m, err := ParseManaged("/etc/keyport/managed.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The merge is pure: each rule of the managed file, and that the stricter
// setting always wins over the user's.
func TestMergeRules(t *testing.T) {
	t.Parallel()
	user := `
servers:
  - name: prod-db
    url: https://db.corp.example/mcp
    labels: {env: prod}
    tools: {deny: [drop_table]}
  - name: dev-db
    url: https://db-dev.corp.example/mcp
    labels: {env: dev}
  - name: lab
    url: http://lab.example.org/mcp
    insecure: true
  - name: outside
    url: https://mcp.other.example/mcp
  - name: corp-github
    url: https://github.corp.example/mine
registries:
  - {name: corp, url: https://user-registry.example}
  - {name: mine, url: https://mine.example}
telemetry: {endpoint: "http://localhost:4318"}
`
	tests := []struct {
		name    string
		managed string
		check   func(t *testing.T, c *Catalog)
	}{
		{"no managed file changes nothing", "", func(t *testing.T, c *Catalog) {
			if len(c.Servers) != 5 || c.Managed != nil || c.Servers[0].Managed != nil {
				t.Errorf("catalog changed: %+v", c)
			}
		}},
		{"managed servers are added, read-only, and win over a user's of the same name", `
servers:
  - name: corp-github
    url: https://github.corp.example/mcp
    auth: {type: oauth}
`, func(t *testing.T, c *Catalog) {
			s, _ := c.Lookup("corp-github")
			if s.URL != "https://github.corp.example/mcp" || s.Managed == nil || !s.Managed.Server {
				t.Errorf("corp-github = %+v (managed %+v)", s, s.Managed)
			}
			if len(c.Managed.Blocked) != 1 || c.Managed.Blocked[0].Name != "corp-github" || !strings.Contains(c.Managed.Blocked[0].Reason, ManagedByOrg) {
				t.Errorf("blocked = %+v", c.Managed.Blocked)
			}
			if u, _ := c.Lookup("dev-db"); u.Managed != nil {
				t.Errorf("dev-db is not managed: %+v", u.Managed)
			}
		}},
		{"deny patterns by label are added to the user's, never replace them", `
rules:
  - labels: {env: prod}
    deny: [delete_*, drop_table]
`, func(t *testing.T, c *Catalog) {
			s, _ := c.Lookup("prod-db")
			if !slices.Equal(s.Tools.Deny, []string{"drop_table", "delete_*"}) || !slices.Equal(s.Managed.Deny, []string{"delete_*", "drop_table"}) {
				t.Errorf("deny = %v, managed %v", s.Tools.Deny, s.Managed.Deny)
			}
			if !s.IsManagedDeny("delete_*") || s.IsManagedDeny("x") {
				t.Error("IsManagedDeny wrong")
			}
			if d, _ := c.Lookup("dev-db"); d.Managed != nil || len(d.Tools.Deny) != 0 {
				t.Errorf("dev-db got %v", d.Tools.Deny)
			}
		}},
		{"pinning by server name glob: the stricter mode wins", `
rules:
  - servers: ["*-db"]
    pinning: warn
  - servers: [prod-db]
    pinning: hold
  - servers: [prod-db]
    pinning: off
`, func(t *testing.T, c *Catalog) {
			p, _ := c.Lookup("prod-db")
			d, _ := c.Lookup("dev-db")
			if p.Managed.Pinning != PinHold || d.Managed.Pinning != PinWarn {
				t.Errorf("pinning prod %q dev %q", p.Managed.Pinning, d.Managed.Pinning)
			}
			d.Tools.Pinning = PinOff
			if got := d.PinningMode(); got != PinWarn {
				t.Errorf("user off under managed warn = %q", got)
			}
			d.Tools.Pinning = PinHold
			if got := d.PinningMode(); got != PinHold {
				t.Errorf("user hold under managed warn = %q (a user may tighten)", got)
			}
		}},
		{"insecure servers are refused when forbidden", "forbid_insecure: true\n", func(t *testing.T, c *Catalog) {
			if _, ok := c.Lookup("lab"); ok {
				t.Error("lab (insecure) still in the catalog")
			}
			if err := c.CheckAllowed(Server{Name: "x", URL: "http://a.example/mcp", Insecure: true}); err == nil || !strings.Contains(err.Error(), "insecure") {
				t.Errorf("CheckAllowed = %v", err)
			}
		}},
		{"servers outside the allowed URLs are refused", "allowed_urls: [\"https://*.corp.example/*\"]\n", func(t *testing.T, c *Catalog) {
			if got := strings.Join(c.Names(), ","); got != "prod-db,dev-db,corp-github" {
				t.Errorf("names = %s", got)
			}
			if len(c.Managed.Blocked) != 2 {
				t.Errorf("blocked = %+v", c.Managed.Blocked)
			}
			if err := c.CheckAllowed(Server{Name: "y", URL: "https://evil.example/corp.example/x"}); err == nil {
				t.Error("a URL outside the patterns was allowed")
			}
			if err := c.CheckAllowed(Server{Name: "y", URL: "https://a.corp.example/mcp"}); err != nil {
				t.Error(err)
			}
		}},
		{"telemetry and registries: the organization's win", `
telemetry: {endpoint: "https://otel.corp.example:4318", headers: {X-Team: sec}}
registries:
  - {name: corp, url: https://registry.corp.example}
default_clients: [cursor, claude-code]
`, func(t *testing.T, c *Catalog) {
			if c.Telemetry.Endpoint != "https://otel.corp.example:4318" || !c.TelemetryManaged() {
				t.Errorf("telemetry = %+v", c.Telemetry)
			}
			if len(c.Registries) != 2 || c.Registries[0].URL != "https://registry.corp.example" || !c.ManagedRegistry("corp") || c.ManagedRegistry("mine") {
				t.Errorf("registries = %+v", c.Registries)
			}
			if !slices.Equal(c.DefaultClients(), []string{"cursor", "claude-code"}) {
				t.Errorf("default clients = %v", c.DefaultClients())
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := mustParse(t, user)
			before := len(u.Servers[0].Tools.Deny)
			var m *Managed
			if tc.managed != "" {
				m = mustManaged(t, tc.managed)
			}
			tc.check(t, Merge(u, m))
			if len(u.Servers[0].Tools.Deny) != before || u.Managed != nil {
				t.Error("Merge changed its input")
			}
		})
	}
}

func TestParseManagedErrors(t *testing.T) {
	t.Parallel()
	_, err := ParseManaged("/etc/keyport/managed.yaml", []byte(`
rules:
  - servers: [prod]
    deny: ["^delete_.*"]
    pinning: strict
  - labels: {env: prod}
forbid_insecure: maybe
telemetry: {endpoint: "http://otel.corp.example:4318", protocl: grpc}
defaults: {}
`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`managed.yaml:4: rules[0].deny[0]: "^delete_.*": write regular expressions as ^...$`,
		`managed.yaml:5: rules[0].pinning: "strict" is not one of hold, warn, off`,
		`managed.yaml:6: rules[1]: forces nothing`,
		`managed.yaml:7: forbid_insecure: must be true or false`,
		`managed.yaml:8: telemetry.protocl: unknown field; did you mean "protocol"?`,
		`managed.yaml:9: defaults: unknown field`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseTelemetry(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "telemetry:\n  endpoint: https://otel.example.com:4317\n  protocol: grpc\n  secret_headers: [Authorization]\n  resource: {deployment.environment: prod}\n  signals: [logs, traces]\n")
	if c.Telemetry == nil || c.Telemetry.Protocol != ProtocolGRPC || !c.Telemetry.Exports(SignalLogs) || c.Telemetry.Exports(SignalMetrics) {
		t.Fatalf("telemetry = %+v", c.Telemetry)
	}
	_, err := Parse("servers.yaml", []byte("telemetry:\n  endpoint: http://otel.example.com:4318\n  headers: {Authorization: Bearer abc}\n  signals: [logs, spans]\n"))
	for _, want := range []string{
		"servers.yaml:2: telemetry.endpoint: plain http is allowed only for localhost",
		"servers.yaml:3: telemetry.headers.Authorization: is a credential",
		`servers.yaml:4: telemetry.signals[1]: "spans" is not one of logs, metrics, traces`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "abc") {
		t.Error("the error quotes a header value")
	}
}

// An invalid managed file never means "unmanaged": the last good one stays
// in effect (in this process, or from the copy a previous process kept),
// the error says so, and with none known nothing is served.
func TestManagedInvalidKeepsLastGood(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mp := filepath.Join(dir, "etc", "managed.yaml")
	os.MkdirAll(filepath.Dir(mp), 0o755)
	f := tempFile(t, serversYAML("a"))
	f.SetManagedPath(mp)

	writeInPlace(t, mp, "rules: [{deny: [rm_*]}]\n")
	c, err := f.Load()
	if err != nil || c.Managed == nil || !slices.Contains(c.Servers[0].Tools.Deny, "rm_*") {
		t.Fatalf("load = %+v, %v", c, err)
	}
	writeInPlace(t, mp, "rules: [{deny: [rm_*]}\n") // broken
	c, err = f.Load()
	if err != nil || c.Managed.Err == "" || !slices.Contains(c.Servers[0].Tools.Deny, "rm_*") {
		t.Fatalf("after a bad edit: %+v (managed %+v), %v", c, c.Managed, err)
	}
	if !strings.Contains(c.Managed.Err, "keeps applying their last valid version") {
		t.Errorf("managed error = %s", c.Managed.Err)
	}

	// A new process (a CLI verb) meets the broken file: the copy applies.
	g := NewFile(f.Path())
	g.SetManagedPath(mp)
	c, err = g.Load()
	if err != nil || !slices.Contains(c.Servers[0].Tools.Deny, "rm_*") || c.Managed.Err == "" {
		t.Fatalf("new process: %+v, %v", c, err)
	}

	// Nothing good known at all: fail closed.
	os.Remove(filepath.Join(filepath.Dir(f.Path()), lastGoodName))
	h := NewFile(f.Path())
	h.SetManagedPath(mp)
	if c, err := h.Load(); err == nil || !strings.Contains(err.Error(), "serves no server") {
		t.Fatalf("no good version known: %+v, %v", c, err)
	}
}

// The watcher follows the managed file like servers.yaml: a new rule
// arrives as an Update; a broken file keeps the rule and says so.
func TestWatchManagedFile(t *testing.T) {
	t.Parallel()
	mp := filepath.Join(t.TempDir(), "keyport", "managed.yaml")
	os.MkdirAll(filepath.Dir(mp), 0o755)
	f := tempFile(t, serversYAML("a"))
	f.SetManagedPath(mp)
	w, err := f.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	renameOver(t, mp, "rules: [{deny: [rm_*], pinning: hold}]\n")
	u := next(t, w)
	s, _ := u.Catalog.Lookup("a")
	if s.Managed == nil || s.Managed.Pinning != PinHold || !slices.Equal(u.Diff.Changed, []string{"a"}) || !u.Diff.ManagedChanged {
		t.Fatalf("update = %+v / %+v", u, s.Managed)
	}
	writeInPlace(t, mp, "rules: [{deny: [rm_*]\n")
	u = next(t, w)
	s, _ = u.Catalog.Lookup("a")
	if u.Catalog.Managed.Err == "" || s.Managed == nil || s.Managed.Pinning != PinHold {
		t.Fatalf("after a broken edit: %+v", u.Catalog.Managed)
	}
	os.Remove(mp)
	u = next(t, w)
	if u.Catalog.Managed != nil {
		t.Fatalf("the administrator removed the file, still managed: %+v", u.Catalog.Managed)
	}
}

// TestAllowedURLsMatchTheHost: allowed_urls decide which hosts a user's
// servers may be on. A `*` of the host part must not reach into the path,
// query or fragment, or a user (or a config pasted from a web page) gets
// any host past https://*.corp.example/* by putting ".corp.example/" after
// it.
func TestAllowedURLsMatchTheHost(t *testing.T) {
	m := &Managed{Path: "/etc/keyport/managed.yaml", AllowedURLs: []string{"https://*.corp.example/*", "https://tools.partner.example/mcp", "http://127.0.0.1:*/*"}}
	for _, tc := range []struct {
		url   string
		allow bool
	}{
		{"https://a.corp.example/mcp", true},
		{"https://a.b.corp.example/x/y?z=1", true},
		{"https://A.CORP.EXAMPLE/mcp", true},
		{"https://tools.partner.example/mcp", true},
		{"http://127.0.0.1:8080/mcp", true},
		{"https://evil.example/.corp.example/mcp", false},
		{"https://evil.example/x.corp.example/", false},
		{"https://evil.example?.corp.example/", false},
		{"https://evil.example/?q=.corp.example/", false},
		{"https://evil.example#.corp.example/", false},
		{"https://evil.example:443/.corp.example/", false},
		{"https://a.corp.example.evil.example/mcp", false},
		{"https://corp.example/mcp", false},
		{"https://a.corp.example:8443/mcp", false},
		{"http://a.corp.example/mcp", false},
		{"https://tools.partner.example/mcp/other", false},
		{"https://tools.partner.example/mcp?x=1", false},
		{"http://127.0.0.1.evil.example:80/mcp", false},
	} {
		reason := m.refusal(Server{Name: "s", URL: tc.url})
		if got := reason == ""; got != tc.allow {
			t.Errorf("%s: allowed = %v, want %v (%s)", tc.url, got, tc.allow, reason)
		}
	}
}
