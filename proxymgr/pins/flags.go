package pins

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Flag is a marker of tool poisoning found in a definition. Flags never
// block a tool: the review shows them and the audit log records them.
type Flag struct {
	// Kind is one of the Flag* constants.
	Kind string `json:"kind"`
	// Detail says what was found and where, for people.
	Detail string `json:"detail"`
}

func (f Flag) String() string { return f.Kind + ": " + f.Detail }

// Flag kinds.
const (
	// FlagInvisible: invisible or bidirectional-control Unicode, which can
	// hide text from the person reading while the model reads it.
	FlagInvisible = "invisible-text"
	// FlagInstruction: text addressed to the model rather than describing
	// the tool ("ignore previous instructions", <IMPORTANT> tags).
	FlagInstruction = "instruction"
	// FlagSecret: a reference to secrets or dotfiles (~/.ssh/id_rsa, .env,
	// API keys).
	FlagSecret = "secret-reference"
	// FlagShadow: the tool's name is also a tool of another server, so the
	// model may call this one instead.
	FlagShadow = "shadows"
	// FlagUnreadable: the pins could not be read; the tool is held until
	// reviewed.
	FlagUnreadable = "pins-unreadable"
)

// invisible reports runes that render as nothing or reorder text: zero
// width characters and marks (U+200B–U+200F), bidirectional embeddings and
// overrides (U+202A–U+202E) and isolates (U+2066–U+2069), the word joiner
// and invisible operators (U+2060–U+2064), the BOM used as a zero-width
// no-break space (U+FEFF) and the tag characters (U+E0000–U+E007F), which
// spell ASCII no one sees.
func invisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069,
		r >= 0x2060 && r <= 0x2064, r == 0xFEFF, r >= 0xE0000 && r <= 0xE007F:
		return true
	}
	return false
}

// control reports characters a terminal or text view acts on instead of
// showing: C0 controls but tab and line feed (a carriage return lets text
// overwrite its line; ESC starts cursor moves, erasures and clipboard
// writes), DEL, C1 controls and the Unicode line and paragraph separators.
func control(r rune) bool {
	return r < 0x20 && r != '\t' && r != '\n' || r >= 0x7f && r <= 0x9f || r == 0x2028 || r == 0x2029
}

