package catalog

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string
	}{
		{"syntax", "servers:\n  - name: a\n   url: x\n",
			"servers.yaml:1: YAML: did not find expected '-' indicator"},
		{"tab indentation", "servers:\n\t- name: a\n",
			"servers.yaml:2: YAML: found character that cannot start any token"},
		{"duplicate key", "servers:\n  - name: a\n    url: https://a.example\n    url: https://b.example\n",
			"servers.yaml:4: servers[0].url: defined twice (first at line 3)"},
		{"duplicate top-level key", "servers: []\nservers: []\n",
			"servers.yaml:2: servers: defined twice (first at line 1)"},
		{"duplicate label", "servers:\n  - name: a\n    url: https://a.example\n    labels:\n      a: 1\n      a: 2\n",
			"servers.yaml:6: servers[0].labels.a: defined twice (first at line 5)"},
		{"two documents", "servers: []\n---\nservers: []\n",
			"servers.yaml:2: a second YAML document (---): servers.yaml holds one document"},
		{"top level list", "- name: a\n",
			`servers.yaml:1: the file must be a mapping with a "servers" list (servers: [...])`},
		{"servers a mapping", "servers:\n  name: a\n",
			"servers.yaml:2: servers: must be a list of servers (- name: ...)"},
		{"unknown top-level", "server:\n  - name: a\n",
			`servers.yaml:1: server: unknown field; did you mean "servers"?`},
		{"item not a mapping", "servers:\n  - a\n",
			"servers.yaml:2: servers[0]: must be a mapping (name: ..., url: ...)"},
		{"unknown field", "servers:\n  - name: a\n    url: https://a.example\n    urls: x\n",
			`servers.yaml:4: servers[0].urls: unknown field; did you mean "url"?`},
		{"unknown field far", "servers:\n  - name: a\n    url: https://a.example\n    colour: red\n",
			"servers.yaml:4: servers[0].colour: unknown field (known: name, description, url, insecure, labels, headers, auth, tools, audit, tls, source)"},
		{"unknown nested", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      typ: bearer\n",
			`servers.yaml:5: servers[0].auth.typ: unknown field; did you mean "type"?`},
		{"missing name", "servers:\n  - url: https://a.example\n",
			"servers.yaml:2: servers[0].name: missing; give the server a name"},
		{"bad name", "servers:\n  - name: My Server\n    url: https://a.example\n",
			`servers.yaml:2: servers[0].name: "My Server" is not a valid name: use 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit`},
		{"name ends with dash", "servers:\n  - name: a-\n    url: https://a.example\n",
			`servers.yaml:2: servers[0].name: "a-" is not a valid name: use 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit`},
		{"name is a list", "servers:\n  - name: [a]\n    url: https://a.example\n",
			"servers.yaml:2: servers[0].name: must be a string, not a list"},
		{"duplicate names", "servers:\n  - name: a\n    url: https://a.example\n  - name: a\n    url: https://b.example\n",
			`servers.yaml:4: servers[1].name: "a" is already the name of servers[0] (line 2); names must be unique`},
		{"missing url", "servers:\n  - name: a\n",
			"servers.yaml:2: servers[0].url: missing; give the server's streamable-HTTP endpoint, e.g. https://mcp.example.com/mcp"},
		{"http remote", "servers:\n  - name: a\n    url: http://mcp.example.com/mcp\n",
			"servers.yaml:3: servers[0].url: plain http is allowed only for localhost; use https (or set insecure: true if you really mean it)"},
		{"ftp", "servers:\n  - name: a\n    url: ftp://mcp.example.com/\n",
			`servers.yaml:3: servers[0].url: scheme "ftp" is not supported: use https (streamable HTTP)`},
		{"no scheme", "servers:\n  - name: a\n    url: mcp.example.com/mcp\n",
			"servers.yaml:3: servers[0].url: needs a scheme: https://..."},
		{"credentials in url", "servers:\n  - name: a\n    url: https://user:hunter2@mcp.example.com/\n",
			"servers.yaml:3: servers[0].url: must not contain a user name or password: use auth (secrets go in the OS keychain)"},
		{"fragment", "servers:\n  - name: a\n    url: https://mcp.example.com/#x\n",
			"servers.yaml:3: servers[0].url: must not have a #fragment"},
		{"bad port", "servers:\n  - name: a\n    url: https://mcp.example.com:99999/\n",
			`servers.yaml:3: servers[0].url: port "99999" is not valid (1-65535)`},
		{"not a url", "servers:\n  - name: a\n    url: \"https://exa mple.com\"\n",
			"servers.yaml:3: servers[0].url: must not contain spaces or control characters"},
		{"insecure not bool", "servers:\n  - name: a\n    url: http://x.example\n    insecure: maybe\n",
			"servers.yaml:4: servers[0].insecure: must be true or false"},
		{"bad label key", "servers:\n  - name: a\n    url: https://a.example\n    labels:\n      \"-x\": y\n",
			`servers.yaml:5: servers[0].labels.-x: "-x" is not a valid label key: use letters, digits and . _ / - (at most 63)`},
		{"label with comma", "servers:\n  - name: a\n    url: https://a.example\n    labels: {env: \"a,b\"}\n",
			"servers.yaml:4: servers[0].labels.env: value must not contain a comma or a line break"},
		{"labels a list", "servers:\n  - name: a\n    url: https://a.example\n    labels: [a]\n",
			"servers.yaml:4: servers[0].labels: must be a mapping (key: value)"},
		{"label value a map", "servers:\n  - name: a\n    url: https://a.example\n    labels:\n      env: {x: 1}\n",
			"servers.yaml:5: servers[0].labels.env: must be a string, not a mapping"},
		{"authorization header", "servers:\n  - name: a\n    url: https://a.example\n    headers:\n      Authorization: Bearer abc\n",
			"servers.yaml:5: servers[0].headers.Authorization: is a credential: use auth (type: bearer, or list it in auth.secret_headers) so its value stays in the OS keychain"},
		{"credential-looking header", "servers:\n  - name: a\n    url: https://a.example\n    headers:\n      X-Token: Bearer abc\n",
			"servers.yaml:5: servers[0].headers.X-Token: value looks like a credential: list the header in auth.secret_headers so its value stays in the OS keychain"},
		{"reserved header", "servers:\n  - name: a\n    url: https://a.example\n    headers:\n      mcp-session-id: x\n",
			`servers.yaml:5: servers[0].headers.mcp-session-id: "mcp-session-id" is set by Keyport or the MCP transport and cannot be configured`},
		{"bad header name", "servers:\n  - name: a\n    url: https://a.example\n    headers:\n      \"X Y\": x\n",
			`servers.yaml:5: servers[0].headers.X Y: "X Y" is not a valid header name`},
		{"header twice", "servers:\n  - name: a\n    url: https://a.example\n    headers:\n      X-A: 1\n      x-a: 2\n",
			`servers.yaml:6: servers[0].headers.x-a: same header as "X-A" (header names ignore case)`},
		{"bad auth type", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      type: basic\n",
			`servers.yaml:5: servers[0].auth.type: "basic" is not one of none, bearer, headers, oauth`},
		{"headers without any", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      type: headers\n",
			"servers.yaml:4: servers[0].auth.secret_headers: auth.type headers needs at least one secret header (e.g. [X-API-Key])"},
		{"secret headers with none", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      type: none\n      secret_headers: [X-Key]\n",
			"servers.yaml:6: servers[0].auth.secret_headers: needs auth.type headers, bearer or oauth (it is none)"},
		{"secret header twice", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      secret_headers:\n        - X-Key\n        - x-key\n",
			`servers.yaml:7: servers[0].auth.secret_headers[1]: "x-key" is listed twice (also at [0])`},
		{"secret and plain", "servers:\n  - name: a\n    url: https://a.example\n    headers: {X-Key: v}\n    auth:\n      secret_headers: [x-key]\n",
			`servers.yaml:6: servers[0].auth.secret_headers[0]: "x-key" is also in headers: a header is either secret (keychain) or not (servers.yaml)`},
		{"bearer and authorization", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      type: bearer\n      secret_headers: [Authorization]\n",
			"servers.yaml:6: servers[0].auth.secret_headers[0]: auth.type bearer already sets Authorization"},
		{"client id without oauth", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      type: bearer\n      client_id: abc\n",
			"servers.yaml:6: servers[0].auth.client_id: only for auth.type oauth"},
		{"bad callback port", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      type: oauth\n      callback_port: 80\n",
			"servers.yaml:6: servers[0].auth.callback_port: 80 is not a usable port (1024-65535, or 0 for any)"},
		{"callback port text", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      type: oauth\n      callback_port: high\n",
			"servers.yaml:6: servers[0].auth.callback_port: must be a whole number"},
		{"client metadata URL not https", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      type: oauth\n      client_metadata_url: http://x.example/c.json\n",
			`servers.yaml:6: servers[0].auth.client_metadata_url: "http://x.example/c.json" must be an https URL with a path, where your client metadata document is hosted (e.g. https://example.com/keyport/client.json)`},
		{"client metadata URL without oauth", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      type: bearer\n      client_metadata_url: https://x.example/c.json\n",
			"servers.yaml:6: servers[0].auth.client_metadata_url: only for auth.type oauth"},
		{"default client metadata URL without path", "oauth:\n  client_metadata_url: https://x.example/\nservers: []\n",
			`servers.yaml:2: oauth.client_metadata_url: "https://x.example/" must be an https URL with a path, where your client metadata document is hosted (e.g. https://example.com/keyport/client.json)`},
		{"unknown oauth default", "oauth:\n  client_id: x\nservers: []\n",
			`servers.yaml:2: oauth.client_id: unknown field (known: client_metadata_url)`},
		{"bad scope", "servers:\n  - name: a\n    url: https://a.example\n    auth:\n      type: oauth\n      scopes: [\"a b\"]\n",
			`servers.yaml:6: servers[0].auth.scopes[0]: "a b" is not a valid OAuth scope (no spaces or quotes)`},
		{"bad regex", "servers:\n  - name: a\n    url: https://a.example\n    tools:\n      allow:\n        - get_*\n        - ^(a$\n",
			"servers.yaml:7: servers[0].tools.allow[1]: \"^(a$\": invalid regular expression: error parsing regexp: missing closing ): `^(a$`"},
		{"unanchored regex", "servers:\n  - name: a\n    url: https://a.example\n    tools:\n      deny: [\"^delete_.*\"]\n",
			`servers.yaml:5: servers[0].tools.deny[0]: "^delete_.*": write regular expressions as ^...$ (both anchors), or use a glob such as delete_*`},
		{"bad glob", "servers:\n  - name: a\n    url: https://a.example\n    tools:\n      deny: [\"get_[\"]\n",
			`servers.yaml:5: servers[0].tools.deny[0]: "get_[": unclosed [ in glob; close the character class with ]`},
		{"empty pattern", "servers:\n  - name: a\n    url: https://a.example\n    tools:\n      deny: [\"\"]\n",
			"servers.yaml:5: servers[0].tools.deny[0]: empty pattern"},
		{"tools allow a string", "servers:\n  - name: a\n    url: https://a.example\n    tools:\n      allow: get_*\n",
			"servers.yaml:5: servers[0].tools.allow: must be a list, e.g. [a, b]"},
		{"bad pinning", "servers:\n  - name: a\n    url: https://a.example\n    tools:\n      pinning: sometimes\n",
			`servers.yaml:5: servers[0].tools.pinning: "sometimes" is not one of hold, warn, off`},
		{"pinning typo", "servers:\n  - name: a\n    url: https://a.example\n    tools:\n      pining: warn\n",
			`servers.yaml:5: servers[0].tools.pining: unknown field; did you mean "pinning"?`},
		{"bad audit", "servers:\n  - name: a\n    url: https://a.example\n    audit: {params: some}\n",
			`servers.yaml:4: servers[0].audit.params: "some" is not one of none, redacted, full`},
		{"relative ca file", "servers:\n  - name: a\n    url: https://a.example\n    tls: {ca_file: ca.pem}\n",
			"servers.yaml:4: servers[0].tls.ca_file: must be an absolute path (or start with ~/)"},
		{"missing ca file", "servers:\n  - name: a\n    url: https://a.example\n    tls:\n      ca_file: /nonexistent/ca.pem\n",
			"servers.yaml:5: servers[0].tls.ca_file: cannot read /nonexistent/ca.pem: no such file or directory"},
		{"ca file a device", "servers:\n  - name: a\n    url: https://a.example\n    tls:\n      ca_file: /dev/zero\n",
			"servers.yaml:5: servers[0].tls.ca_file: cannot read /dev/zero: not a regular file"},
		{"registry http", "registries:\n  - name: corp\n    url: http://registry.example.com\n",
			"servers.yaml:3: registries[0].url: plain http is allowed only for localhost; use https (or set insecure: true if you really mean it)"},
		{"registry name", "registries:\n  - name: Corp\n    url: https://registry.example.com\n",
			`servers.yaml:2: registries[0].name: "Corp" is not a valid name: use 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit`},
		{"several problems", "servers:\n  - name: a\n    url: http://a.example\n    audit: {params: x}\n  - name: B\n    url: https://b.example\n",
			"servers.yaml:3: servers[0].url: plain http is allowed only for localhost; use https (or set insecure: true if you really mean it)\n" +
				`servers.yaml:4: servers[0].audit.params: "x" is not one of none, redacted, full` + "\n" +
				`servers.yaml:5: servers[1].name: "B" is not a valid name: use 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("servers.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", c.Servers)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error is %T, want *LoadError", err)
			}
			if err.Error() != tt.want {
				t.Fatalf("error:\n got %s\nwant %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatal("error quotes a password")
			}
		})
	}
}

func TestParseValidGolden(t *testing.T) {
	t.Parallel()
	ca := writeCA(t)
	data, err := os.ReadFile(filepath.Join("testdata", "valid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.ReplaceAll(string(data), "CA_FILE", ca))
	c, err := Parse("valid.yaml", data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for i := range c.Servers {
		if c.Servers[i].TLS.CAFile == ca {
			c.Servers[i].TLS.CAFile = "CA_FILE"
		}
	}
	out, _ := json.MarshalIndent(struct {
		Servers    []Server
		Registries []Registry
		Sources    []Registry
	}{c.Servers, c.Registries, c.RegistrySources()}, "", "  ")
	golden(t, "valid.golden.json", append(out, '\n'))
}

func TestEmptyFiles(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "# only a comment\n", "servers:\n", "servers: []\n", "servers: ~\nregistries:\n", "---\n", exampleFile} {
		c, err := Parse("servers.yaml", []byte(in))
		if err != nil || !c.Empty() {
			t.Errorf("Parse(%.30q) = %v, %v; want an empty catalog", in, c, err)
		}
		if got := c.RegistrySources(); len(got) != 1 || got[0].URL != OfficialRegistryURL {
			t.Errorf("RegistrySources = %v, want the official one", got)
		}
	}
}

func TestRegistrySources(t *testing.T) {
	t.Parallel()
	c, err := Parse("s.yaml", []byte("registries:\n  - {name: official, disabled: true}\n  - {name: corp, url: \"https://r.example.com/\"}\n  - {name: old, url: \"https://old.example.com\", disabled: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.RegistrySources()
	if len(got) != 1 || got[0].Name != "corp" || got[0].URL != "https://r.example.com" {
		t.Fatalf("RegistrySources = %+v, want only corp (trailing slash trimmed)", got)
	}
}

func TestManyProblemsAreCapped(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("servers:\n")
	for range 25 {
		b.WriteString("  - name: X\n    url: https://a.example\n")
	}
	_, err := Parse("servers.yaml", []byte(b.String()))
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 21 || lines[20] != "... and 5 more problems" {
		t.Fatalf("got %d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"valid.yaml"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(exampleFile))
	f.Add([]byte("servers:\n  - name: a\n    url: https://a.example\n    auth: {type: headers, secret_headers: [X-K]}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte(profileServers + "profiles:\n  - name: p\n    servers:\n      - server: github\n        tools: [a]\n        overrides: {a: {rename: b}}\n      - linear\n"))
	f.Add([]byte("servers:\n  - &s {name: a, url: \"https://a.example\"}\n  - *s\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("servers.yaml", data)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error %T without problems: %v", err, err)
			}
			return
		}
		// Whatever parses is valid: every server passes Check, names are unique.
		seen := map[string]bool{}
		for _, s := range c.Servers {
			if err := s.Check(); err != nil {
				t.Fatalf("accepted server %q fails Check: %v", s.Name, err)
			}
			if seen[s.Name] {
				t.Fatalf("duplicate name %q accepted", s.Name)
			}
			seen[s.Name] = true
		}
	})
}

func TestCheckToolPattern(t *testing.T) {
	t.Parallel()
	tests := []struct{ pattern, want string }{
		{"search_code", ""},
		{"get_*", ""},
		{"read_?", ""},
		{"[a-c]*", ""},
		{"^(get|list)_.*$", ""},
		{"", "empty pattern"},
		{"get *", `"get *" contains spaces or control characters (tool names have none)`},
		{"^get_.*", `"^get_.*": write regular expressions as ^...$ (both anchors), or use a glob such as delete_*`},
		{"get_.*$", `"get_.*$": write regular expressions as ^...$ (both anchors), or use a glob such as delete_*`},
		{"^", `"^": write regular expressions as ^...$ (both anchors), or use a glob such as delete_*`},
		{"^[a-$", "\"^[a-$\": invalid regular expression: error parsing regexp: invalid character class range: `a-$`"},
		{"get_[", `"get_[": unclosed [ in glob; close the character class with ]`},
	}
	for _, tt := range tests {
		got := ""
		if err := CheckToolPattern(tt.pattern); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("CheckToolPattern(%q) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

// TestOAuthDefaults: the top-level oauth mapping gives every OAuth server
// a default client metadata URL; a server's own wins (app.LoginConfig).
func TestOAuthDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse("servers.yaml", []byte("oauth:\n  client_metadata_url: https://corp.example/keyport/client.json\nservers:\n"+
		"  - name: a\n    url: https://a.example/mcp\n    auth:\n      type: oauth\n      client_metadata_url: https://a.example/client.json\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.OAuth.ClientMetadataURL != "https://corp.example/keyport/client.json" || c.Servers[0].Auth.ClientMetadataURL != "https://a.example/client.json" {
		t.Errorf("defaults %+v, server auth %+v", c.OAuth, c.Servers[0].Auth)
	}
}
