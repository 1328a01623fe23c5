package clientcfg

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// EntryPrefix starts the key of every entry Keyport writes: the entry for
// server NAME is "keyport-NAME".
const EntryPrefix = "keyport-"

// EntryKey returns the config key of server's entry.
func EntryKey(server string) string { return EntryPrefix + server }

// Client is one row of the client table: where a client keeps its MCP
// configuration and which entry shapes it understands.
type Client struct {
	// ID is the short name used on the command line (--client-config=ID).
	ID string
	// Name is the display name.
	Name string
	// Locations are the user-scope config files, in order of preference; see
	// Location for how alternatives and variants combine.
	Locations []Location
	// ProjectFile is the config file inside a project or workspace,
	// "/"-separated and relative to the project directory; "" when the
	// client has no project scope.
	ProjectFile string
	// RootKey is the top-level key holding the servers object.
	RootKey string
	// URLKey is the key of a remote (streamable HTTP) server's URL; "" means
	// the client cannot reach remote servers and gets the stdio bridge.
	URLKey string
	// HTTPType, when set, is written as "type" in remote entries.
	HTTPType string
	// StdioType, when set, is written as "type" in stdio entries.
	StdioType string
	// NeedsRestart tells the user what to do so the client notices a change.
	NeedsRestart string
	// Docs points at the client's own documentation of the file.
	Docs string
	// DetectDirs are templates (as in Location.Path) of directories whose
	// existence shows the client is installed; empty means the directory of
	// its main user-scope file.
	DetectDirs []string
}

// RemoteCapable reports whether the client can talk to a streamable-HTTP
// server directly (otherwise it needs `keyport connect NAME`).
func (c Client) RemoteCapable() bool { return c.URLKey != "" }

// Location is one candidate user-scope config file of a client.
//
// Path is a "/"-separated template. It may start with "~" (the home
// directory) or one of $APPDATA, $LOCALAPPDATA, $XDG_CONFIG_HOME (these fall
// back to their platform defaults when unset) or $CLAUDE_CONFIG_DIR (no
// default: the location does not apply when it is unset). A path segment
// containing '*' matches existing directories; the location applies only if
// one matches.
//
// Locations with the same Variant are alternatives: the first that applies
// wins. Variant "" is the client's main file and always resolves to something
// on a supported OS; other variants (e.g. "insiders") are separate installs
// that apply only when their IfExists directory exists.
type Location struct {
	// OS lists the GOOS values the location is for; empty means every OS.
	OS []string
	// Path is the file template.
	Path string
	// Variant names a separate install ("" is the main one).
	Variant string
	// Label describes the location to people ("MSIX install").
	Label string
	// IfExists, when set, is a template that must exist for the location to
	// apply.
	IfExists string
}