// Printable returns s with every character a person would not see as
// itself written as an escape (\u001b, \u202e, \U000e0041): control
// characters (see control; tab and line feed stay) and the invisible and
// bidirectional-control runes Inspect flags; a byte that is not UTF-8 as
// \xff. The review shows text through it, so what a person reads in the
// app or a terminal is every character the model reads, and no control
// sequence of a server reaches the terminal.
func Printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return control(r) || invisible(r) || r == utf8.RuneError }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case control(r) || invisible(r):
			if r > 0xffff {
				fmt.Fprintf(&b, "\\U%08x", r)
			} else {
				fmt.Fprintf(&b, "\\u%04x", r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// instructionMarkers are phrases addressed to a model, in lower case.
var instructionMarkers = []string{
	"ignore previous", "ignore all previous", "ignore the previous", "ignore prior", "ignore the above", "ignore all prior",
	"disregard previous", "disregard all previous", "disregard the above", "forget previous instructions", "forget all previous",
	"do not tell the user", "don't tell the user", "dont tell the user", "do not inform the user", "without telling the user",
	"do not mention", "don't mention", "never mention", "without informing", "the user must not know", "hide this from the user",
	"not visible to the user", "you must always", "before using this tool", "before calling any other tool",
	"system prompt", "new instructions",
}

// instructionTags are markup that frames text as orders to the model.
var instructionTags = []string{"important", "system", "instructions", "instruction", "secret", "hidden", "admin", "sys", "inst"}

// secretMarkers are references to credentials and private files, in lower case.
var secretMarkers = []string{
	"~/.ssh", ".ssh/", "id_rsa", "id_ed25519", "id_ecdsa", "authorized_keys", "known_hosts",
	"~/.aws/credentials", ".aws/credentials", "~/.aws", ".netrc", ".npmrc", ".pypirc", ".git-credentials", ".docker/config.json",
	".kube/config", ".gnupg", "/etc/passwd", "/etc/shadow", ".env", ".bash_history", ".zsh_history",
	"private key", "private_key", "secret key", "secret_key", "api key", "api_key", "apikey",
	"password", "passwd", "credentials", "access token", "access_token", "refresh token", "refresh_token", "seed phrase", "mnemonic",
}

// Inspect flags the suspicious text of a canonical definition: every
// string in it (keys included, schemas and their descriptions too) is
// checked.
func Inspect(canonical []byte) []Flag {
	var v any
	if err := json.Unmarshal(canonical, &v); err != nil {
		return nil
	}
	var flags []Flag
	seen := map[string]bool{}
	add := func(kind, detail string) {
		if !seen[kind+detail] && len(flags) < 20 {
			seen[kind+detail] = true
			flags = append(flags, Flag{kind, detail})
		}
	}
	walkStrings(v, "", func(where, s string) {
		where = Printable(where)
		var ctl []rune // one flag per control character and place
		for i, r := range s {
			switch {
			case invisible(r):
				add(FlagInvisible, fmt.Sprintf("U+%04X in %s (at byte %d)", r, where, i))
			case control(r) && !(r == '\r' && strings.HasPrefix(s[i+1:], "\n")) && !slices.Contains(ctl, r):
				ctl = append(ctl, r)
				add(FlagInvisible, fmt.Sprintf("control character U+%04X in %s (first at byte %d)", r, where, i))
			}
		}
		if r, _ := utf8.DecodeRuneInString(s); r == utf8.RuneError && len(s) > 0 {
			return
		}
		low := strings.ToLower(s)
		for _, m := range instructionMarkers {
			if strings.Contains(low, m) {
				add(FlagInstruction, fmt.Sprintf("%q in %s", m, where))
			}
		}
		for _, tag := range instructionTags {
			if strings.Contains(low, "<"+tag+">") || strings.Contains(low, "</"+tag+">") || strings.Contains(low, "["+tag+"]") {
				add(FlagInstruction, fmt.Sprintf("<%s> tag in %s", strings.ToUpper(tag), where))
			}
		}
		// One flag per reference: "~/.ssh/id_rsa" matches three markers.
		var refs []string
		for _, m := range secretMarkers {
			for _, ref := range secretRefs(s, low, m) {
				if !slices.Contains(refs, ref) {
					refs = append(refs, ref)
				}
			}
		}
		for _, ref := range refs {
			add(FlagSecret, fmt.Sprintf("%q in %s", ref, where))
		}
	})
	return flags
}

// secretRefs returns, for each place the marker m occurs in s (low is s in
// lower case, the same length for the ASCII markers), the whole reference
// around it: the run of characters between spaces and quotes, without
// trailing punctuation ("~/.ssh/id_rsa", "api_key").
func secretRefs(s, low, m string) []string {
	var out []string
	if len(low) != len(s) {
		s = low // lower-casing changed the length: show the lower-case text
	}
	for off := 0; ; {
		i := strings.Index(low[off:], m)
		if i < 0 {
			return out
		}
		i += off
		off = i + 1
		if !containsWord(low[max(0, i-1):min(len(low), i+len(m)+1)], m) {
			continue
		}
		start, end := i, i+len(m)
		for start > 0 && !strings.ContainsRune(" \t\n\"'`(<>[]{},;", rune(s[start-1])) {
			start--
		}
		for end < len(s) && !strings.ContainsRune(" \t\n\"'`)<>[]{},;", rune(s[end])) {
			end++
		}
		ref := strings.TrimRight(s[start:end], ".:!?")
		if len(ref) > 60 {
			ref = ref[:60] + "…"
		}
		out = append(out, ref)
	}
}

// containsWord reports whether s contains m not glued to letters around it
// (".env" is flagged, "environment" and ".envelope" are not).
func containsWord(s, m string) bool {
	for off := 0; ; {
		i := strings.Index(s[off:], m)
		if i < 0 {
			return false
		}
		i += off
		before, after := i == 0, i+len(m) >= len(s)
		if !before {
			r, _ := utf8.DecodeLastRuneInString(s[:i])
			before = !isWordRune(r) || !isWordRune(rune(m[0]))
		}
		if !after {
			r, _ := utf8.DecodeRuneInString(s[i+len(m):])
			after = !isWordRune(r) || !isWordRune(rune(m[len(m)-1]))
		}
		if before && after {
			return true
		}
		off = i + 1
	}
}

func isWordRune(r rune) bool {
	return r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// walkStrings calls f for every string and object key in v, with a path
// saying where it is (description, inputSchema.properties.path...).
func walkStrings(v any, path string, f func(where, s string)) {
	name := path
	if name == "" {
		name = "the definition"
	}
	switch x := v.(type) {
	case string:
		f(name, x)
	case []any:
		for i, e := range x {
			walkStrings(e, fmt.Sprintf("%s[%d]", path, i), f)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			f("key "+p, k)
			walkStrings(x[k], p, f)
		}
	}
}

// Shadowing flags a tool name that is also a tool of other servers
// (others maps a server to its tool names).
func Shadowing(name string, others map[string][]string) []Flag {
	var servers []string
	for srv, names := range others {
		if slices.Contains(names, name) {
			servers = append(servers, srv)
		}
	}
	slices.Sort(servers)
	var flags []Flag
	for _, srv := range servers {
		flags = append(flags, Flag{FlagShadow, fmt.Sprintf("server %s also has a tool named %q", srv, name)})
	}
	return flags
}
