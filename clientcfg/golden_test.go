package clientcfg

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const testKeyport = "/opt/keyport/bin/keyport"

func remoteWant(server string, port string) Want {
	return Want{
		Server:  server,
		URL:     "http://127.0.0.1:" + port + "/mcp",
		Headers: map[string]string{"Authorization": "Bearer local-token-" + server},
	}
}

func stdioWant(server string) Want {
	return Want{
		Server:  server,
		Command: testKeyport,
		Args:    []string{"connect", server},
		Env:     map[string]string{"KEYPORT_STATE": "/home/me/.config/keyport"},
	}
}

// bothWant has a URL and a command: remote-capable clients get the URL,
// Claude Desktop gets the command.
func bothWant(server, port string) Want {
	w := remoteWant(server, port)
	s := stdioWant(server)
	w.Command, w.Args, w.Env = s.Command, s.Args, s.Env
	return w
}

func mustClient(t testing.TB, id string) Client {
	t.Helper()
	if id == "generic" {
		return genericClient
	}
	c, ok := Lookup(id)
	if !ok {
		t.Fatalf("no client %q", id)
	}
	return c
}

type goldenCase struct {
	name   string // golden file: testdata/golden/<name>.golden
	client string
	input  string // file under testdata/inputs; "" = the file does not exist
	op     Op
	format JSONFormat
}

var goldenCases = []goldenCase{
	// One per client and shape, into the client's typical file.
	{"claude-stdio-pretty", "claude", "pretty.json", InstallOp(bothWant("github", "4100")), ""},
	{"claude-stdio-new-file", "claude", "", InstallOp(bothWant("github", "4100")), ""},
	{"cursor-remote-jsonc", "cursor", "jsonc.jsonc", InstallOp(remoteWant("github", "4100")), ""},
	{"cursor-stdio-pretty", "cursor", "pretty.json", InstallOp(stdioWant("github")), ""},
	{"claude-code-remote-user", "claude-code", "claude-code.json", InstallOp(remoteWant("github", "4100")), ""},
	{"claude-code-stdio-user", "claude-code", "claude-code.json", InstallOp(stdioWant("github")), ""},
	{"claude-code-remote-project-new", "claude-code", "", InstallOp(remoteWant("github", "4100")), ""},
	{"vscode-remote", "vscode", "vscode.jsonc", InstallOp(remoteWant("github", "4100")), ""},
	{"vscode-stdio", "vscode", "vscode.jsonc", InstallOp(stdioWant("github")), ""},
	{"vscode-remote-new-file", "vscode", "", InstallOp(remoteWant("github", "4100")), ""},
	{"windsurf-remote", "windsurf", "windsurf.json", InstallOp(remoteWant("github", "4100")), ""},
	{"windsurf-stdio", "windsurf", "windsurf.json", InstallOp(stdioWant("github")), ""},
	{"gemini-remote-no-servers", "gemini", "no-servers.json", InstallOp(remoteWant("github", "4100")), ""},
	{"gemini-stdio-no-servers", "gemini", "no-servers.json", InstallOp(stdioWant("github")), ""},
	{"generic-remote-pretty", "generic", "pretty.json", InstallOp(remoteWant("github", "4100")), ""},
	// File styles.
	{"cursor-crlf-bom-tabs", "cursor", "crlf-bom-tabs.json", InstallOp(remoteWant("github", "4100")), ""},
	{"cursor-compact", "cursor", "compact.json", InstallOp(remoteWant("github", "4100")), ""},
	{"cursor-compact-forced-pretty", "cursor", "compact.json", InstallOp(remoteWant("github", "4100")), FormatPretty},
	{"cursor-pretty-forced-compact", "cursor", "pretty.json", InstallOp(remoteWant("github", "4100")), FormatCompact},
	{"cursor-empty-servers", "cursor", "empty-servers.json", InstallOp(remoteWant("github", "4100")), ""},
	// Updates and removals.
	{"cursor-stale-update", "cursor", "stale.json", InstallOp(remoteWant("gh", "4100")), ""},
	{"cursor-stale-remove", "cursor", "stale.json", RemoveOp("old"), ""},
	{"cursor-stale-sync", "cursor", "stale.json", SyncOp([]Want{remoteWant("gh", "4100"), remoteWant("new", "4200")}), ""},
	{"cursor-jsonc-sync-empty", "cursor", "jsonc.jsonc", SyncOp(nil), ""},
	{"cursor-stale-remove-key", "cursor", "stale.json", RemoveKeyOp("keyport-mine"), ""},
}