var clientTable = []Client{
	{
		ID:   "claude",
		Name: "Claude Desktop",
		Locations: []Location{
			{OS: []string{"darwin"}, Path: "~/Library/Application Support/Claude/claude_desktop_config.json"},
			// The MSIX package (the default Windows installer since early
			// 2026, and the Store build) reads a virtualised copy of
			// %APPDATA%; it wins whenever the package is installed.
			{OS: []string{"windows"}, Path: "$LOCALAPPDATA/Packages/Claude_*/LocalCache/Roaming/Claude/claude_desktop_config.json", Label: "MSIX install"},
			{OS: []string{"windows"}, Path: "$APPDATA/Claude/claude_desktop_config.json"},
			// No official Linux build; community builds use Electron's
			// default, $XDG_CONFIG_HOME/Claude.
			{OS: []string{"linux", "freebsd", "openbsd", "netbsd"}, Path: "$XDG_CONFIG_HOME/Claude/claude_desktop_config.json"},
		},
		RootKey:      "mcpServers",
		NeedsRestart: "Quit Claude Desktop completely (also from the menu bar or system tray) and start it again.",
		Docs:         "https://modelcontextprotocol.io/docs/develop/connect-local-servers",
	},
	{
		ID:   "cursor",
		Name: "Cursor",
		Locations: []Location{
			{Path: "~/.cursor/mcp.json"},
		},
		ProjectFile:  ".cursor/mcp.json",
		RootKey:      "mcpServers",
		URLKey:       "url",
		NeedsRestart: "Cursor reloads mcp.json by itself; if the server does not show up, toggle it in Cursor Settings → MCP or restart Cursor.",
		Docs:         "https://docs.cursor.com/context/model-context-protocol",
	},
	{
		ID:   "claude-code",
		Name: "Claude Code",
		Locations: []Location{
			{Path: "$CLAUDE_CONFIG_DIR/.claude.json", Label: "CLAUDE_CONFIG_DIR"},
			{Path: "~/.claude.json"},
		},
		ProjectFile:  ".mcp.json",
		DetectDirs:   []string{"$CLAUDE_CONFIG_DIR", "~/.claude"},
		RootKey:      "mcpServers",
		URLKey:       "url",
		HTTPType:     "http",
		StdioType:    "stdio",
		NeedsRestart: "Start a new Claude Code session (running sessions keep their servers); check with /mcp.",
		Docs:         "https://docs.anthropic.com/en/docs/claude-code/mcp",
	},
	{
		ID:   "vscode",
		Name: "VS Code",
		Locations: []Location{
			{OS: []string{"darwin"}, Path: "~/Library/Application Support/Code/User/mcp.json"},
			{OS: []string{"windows"}, Path: "$APPDATA/Code/User/mcp.json"},
			{OS: []string{"linux", "freebsd", "openbsd", "netbsd"}, Path: "$XDG_CONFIG_HOME/Code/User/mcp.json"},
			{OS: []string{"darwin"}, Path: "~/Library/Application Support/Code - Insiders/User/mcp.json", Variant: "insiders", Label: "Insiders", IfExists: "~/Library/Application Support/Code - Insiders"},
			{OS: []string{"windows"}, Path: "$APPDATA/Code - Insiders/User/mcp.json", Variant: "insiders", Label: "Insiders", IfExists: "$APPDATA/Code - Insiders"},
			{OS: []string{"linux", "freebsd", "openbsd", "netbsd"}, Path: "$XDG_CONFIG_HOME/Code - Insiders/User/mcp.json", Variant: "insiders", Label: "Insiders", IfExists: "$XDG_CONFIG_HOME/Code - Insiders"},
		},
		ProjectFile:  ".vscode/mcp.json",
		RootKey:      "servers",
		URLKey:       "url",
		HTTPType:     "http",
		StdioType:    "stdio",
		NeedsRestart: "VS Code notices the change; start or restart the server from the MCP Servers view (or the Start action above it in mcp.json).",
		Docs:         "https://code.visualstudio.com/docs/copilot/reference/mcp-configuration",
	},
	{
		ID:   "windsurf",
		Name: "Windsurf",
		Locations: []Location{
			{Path: "~/.codeium/windsurf/mcp_config.json"},
		},
		RootKey:      "mcpServers",
		URLKey:       "serverUrl",
		NeedsRestart: "Press refresh in Windsurf's MCP panel (Cascade → MCP servers) or restart Windsurf.",
		Docs:         "https://docs.windsurf.com/windsurf/cascade/mcp",
	},
	{
		ID:   "gemini",
		Name: "Gemini CLI",
		Locations: []Location{
			{Path: "~/.gemini/settings.json"},
		},
		ProjectFile:  ".gemini/settings.json",
		RootKey:      "mcpServers",
		URLKey:       "httpUrl",
		NeedsRestart: "Restart Gemini CLI; check with /mcp.",
		Docs:         "https://github.com/google-gemini/gemini-cli/blob/main/docs/tools/mcp-server.md",
	},
}

// genericClient is the format of a config file at a path no known client
// owns: "mcpServers" with the widely understood {"type": "http", "url"} and
// {"command", "args", "env"} shapes (Claude Code, Cursor and VS Code's
// workspace .mcp.json all accept it).
var genericClient = Client{
	ID:           "mcp-json",
	Name:         "MCP config file",
	RootKey:      "mcpServers",
	URLKey:       "url",
	HTTPType:     "http",
	NeedsRestart: "Restart or reload the client that reads this file.",
}

// Clients returns the client table (a copy: changing it changes nothing).
func Clients() []Client {
	out := make([]Client, len(clientTable))
	copy(out, clientTable)
	return out
}

