package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Config configures one profile endpoint.
type Config struct {
	// Name is the profile's name, in messages, logs and the serverInfo
	// clients see ("keyport-profile-NAME").
	Name string
	// Port is the local port; 0 picks a free one.
	Port int
	// Members are the profile's servers, in the profile's order (which
	// decides who keeps a colliding name: nobody, both get prefixed).
	Members []Member
	// PrefixAlways prefixes every tool, prompt and resource template name
	// with SERVER_ (renamed tools keep their new name); otherwise names are
	// prefixed only when they collide.
	PrefixAlways bool
	// ListTimeout bounds how long a list request waits for each member
	// (default 3 s): a member slower than that drops out of the answer.
	ListTimeout time.Duration
	// ConnectTimeout bounds how long a new client session waits for its
	// member sessions before answering initialize (default 5 s); members
	// that take longer join later, with list_changed.
	ConnectTimeout time.Duration
	// HTTPClient reaches the members' proxies; nil means a tuned client
	// for loopback.
	HTTPClient *http.Client
	// Logger receives the gateway's logs (default slog.Default()).
	Logger *slog.Logger
	// OnChange, if set, is called (on a goroutine of the gateway) when a
	// member came, went or changed its lists, so an app can show Status.
	OnChange func()
}

// Member is one server of a profile.
type Member struct {
	// Server is the server's name: the prefix of its colliding names and
	// what errors name.
	Server string
	// URL is the MCP endpoint of the server's Keyport proxy
	// (http://127.0.0.1:PORT/mcp). Nothing else: the gateway holds no
	// credentials.
	URL string
	// Tools narrows the member to these tools (the server's own names);
	// nil serves every tool the server's proxy lists.
	Tools []string
	// Overrides rename tools and replace their descriptions, by the
	// server's own tool name.
	Overrides map[string]Override
}

// Override is what a profile changes about one tool.
type Override struct {
	// Name is the name the client sees instead ("" keeps it).
	Name string
	// Description replaces the tool's description ("" keeps it), so the
	// model reads the user's text rather than the server's.
	Description string
}

// Defaults.
const (
	DefaultListTimeout    = 3 * time.Second
	DefaultConnectTimeout = 5 * time.Second
)

// Check validates the configuration and fills defaults; errors name the
// member and field to fix.
func (c *Config) Check() error {
	if c.Name == "" || len(c.Name) > 100 || strings.ContainsFunc(c.Name, unicode.IsControl) {
		return fmt.Errorf("profile name %q: use 1-100 printable characters", c.Name)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("profile %s: port %d: use 1-65535, or 0 for a free port", c.Name, c.Port)
	}
	if len(c.Members) == 0 {
		return fmt.Errorf("profile %s has no server", c.Name)
	}
	var seen []string
	for i, m := range c.Members {
		if m.Server == "" {
			return fmt.Errorf("profile %s: member %d has no server name", c.Name, i)
		}
		if slices.Contains(seen, m.Server) {
			return fmt.Errorf("profile %s: server %s is listed twice", c.Name, m.Server)
		}
		seen = append(seen, m.Server)
		u, err := url.Parse(m.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("profile %s: server %s: endpoint %q is not an http(s) URL", c.Name, m.Server, m.URL)
		}
		for orig, o := range m.Overrides {
			if orig == "" {
				return fmt.Errorf("profile %s: server %s: an override names no tool", c.Name, m.Server)
			}
			if o.Name != "" && !validName(o.Name) {
				return fmt.Errorf("profile %s: server %s: tool %s: new name %q: use 1-128 letters, digits, _ - or .", c.Name, m.Server, orig, o.Name)
			}
		}
	}
	if c.ListTimeout <= 0 {
		c.ListTimeout = DefaultListTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// validName reports whether s is a tool name MCP clients accept (SEP-986:
// 1-128 of A-Z a-z 0-9 _ - .).
func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// ValidToolName reports whether s may be a tool's name in a profile (the
// catalog checks renames with it).
func ValidToolName(s string) bool { return validName(s) }

// errNoMember is returned for names no member owns.
var errNoMember = errors.New("no server of the profile has it")