func readInput(t testing.TB, name string) []byte {
	t.Helper()
	if name == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join("testdata", "inputs", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := readInput(t, tc.input)
			d, err := parseDoc(tc.input, before)
			if err != nil {
				t.Fatal(err)
			}
			f := tc.format
			if f == "" {
				f = FormatAuto
			}
			p, err := planOp(d, mustClient(t, tc.client), tc.op, f)
			if err == nil {
				err = p.verify()
			}
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, p.out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(p.out, want) {
				t.Errorf("output differs from %s:\n%s", golden, unifiedDiff(golden, want, p.out, nil))
			}
			// Planning the same op on the result changes nothing.
			d2, err := parseDoc(tc.input, p.out)
			if err != nil {
				t.Fatalf("the result does not parse: %v", err)
			}
			p2, err := planOp(d2, mustClient(t, tc.client), tc.op, f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p2.out, p.out) {
				t.Errorf("not idempotent:\n%s", unifiedDiff("again", p.out, p2.out, nil))
			}
		})
	}
}

// TestGoldenReviewed pins facts a person checked in the golden files, so an
// -update cannot silently bless a wrong shape.
func TestGoldenReviewed(t *testing.T) {
	t.Parallel()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", "golden", name+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	checks := []struct {
		golden   string
		contains []string
		absent   []string
	}{
		{"claude-stdio-pretty", []string{`"command": "/opt/keyport/bin/keyport"`, `"args": ["connect", "github"]`}, []string{`"url": "http://127.0.0.1:4100/mcp"`, `"type"`}},
		{"cursor-remote-jsonc", []string{`"url": "http://127.0.0.1:4100/mcp"`, `"Authorization": "Bearer local-token-github"`, "// end of file, no newline after this comment"}, []string{`"type": "http"`}},
		{"claude-code-remote-user", []string{`"type": "http"`, `"url": "http://127.0.0.1:4100/mcp"`}, nil},
		{"claude-code-stdio-user", []string{`"type": "stdio"`, `"command": "/opt/keyport/bin/keyport"`}, nil},
		{"vscode-remote", []string{`"servers": {`, `"type": "http"`, "\t\t\"keyport-github\": {"}, []string{`"mcpServers"`}},
		{"windsurf-remote", []string{`"serverUrl": "http://127.0.0.1:4100/mcp"`}, []string{`"url": "http://127.0.0.1:4100/mcp"`}},
		{"gemini-remote-no-servers", []string{`"httpUrl": "http://127.0.0.1:4100/mcp"`}, []string{`"url": "http://127.0.0.1:4100/mcp"`}},
		{"cursor-crlf-bom-tabs", []string{"\xEF\xBB\xBF{\r\n", "\t\t\"keyport-github\": {\r\n"}, nil},
		{"cursor-stale-update", []string{`"disabled": false`, "4100"}, []string{"1111", "old-token"}},
		{"cursor-stale-sync", []string{`"keyport-new"`, `"keyport-mine"`}, []string{`"keyport-old"`}},
	}
	for _, c := range checks {
		got := read(c.golden)
		for _, s := range c.contains {
			if !strings.Contains(got, s) {
				t.Errorf("%s: missing %q", c.golden, s)
			}
		}
		for _, s := range c.absent {
			if strings.Contains(got, s) {
				t.Errorf("%s: unexpected %q", c.golden, s)
			}
		}
		if strings.Contains(c.golden, "crlf") && strings.Count(got, "\n") != strings.Count(got, "\r\n") {
			t.Errorf("%s: a bare LF slipped into a CRLF file", c.golden)
		}
	}
}
