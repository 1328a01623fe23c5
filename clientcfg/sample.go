package clientcfg

import (
	"fmt"
	"strings"
)

// JSONFormat is how Keyport lays out the JSON it writes (--json-format).
type JSONFormat string

// JSON formats.
const (
	// FormatAuto matches the file: a new entry follows its neighbours, a
	// replaced entry keeps its one-line or multi-line form. Samples are
	// pretty.
	FormatAuto JSONFormat = "auto"
	// FormatPretty writes Keyport's entries indented over several lines.
	FormatPretty JSONFormat = "pretty"
	// FormatCompact writes Keyport's entries on one line.
	FormatCompact JSONFormat = "compact"
)

// ParseJSONFormat parses a --json-format value; "" means auto.
func ParseJSONFormat(s string) (JSONFormat, error) {
	switch JSONFormat(strings.ToLower(strings.TrimSpace(s))) {
	case "", FormatAuto:
		return FormatAuto, nil
	case FormatPretty:
		return FormatPretty, nil
	case FormatCompact:
		return FormatCompact, nil
	}
	return "", fmt.Errorf("--json-format=%s: use pretty, compact or auto", s)
}

// RenderSample returns the JSON block a user can paste into client c's
// config: {"<root key>": {"keyport-NAME": {...}, ...}}, one entry per want in
// c's shape. Auto is pretty. It is what `keyport config` prints when no
// client is given.
func RenderSample(c Client, wants []Want, f JSONFormat) ([]byte, error) {
	if c.RootKey == "" {
		c = genericClient
	}
	servers := make(object, 0, len(wants))
	seen := map[string]bool{}
	for _, w := range wants {
		if seen[w.Server] {
			return nil, fmt.Errorf("server %q is listed twice", w.Server)
		}
		seen[w.Server] = true
		e, err := c.entryFor(w)
		if err != nil {
			return nil, err
		}
		servers = append(servers, field{key: w.Key(), val: e})
	}
	st := style{nl: "\n", unit: "  ", colon: ": ", format: f}
	if f == FormatCompact {
		st.colon = ":"
	}
	return freshDoc(c.RootKey, servers, st), nil
}

// SampleClient is the format RenderSample uses when no client is named:
// "mcpServers" with {"type": "http", "url"} entries, which Claude Code,
// Cursor and VS Code's .mcp.json understand.
func SampleClient() Client { return genericClient }