// Lookup returns the client with the given ID. "claude-desktop" is accepted
// for "claude" and "code" for "vscode".
func Lookup(id string) (Client, bool) {
	switch strings.ToLower(strings.TrimSpace(id)) {
	case "claude-desktop":
		id = "claude"
	case "code", "vs-code":
		id = "vscode"
	case "claudecode":
		id = "claude-code"
	}
	for _, c := range clientTable {
		if c.ID == strings.ToLower(strings.TrimSpace(id)) {
			return c, true
		}
	}
	return Client{}, false
}

// ClientIDs returns the IDs of the client table, for help texts.
func ClientIDs() []string {
	ids := make([]string, len(clientTable))
	for i, c := range clientTable {
		ids[i] = c.ID
	}
	return ids
}

// Env is what path resolution reads from the machine. Tests build one for
// any GOOS with a temporary home; HostEnv describes the running machine.
type Env struct {
	// GOOS selects the platform's paths ("darwin", "windows", "linux"...).
	GOOS string
	// Home is the user's home directory (%USERPROFILE% on Windows).
	Home string
	// Getenv looks up environment variables; nil means none are set.
	Getenv func(string) string
	// Exists reports whether a path exists; nil means os.Stat.
	Exists func(path string) bool
	// ListDir lists the names in a directory; nil means os.ReadDir.
	ListDir func(dir string) ([]string, error)
}

// HostEnv describes the running machine.
func HostEnv() (Env, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return Env{}, fmt.Errorf("find the home directory (set HOME): %w", err)
	}
	return Env{GOOS: runtime.GOOS, Home: home, Getenv: os.Getenv}, nil
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

func (e Env) exists(p string) bool {
	if e.Exists != nil {
		return e.Exists(p)
	}
	_, err := os.Stat(p)
	return err == nil
}

func (e Env) listDir(dir string) []string {
	if e.ListDir != nil {
		names, err := e.ListDir(dir)
		if err != nil {
			return nil
		}
		sort.Strings(names)
		return names
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(ents))
	for _, de := range ents {
		names = append(names, de.Name())
	}
	sort.Strings(names)
	return names
}

