package clientcfg

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeEnv builds an Env for any OS: vars are its environment, existing
// lists the paths that exist (directories are listed from it too).
func fakeEnv(goos, home string, vars map[string]string, existing ...string) Env {
	exists := map[string]bool{}
	for _, p := range existing {
		exists[p] = true
	}
	sep := "/"
	if goos == "windows" {
		sep = `\`
	}
	return Env{
		GOOS:   goos,
		Home:   home,
		Getenv: func(k string) string { return vars[k] },
		Exists: func(p string) bool {
			if exists[p] {
				return true
			}
			for e := range exists {
				if strings.HasPrefix(e, p+sep) {
					return true
				}
			}
			return false
		},
		ListDir: func(dir string) ([]string, error) {
			seen := map[string]bool{}
			var names []string
			for e := range exists {
				if rest, ok := strings.CutPrefix(e, dir+sep); ok {
					name, _, _ := strings.Cut(rest, sep)
					if !seen[name] {
						seen[name] = true
						names = append(names, name)
					}
				}
			}
			return names, nil
		},
	}
}

func TestClientTable(t *testing.T) {
	t.Parallel()
	ids := map[string]bool{}
	for _, c := range Clients() {
		if c.ID == "" || c.Name == "" || c.RootKey == "" || c.NeedsRestart == "" || len(c.Locations) == 0 {
			t.Errorf("client %q: incomplete row %+v", c.ID, c)
		}
		if ids[c.ID] {
			t.Errorf("client %q listed twice", c.ID)
		}
		ids[c.ID] = true
		for _, goos := range []string{"linux", "darwin", "windows"} {
			env := fakeEnv(goos, "/h", nil)
			if goos == "windows" {
				env = fakeEnv(goos, `C:\Users\u`, nil)
			}
			if _, err := c.UserTarget(env); err != nil {
				t.Errorf("client %q on %s: %v", c.ID, goos, err)
			}
		}
	}
	for _, id := range []string{"claude", "cursor", "claude-code", "vscode", "windsurf", "gemini"} {
		if !ids[id] {
			t.Errorf("client %q is missing", id)
		}
	}
	if n := len(AllUserTargets(fakeEnv("linux", "/h", nil))); n != 6 {
		t.Errorf("AllUserTargets = %d targets, want 6", n)
	}
	if c, _ := Lookup("claude"); c.RemoteCapable() {
		t.Error("Claude Desktop must be stdio-only")
	}
	if c, ok := Lookup("Claude-Desktop"); !ok || c.ID != "claude" {
		t.Error("alias claude-desktop does not resolve")
	}
}

func TestUserPaths(t *testing.T) {
	t.Parallel()
	winVars := map[string]string{"APPDATA": `C:\Users\u\AppData\Roaming`, "LOCALAPPDATA": `C:\Users\u\AppData\Local`}
	msix := `C:\Users\u\AppData\Local\Packages\Claude_pzs8sxrjxfjjc`
	cases := []struct {
		name, client string
		env          Env
		want         []string // every user target, main first
		label        string   // label of the main target
	}{
		{"claude-linux", "claude", fakeEnv("linux", "/home/u", nil), []string{"/home/u/.config/Claude/claude_desktop_config.json"}, ""},
		{"claude-linux-xdg", "claude", fakeEnv("linux", "/home/u", map[string]string{"XDG_CONFIG_HOME": "/xdg"}), []string{"/xdg/Claude/claude_desktop_config.json"}, ""},
		{"claude-linux-xdg-relative-ignored", "claude", fakeEnv("linux", "/home/u", map[string]string{"XDG_CONFIG_HOME": "rel"}), []string{"/home/u/.config/Claude/claude_desktop_config.json"}, ""},
		{"claude-darwin", "claude", fakeEnv("darwin", "/Users/u", nil), []string{"/Users/u/Library/Application Support/Claude/claude_desktop_config.json"}, ""},
		{"claude-windows-classic", "claude", fakeEnv("windows", `C:\Users\u`, winVars), []string{`C:\Users\u\AppData\Roaming\Claude\claude_desktop_config.json`}, ""},
		{"claude-windows-no-appdata-var", "claude", fakeEnv("windows", `C:\Users\u`, nil), []string{`C:\Users\u\AppData\Roaming\Claude\claude_desktop_config.json`}, ""},
		{"claude-windows-msix", "claude", fakeEnv("windows", `C:\Users\u`, winVars, msix, `C:\Users\u\AppData\Roaming\Claude\claude_desktop_config.json`),
			[]string{msix + `\LocalCache\Roaming\Claude\claude_desktop_config.json`}, "MSIX install"},
		{"claude-windows-msix-two-packages-prefers-existing-file", "claude", fakeEnv("windows", `C:\Users\u`, winVars,
			`C:\Users\u\AppData\Local\Packages\Claude_aaaa`,
			`C:\Users\u\AppData\Local\Packages\Claude_bbbb\LocalCache\Roaming\Claude\claude_desktop_config.json`),
			[]string{`C:\Users\u\AppData\Local\Packages\Claude_bbbb\LocalCache\Roaming\Claude\claude_desktop_config.json`}, "MSIX install"},
		{"cursor-linux", "cursor", fakeEnv("linux", "/home/u", nil), []string{"/home/u/.cursor/mcp.json"}, ""},
		{"cursor-windows", "cursor", fakeEnv("windows", `C:\Users\u`, winVars), []string{`C:\Users\u\.cursor\mcp.json`}, ""},
		{"claude-code", "claude-code", fakeEnv("darwin", "/Users/u", nil), []string{"/Users/u/.claude.json"}, ""},
		{"claude-code-config-dir", "claude-code", fakeEnv("linux", "/home/u", map[string]string{"CLAUDE_CONFIG_DIR": "/cfg/claude"}), []string{"/cfg/claude/.claude.json"}, "CLAUDE_CONFIG_DIR"},
		{"claude-code-config-dir-tilde", "claude-code", fakeEnv("linux", "/home/u", map[string]string{"CLAUDE_CONFIG_DIR": "~/.claude-work"}), []string{"/home/u/.claude-work/.claude.json"}, "CLAUDE_CONFIG_DIR"},
		{"claude-code-windows", "claude-code", fakeEnv("windows", `C:\Users\u`, winVars), []string{`C:\Users\u\.claude.json`}, ""},
		{"vscode-linux", "vscode", fakeEnv("linux", "/home/u", nil), []string{"/home/u/.config/Code/User/mcp.json"}, ""},
		{"vscode-linux-insiders", "vscode", fakeEnv("linux", "/home/u", nil, "/home/u/.config/Code - Insiders/User"),
			[]string{"/home/u/.config/Code/User/mcp.json", "/home/u/.config/Code - Insiders/User/mcp.json"}, ""},
		{"vscode-darwin", "vscode", fakeEnv("darwin", "/Users/u", nil), []string{"/Users/u/Library/Application Support/Code/User/mcp.json"}, ""},
		{"vscode-windows-insiders", "vscode", fakeEnv("windows", `C:\Users\u`, winVars, `C:\Users\u\AppData\Roaming\Code - Insiders`),
			[]string{`C:\Users\u\AppData\Roaming\Code\User\mcp.json`, `C:\Users\u\AppData\Roaming\Code - Insiders\User\mcp.json`}, ""},
		{"windsurf", "windsurf", fakeEnv("linux", "/home/u", nil), []string{"/home/u/.codeium/windsurf/mcp_config.json"}, ""},
		{"windsurf-windows", "windsurf", fakeEnv("windows", `C:\Users\u`, winVars), []string{`C:\Users\u\.codeium\windsurf\mcp_config.json`}, ""},
		{"gemini", "gemini", fakeEnv("darwin", "/Users/u", nil), []string{"/Users/u/.gemini/settings.json"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustClient(t, tc.client)
			ts := c.UserTargets(tc.env)
			var got []string
			for _, tg := range ts {
				got = append(got, tg.Path)
				if tg.Scope != ScopeUser || tg.Client.ID != c.ID {
					t.Errorf("target %+v: wrong scope or client", tg)
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("paths:\n got %q\nwant %q", got, tc.want)
			}
			main, err := c.UserTarget(tc.env)
			if err != nil || main.Path != tc.want[0] || main.Label != tc.label {
				t.Errorf("UserTarget = %+v, %v; want %s label %q", main, err, tc.want[0], tc.label)
			}
		})
	}
}

func TestProjectTargets(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"cursor":      ".cursor/mcp.json",
		"claude-code": ".mcp.json",
		"vscode":      ".vscode/mcp.json",
		"gemini":      ".gemini/settings.json",
	}
	for _, c := range Clients() {
		tg, err := c.ProjectTarget("/src/app")
		rel, ok := want[c.ID]
		if !ok {
			if err == nil {
				t.Errorf("%s: project target %s, want an error", c.ID, tg.Path)
			}
			continue
		}
		if err != nil || tg.Path != filepath.Join("/src/app", rel) || tg.Scope != ScopeProject {
			t.Errorf("%s: ProjectTarget = %+v, %v", c.ID, tg, err)
		}
		// A project file's path maps back to the same format.
		if got := ClientForPath(tg.Path); got.ID != c.ID {
			t.Errorf("ClientForPath(%s) = %s, want %s", tg.Path, got.ID, c.ID)
		}
	}
}

func TestClientForPath(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"/p/.vscode/mcp.json":                                   "vscode",
		`C:\p\.vscode\mcp.json`:                                 "vscode",
		"/p/.vscode/other.json":                                 "vscode",
		"/home/u/.config/Code/User/mcp.json":                    "vscode",
		"/home/u/.config/Code/User/profiles/abc/mcp.json":       "vscode",
		"/x/claude_desktop_config.json":                         "claude",
		"/home/u/.cursor/mcp.json":                              "cursor",
		"/home/u/.claude.json":                                  "claude-code",
		"/p/.mcp.json":                                          "claude-code",
		"/home/u/.codeium/windsurf/mcp_config.json":             "windsurf",
		"/home/u/.gemini/settings.json":                         "gemini",
		"/tmp/anything.json":                                    "mcp-json",
		"/p/mcp.json":                                           "mcp-json",
		"/home/u/Library/Application Support/Claude/other.json": "mcp-json",
	}
	for p, want := range cases {
		if got := ClientForPath(p); got.ID != want {
			t.Errorf("ClientForPath(%q) = %s, want %s", p, got.ID, want)
		}
	}
	if c := ClientForPath("/p/.vscode/mcp.json"); c.RootKey != "servers" {
		t.Errorf(".vscode root key = %q", c.RootKey)
	}
	if c := ClientForPath("/tmp/x.json"); c.RootKey != "mcpServers" {
		t.Errorf("generic root key = %q", c.RootKey)
	}
}

func TestParseClientConfig(t *testing.T) {
	t.Parallel()
	cwd := t.TempDir()
	env := fakeEnv("linux", "/home/u", nil)
	cases := []struct {
		in, path, client string
		err              error
	}{
		{"cursor", "/home/u/.cursor/mcp.json", "cursor", nil},
		{"claude", "/home/u/.config/Claude/claude_desktop_config.json", "claude", nil},
		{" Claude-Code ", "/home/u/.claude.json", "claude-code", nil},
		{"vscode", "/home/u/.config/Code/User/mcp.json", "vscode", nil},
		{"vscode-insiders", "/home/u/.config/Code - Insiders/User/mcp.json", "vscode", nil},
		{"windsurf", "/home/u/.codeium/windsurf/mcp_config.json", "windsurf", nil},
		{"gemini", "/home/u/.gemini/settings.json", "gemini", nil},
		{"./proj/.vscode/mcp.json", filepath.Join(cwd, "proj/.vscode/mcp.json"), "vscode", nil},
		{"servers.json", filepath.Join(cwd, "servers.json"), "mcp-json", nil},
		{"/abs/.cursor/mcp.json", "/abs/.cursor/mcp.json", "cursor", nil},
		{"~/dotfiles/mcp.json", "/home/u/dotfiles/mcp.json", "mcp-json", nil},
		{"curser", "", "", ErrUnknownClient},
	}
	for _, tc := range cases {
		tg, err := ParseClientConfig(tc.in, env, cwd)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%q: err = %v, want %v", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || tg.Path != tc.path || tg.Client.ID != tc.client {
			t.Errorf("%q: got %s %s (%v), want %s %s", tc.in, tg.Client.ID, tg.Path, err, tc.client, tc.path)
		}
	}
	if _, err := ParseClientConfig("", env, cwd); err == nil {
		t.Error("empty value accepted")
	}
	if err := os.MkdirAll(filepath.Join(cwd, "dir.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseClientConfig("dir.json", env, cwd); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("a directory was accepted: %v", err)
	}
}

// TestHostEnvTempHome resolves real paths in a temporary HOME on this
// machine, including an install variant that appears on disk.
func TestHostEnvTempHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("CLAUDE_CONFIG_DIR", "")
	env, err := HostEnv()
	if err != nil {
		t.Fatal(err)
	}
	if env.Home != home {
		t.Fatalf("HostEnv home = %s, want %s", env.Home, home)
	}
	c, _ := Lookup("cursor")
	tg, err := c.UserTarget(env)
	if err != nil || tg.Path != filepath.Join(home, ".cursor", "mcp.json") {
		t.Fatalf("cursor target = %+v, %v", tg, err)
	}
	if env.GOOS != "linux" {
		t.Skip("the Insiders check below uses Linux paths")
	}
	vs, _ := Lookup("vscode")
	if n := len(vs.UserTargets(env)); n != 1 {
		t.Fatalf("vscode targets before Insiders is installed = %d, want 1", n)
	}
	if err := os.MkdirAll(filepath.Join(home, ".config", "Code - Insiders"), 0o700); err != nil {
		t.Fatal(err)
	}
	ts := vs.UserTargets(env)
	if len(ts) != 2 || ts[1].Variant != "insiders" || ts[1].Path != filepath.Join(home, ".config", "Code - Insiders", "User", "mcp.json") {
		t.Fatalf("vscode targets after Insiders appeared = %+v", ts)
	}
}

func TestDetected(t *testing.T) {
	t.Parallel()
	cases := []struct {
		client   string
		env      Env
		detected bool
	}{
		{"cursor", fakeEnv("linux", "/home/u", nil), false},
		{"cursor", fakeEnv("linux", "/home/u", nil, "/home/u/.cursor"), true},
		{"claude-code", fakeEnv("linux", "/home/u", nil), false},
		{"claude-code", fakeEnv("linux", "/home/u", nil, "/home/u/.claude"), true},
		{"claude-code", fakeEnv("linux", "/home/u", nil, "/home/u/.claude.json"), true},
		{"claude-code", fakeEnv("linux", "/home/u", map[string]string{"CLAUDE_CONFIG_DIR": "/cfg"}, "/cfg"), true},
		{"claude", fakeEnv("windows", `C:\Users\u`, nil, `C:\Users\u\AppData\Local\Packages\Claude_x\LocalCache\Roaming\Claude`), true},
		{"claude", fakeEnv("darwin", "/Users/u", nil, "/Users/u/Library/Application Support/Claude"), true},
		{"vscode", fakeEnv("linux", "/home/u", nil, "/home/u/.config/Code - Insiders/User/mcp.json"), true},
		{"gemini", fakeEnv("darwin", "/Users/u", nil, "/Users/u/.cursor"), false},
	}
	for _, tc := range cases {
		if got := mustClient(t, tc.client).Detected(tc.env); got != tc.detected {
			t.Errorf("%s on %s: Detected = %v, want %v", tc.client, tc.env.GOOS, got, tc.detected)
		}
	}
}
