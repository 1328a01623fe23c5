package clientcfg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"
)

// Want is what Keyport wants in a client config for one server. The client
// row decides which shape is written: remote-capable clients get URL and
// Headers, Claude Desktop (stdio only) gets Command, Args and Env.
type Want struct {
	// Server is the catalog name; the entry key is "keyport-" + Server.
	Server string
	// URL is the local proxy URL, e.g. http://127.0.0.1:PORT/mcp.
	URL string
	// Headers are sent by remote-capable clients (e.g. a local-token
	// Authorization header). Optional.
	Headers map[string]string
	// Command is the absolute path of the keyport binary, for stdio entries.
	Command string
	// Args are the stdio arguments, e.g. ["connect", NAME].
	Args []string
	// Env is passed to the stdio command. Optional.
	Env map[string]string
}

// Key returns the config key of the entry: "keyport-" + Server.
func (w Want) Key() string { return EntryKey(w.Server) }

// check validates a Want before anything is computed from it.
func (w Want) check() error {
	if err := checkServerName(w.Server); err != nil {
		return err
	}
	for _, s := range append([]string{w.URL, w.Command}, w.Args...) {
		if !utf8.ValidString(s) {
			return fmt.Errorf("server %q: URL, command and args must be valid UTF-8", w.Server)
		}
	}
	for _, m := range []map[string]string{w.Headers, w.Env} {
		for k, v := range m {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return fmt.Errorf("server %q: header and env names and values must be valid UTF-8", w.Server)
			}
		}
	}
	if w.URL == "" && w.Command == "" {
		return fmt.Errorf("server %q: neither a URL nor a command to write", w.Server)
	}
	if w.URL != "" {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("server %q: URL %q is not an http(s) URL", w.Server, redactURL(w.URL))
		}
	}
	if w.Command != "" && !isAbsAny(w.Command) {
		return fmt.Errorf("server %q: command %q must be an absolute path (GUI clients have no shell PATH)", w.Server, w.Command)
	}
	for k, v := range w.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n\t") {
			return fmt.Errorf("server %q: header name %q is not valid", w.Server, k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("server %q: header %s has a line break in its value", w.Server, k)
		}
	}
	for k := range w.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("server %q: environment variable name %q is not valid", w.Server, k)
		}
	}
	return nil
}