// sep is the path separator of the Env's OS.
func (e Env) sep() string {
	if e.GOOS == "windows" {
		return `\`
	}
	return "/"
}

// join joins a base directory and "/"-separated relative parts with the
// Env's separator.
func (e Env) join(base string, rel ...string) string {
	s := e.sep()
	out := strings.TrimRight(base, `/\`)
	for _, r := range rel {
		for _, part := range strings.Split(r, "/") {
			if part == "" {
				continue
			}
			out += s + part
		}
	}
	return out
}

func (e Env) isAbs(p string) bool {
	if e.GOOS == "windows" {
		return isWindowsAbs(p)
	}
	return strings.HasPrefix(p, "/")
}

func isWindowsAbs(p string) bool {
	if strings.HasPrefix(p, `\\`) || strings.HasPrefix(p, "//") {
		return true
	}
	return len(p) >= 3 && ((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z')) && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

// base returns the directory a template variable stands for, or ok=false if
// it has no value on this Env.
func (e Env) base(v string) (string, bool) {
	switch v {
	case "~":
		return e.Home, e.Home != ""
	case "$APPDATA":
		if d := e.getenv("APPDATA"); d != "" {
			return d, true
		}
		return e.join(e.Home, "AppData/Roaming"), e.Home != ""
	case "$LOCALAPPDATA":
		if d := e.getenv("LOCALAPPDATA"); d != "" {
			return d, true
		}
		return e.join(e.Home, "AppData/Local"), e.Home != ""
	case "$XDG_CONFIG_HOME":
		// The XDG spec ignores relative values.
		if d := e.getenv("XDG_CONFIG_HOME"); d != "" && e.isAbs(d) {
			return d, true
		}
		return e.join(e.Home, ".config"), e.Home != ""
	case "$CLAUDE_CONFIG_DIR":
		d := e.getenv("CLAUDE_CONFIG_DIR")
		if d == "" {
			return "", false
		}
		if strings.HasPrefix(d, "~/") || strings.HasPrefix(d, `~\`) {
			d = e.join(e.Home, d[2:])
		}
		return d, true
	}
	return "", false
}

// expand turns a template into the concrete paths it stands for: none if a
// variable is unset or a glob segment matches nothing, several if a glob
// matches several directories.
func (e Env) expand(tmpl string) []string {
	head, rest, _ := strings.Cut(tmpl, "/")
	base, ok := e.base(head)
	if !ok {
		return nil
	}
	paths := []string{base}
	for _, seg := range strings.Split(rest, "/") {
		if seg == "" {
			continue
		}
		var next []string
		for _, p := range paths {
			if !strings.ContainsAny(seg, "*?[") {
				next = append(next, e.join(p, seg))
				continue
			}
			for _, name := range e.listDir(p) {
				if m, _ := path.Match(seg, name); m {
					next = append(next, e.join(p, name))
				}
			}
		}
		paths = next
	}
	return paths
}

func (l Location) forOS(goos string) bool {
	if len(l.OS) == 0 {
		return true
	}
	for _, o := range l.OS {
		if o == goos {
			return true
		}
	}
	return false
}

// resolve returns the paths a location stands for on env, preferred first.
// Of several glob matches, those whose file already exists come first.
func (l Location) resolve(env Env) []string {
	if !l.forOS(env.GOOS) {
		return nil
	}
	if l.IfExists != "" {
		found := false
		for _, p := range env.expand(l.IfExists) {
			if env.exists(p) {
				found = true
				break
			}
		}
		if !found {
			return nil
		}
	}
	paths := env.expand(l.Path)
	if len(paths) > 1 {
		sort.SliceStable(paths, func(i, j int) bool { return env.exists(paths[i]) && !env.exists(paths[j]) })
	}
	return paths
}

// Scope says which of a client's files a Target is.
type Scope string

// Scopes of a Target.
const (
	ScopeUser    Scope = "user"    // the client's global, per-user file
	ScopeProject Scope = "project" // a project's or workspace's file
	ScopePath    Scope = "path"    // a file named by path
)

// Target is a client plus one concrete config file. The client row decides
// the root key and entry shapes.
type Target struct {
	Client Client
	// Path is the file (it need not exist yet).
	Path  string
	Scope Scope
	// Variant is the install variant of a user-scope file ("insiders"), ""
	// for the main one.
	Variant string
	// Label describes the location ("MSIX install", "Insiders").
	Label string
}

// String names the target for people: "Cursor (user) ~/.cursor/mcp.json".
func (t Target) String() string {
	name := t.Client.Name
	if t.Label != "" {
		name += " " + t.Label
	}
	return fmt.Sprintf("%s (%s) %s", name, t.Scope, t.Path)
}

// UserTargets returns every user-scope file of the client on env: the main
// one first (even if it does not exist yet), then one per other install
// variant that is present.
func (c Client) UserTargets(env Env) []Target {
	var out []Target
	seen := map[string]bool{}
	for _, l := range c.Locations {
		if seen[l.Variant] {
			continue
		}
		paths := l.resolve(env)
		if len(paths) == 0 {
			continue
		}
		seen[l.Variant] = true
		out = append(out, Target{Client: c, Path: paths[0], Scope: ScopeUser, Variant: l.Variant, Label: l.Label})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Variant == "" && out[j].Variant != "" })
	return out
}

// AllUserTargets returns the user-scope targets of every client on env
// (main files first within each client, then install variants present).
func AllUserTargets(env Env) []Target {
	var out []Target
	for _, c := range clientTable {
		out = append(out, c.UserTargets(env)...)
	}
	return out
}

// UserTarget returns the client's main user-scope file on env.
func (c Client) UserTarget(env Env) (Target, error) {
	for _, t := range c.UserTargets(env) {
		if t.Variant == "" {
			return t, nil
		}
	}
	return Target{}, fmt.Errorf("%s has no known config file on %s; pass --client-config=PATH", c.Name, env.GOOS)
}

// Detected reports whether the client seems installed on env: one of its
// user-scope files exists, or its DetectDirs (by default the directory of
// its main user-scope file) does.
func (c Client) Detected(env Env) bool {
	ts := c.UserTargets(env)
	for _, t := range ts {
		if env.exists(t.Path) {
			return true
		}
	}
	if len(c.DetectDirs) == 0 {
		if len(ts) == 0 {
			return false
		}
		p := ts[0].Path
		dir := p[:max(strings.LastIndexAny(p, `/\`), 0)]
		return dir != "" && dir != env.Home && env.exists(dir)
	}
	for _, tmpl := range c.DetectDirs {
		for _, p := range env.expand(tmpl) {
			if env.exists(p) {
				return true
			}
		}
	}
	return false
}

// ProjectTarget returns the client's config file inside project directory
// dir.
func (c Client) ProjectTarget(dir string) (Target, error) {
	if c.ProjectFile == "" {
		return Target{}, fmt.Errorf("%s has no project-level MCP config; use its user config or pass a PATH", c.Name)
	}
	return Target{Client: c, Path: filepath.Join(dir, filepath.FromSlash(c.ProjectFile)), Scope: ScopeProject}, nil
}

// ClientForPath picks the client format a file at p follows: a path inside a
// ".vscode" directory is VS Code's ("servers"); a known client file name
// (claude_desktop_config.json, .cursor/mcp.json, .claude.json, .mcp.json,
// windsurf/mcp_config.json, .gemini/settings.json) is that client's; any
// other path gets the generic "mcpServers" format.
func ClientForPath(p string) Client {
	parts := strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' })
	has := func(dir string) bool {
		for _, x := range parts[:max(len(parts)-1, 0)] {
			if x == dir {
				return true
			}
		}
		return false
	}
	base := ""
	if len(parts) > 0 {
		base = parts[len(parts)-1]
	}
	parent := ""
	if len(parts) > 1 {
		parent = parts[len(parts)-2]
	}
	pick := func(id string) Client { c, _ := Lookup(id); return c }
	switch {
	case has(".vscode") || (base == "mcp.json" && (parent == "User" || (len(parts) > 2 && parts[len(parts)-3] == "profiles"))):
		return pick("vscode")
	case base == "claude_desktop_config.json":
		return pick("claude")
	case base == "mcp.json" && parent == ".cursor":
		return pick("cursor")
	case base == ".claude.json" || base == ".mcp.json":
		return pick("claude-code")
	case base == "mcp_config.json" && parent == "windsurf":
		return pick("windsurf")
	case base == "settings.json" && parent == ".gemini":
		return pick("gemini")
	}
	return genericClient
}

// PathTarget returns a Target for an explicit file; its format follows the
// path (see ClientForPath).
func PathTarget(p string) Target {
	return Target{Client: ClientForPath(p), Path: p, Scope: ScopePath}
}

// ErrUnknownClient is returned by ParseClientConfig for a value that is
// neither a client ID nor a path.
var ErrUnknownClient = errors.New("unknown client")

// ParseClientConfig turns a --client-config value into a Target: a client ID
// (claude, cursor, claude-code, vscode, vscode-insiders, windsurf, gemini)
// means that client's user-scope file on env; anything containing a path
// separator or ending in ".json" is a file path (relative paths are taken
// from cwd) whose format follows the path.
func ParseClientConfig(value string, env Env, cwd string) (Target, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return Target{}, fmt.Errorf("--client-config is empty: use one of %s, or a file path", strings.Join(ClientIDs(), ", "))
	}
	if strings.ContainsAny(v, `/\`) || strings.HasSuffix(strings.ToLower(v), ".json") || strings.HasSuffix(strings.ToLower(v), ".jsonc") || v == "~" {
		p := v
		if strings.HasPrefix(p, "~/") || strings.HasPrefix(p, `~\`) {
			p = filepath.Join(env.Home, p[2:])
		}
		if !filepath.IsAbs(p) && !env.isAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return Target{}, fmt.Errorf("--client-config=%s is a directory: name the config file itself (e.g. %s)", value, filepath.Join(p, "mcp.json"))
		}
		return PathTarget(p), nil
	}
	variant := ""
	id := v
	if strings.EqualFold(v, "vscode-insiders") || strings.EqualFold(v, "code-insiders") {
		id, variant = "vscode", "insiders"
	}
	c, ok := Lookup(id)
	if !ok {
		return Target{}, fmt.Errorf("%w %q: use one of %s, vscode-insiders, or a file path", ErrUnknownClient, value, strings.Join(ClientIDs(), ", "))
	}
	if variant == "" {
		return c.UserTarget(env)
	}
	// An explicitly requested variant is returned even if it is not
	// installed yet.
	for _, l := range c.Locations {
		if l.Variant != variant || !l.forOS(env.GOOS) {
			continue
		}
		if paths := env.expand(l.Path); len(paths) > 0 {
			return Target{Client: c, Path: paths[0], Scope: ScopeUser, Variant: variant, Label: l.Label}, nil
		}
	}
	return Target{}, fmt.Errorf("%s %s has no known config file on %s; pass --client-config=PATH", c.Name, variant, env.GOOS)
}