func checkServerName(s string) error {
	if s == "" {
		return fmt.Errorf("server name is empty")
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return fmt.Errorf("server name %q: use only letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

func isAbsAny(p string) bool { return strings.HasPrefix(p, "/") || isWindowsAbs(p) }

// field, object and rawJSON form an ordered JSON value Keyport renders.
type field struct {
	key string
	val any // string, []string, object or rawJSON
	// rawKey, when set, is the key's JSON string literal as it was in the
	// file (kept verbatim, e.g. with its escapes).
	rawKey string
}

type object []field

// rawJSON is a standard JSON value kept from the file (compact).
type rawJSON []byte

func (o object) get(k string) (any, bool) {
	for _, f := range o {
		if f.key == k {
			return f.val, true
		}
	}
	return nil, false
}

func sortedFields(m map[string]string) object {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	o := make(object, 0, len(keys))
	for _, k := range keys {
		o = append(o, field{key: k, val: m[k]})
	}
	return o
}

// remote reports whether the client gets the remote shape for w.
func (c Client) remote(w Want) bool { return c.URLKey != "" && w.URL != "" }

// entryFor renders the entry the client should have for w.
func (c Client) entryFor(w Want) (object, error) {
	if err := w.check(); err != nil {
		return nil, err
	}
	var o object
	if c.remote(w) {
		if c.HTTPType != "" {
			o = append(o, field{key: "type", val: c.HTTPType})
		}
		o = append(o, field{key: c.URLKey, val: w.URL})
		if len(w.Headers) > 0 {
			o = append(o, field{key: "headers", val: sortedFields(w.Headers)})
		}
		return o, nil
	}
	if w.Command == "" {
		return nil, fmt.Errorf("server %q: %s cannot reach a URL directly; it needs the stdio bridge: set Want.Command to the absolute path of keyport (and Args to [\"connect\", %q])", w.Server, c.Name, w.Server)
	}
	if c.StdioType != "" {
		o = append(o, field{key: "type", val: c.StdioType})
	}
	o = append(o, field{key: "command", val: w.Command})
	args := w.Args
	if args == nil {
		args = []string{}
	}
	o = append(o, field{key: "args", val: args})
	if len(w.Env) > 0 {
		o = append(o, field{key: "env", val: sortedFields(w.Env)})
	}
	return o, nil
}

// managedKeys are the keys of an entry Keyport owns; any other key a user
// added to a Keyport entry ("disabled", "timeout"...) is kept.
var managedKeys = map[string]bool{
	"type": true, "url": true, "serverUrl": true, "httpUrl": true,
	"headers": true, "command": true, "args": true, "env": true,
}

// toPlain converts a rendered value to what encoding/json decodes, so it can
// be compared with a value read from a file.
func toPlain(v any) any {
	switch x := v.(type) {
	case string:
		return x
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case object:
		m := make(map[string]any, len(x))
		for _, f := range x {
			k := f.key
			if f.rawKey != "" {
				_ = decodeJSON([]byte(f.rawKey), &k)
			}
			m[k] = toPlain(f.val)
		}
		return m
	case rawJSON:
		var out any
		_ = decodeJSON(x, &out)
		return out
	}
	return v
}

func decodeJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// isKeyportEntry reports whether a decoded entry points at Keyport: a stdio
// command whose program is keyport (or keyport.exe) run with "connect", or a
// remote URL on a loopback host.
func isKeyportEntry(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if cmd, ok := m["command"].(string); ok {
		args, _ := m["args"].([]any)
		first := ""
		if len(args) > 0 {
			first, _ = args[0].(string)
		}
		return programName(cmd) == "keyport" && first == "connect"
	}
	for _, k := range []string{"url", "serverUrl", "httpUrl"} {
		if s, ok := m[k].(string); ok {
			return isLoopbackURL(s)
		}
	}
	return false
}

// programName is the base name of a command without directory and a
// Windows .exe suffix, lower-cased.
func programName(cmd string) string {
	if i := strings.LastIndexAny(cmd, `/\`); i >= 0 {
		cmd = cmd[i+1:]
	}
	cmd = strings.ToLower(cmd)
	return strings.TrimSuffix(cmd, ".exe")
}

func isLoopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	h := u.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// redactURL drops user info, query and fragment, which may carry secrets.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return u.String()
}

// describeForeign says briefly what a foreign entry is, without values that
// may be secret.
func describeForeign(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return "it is not an object"
	}
	if cmd, ok := m["command"].(string); ok {
		return fmt.Sprintf("it runs %s", programName(cmd))
	}
	for _, k := range []string{"url", "serverUrl", "httpUrl"} {
		if s, ok := m[k].(string); ok {
			if u, err := url.Parse(s); err == nil && u.Host != "" {
				return "it points at " + u.Host
			}
			return "its " + k + " is not a loopback URL"
		}
	}
	return "it has neither a command nor a URL"
}

// entryDiffs lists how an existing Keyport entry differs from the wanted
// one, in words that never include header or environment values. Empty
// means the entry is up to date. Keys Keyport does not manage are ignored.
func entryDiffs(c Client, have map[string]any, want object) []string {
	var d []string
	wantPlain := toPlain(want).(map[string]any)
	for _, f := range want {
		hv, ok := have[f.key]
		wv := wantPlain[f.key]
		switch f.key {
		case "headers", "env":
			what := "header"
			if f.key == "env" {
				what = "env"
			}
			d = append(d, mapDiffs(what, hv, wv.(map[string]any))...)
			continue
		}
		if !ok {
			d = append(d, fmt.Sprintf("%s is missing", f.key))
			continue
		}
		if reflect.DeepEqual(hv, wv) {
			continue
		}
		switch f.key {
		case "url", "serverUrl", "httpUrl":
			hs, _ := hv.(string)
			d = append(d, fmt.Sprintf("%s is %s, want %s", f.key, redactURL(hs), redactURL(wv.(string))))
		case "command":
			hs, _ := hv.(string)
			d = append(d, fmt.Sprintf("command is %s, want %s", hs, wv))
		case "args":
			d = append(d, fmt.Sprintf("args are %s, want %s", compactJSON(hv), compactJSON(wv)))
		default:
			d = append(d, fmt.Sprintf("%s is %s, want %s", f.key, compactJSON(hv), compactJSON(wv)))
		}
	}
	// Managed keys present but not wanted (e.g. "url" where Windsurf needs
	// "serverUrl", or a leftover "command" after switching to a URL).
	var extra []string
	for k := range have {
		if _, ok := wantPlain[k]; managedKeys[k] && !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		if k == "headers" || k == "env" {
			if m, ok := have[k].(map[string]any); ok && len(m) == 0 {
				continue
			}
		}
		d = append(d, fmt.Sprintf("has %s, which %s entries from Keyport do not use", k, c.Name))
	}
	return d
}

func mapDiffs(what string, have any, want map[string]any) []string {
	hm, _ := have.(map[string]any)
	var d []string
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		hv, ok := hm[k]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("%s %s is missing", what, k))
		case !reflect.DeepEqual(hv, want[k]):
			d = append(d, fmt.Sprintf("%s %s is outdated", what, k))
		}
	}
	var extra []string
	for k := range hm {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		d = append(d, fmt.Sprintf("%s %s is not Keyport's", what, k))
	}
	return d
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// State is the state of one server's entry in a config file.
type State string

// States of an entry.
const (
	// StateOK: the entry is Keyport's and matches what Keyport would write.
	StateOK State = "ok"
	// StateMissing: there is no entry for the server.
	StateMissing State = "missing"
	// StateStale: the entry is Keyport's but differs (port, binary path,
	// local-token header...); Detail says how.
	StateStale State = "stale"
	// StateForeign: the key is taken by an entry Keyport did not write.
	StateForeign State = "foreign"
	// StateOrphan: a Keyport entry for a server Keyport no longer wants.
	StateOrphan State = "orphan"
)

// EntryStatus is the state of one server's entry in one file.
type EntryStatus struct {
	Server string
	Key    string
	State  State
	// Detail says what differs (stale), what the entry is (foreign), or why
	// it is an orphan. It never contains header or environment values.
	Detail string
}
