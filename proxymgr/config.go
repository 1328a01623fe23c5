package proxymgr

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"unicode"

	"keyport/proxymgr/audit"
	"keyport/proxymgr/policy"
)

// CredentialsFunc returns the headers to inject into one upstream request
// (an Authorization bearer token, API-key headers...). It is called for every
// request, so it can refresh tokens. An error means there is no usable
// credential: the client gets 503 and a JSON-RPC error whose message is the
// error's text, so it must say what to do and hold no secret (for example
// "sign in to github in Keyport (keyport login github)").
type CredentialsFunc func(ctx context.Context) (http.Header, error)

// ToolPolicy is the allow and deny patterns of a server's tools (see package
// policy for the syntax).
type ToolPolicy struct {
	Allow, Deny []string
}

// AuditConfig configures a proxy's audit log (see package audit).
type AuditConfig = audit.Config

// AuditParams says how much of request params the audit log keeps.
type AuditParams = audit.ParamsMode

// Audit params modes.
const (
	AuditParamsNone     = audit.ParamsNone
	AuditParamsRedacted = audit.ParamsRedacted
	AuditParamsFull     = audit.ParamsFull
)

// Defaults.
const (
	DefaultMaxBodyBytes    = 4 << 20 // request bodies above this get 413
	DefaultMaxInspectBytes = 8 << 20 // responses and SSE events above this pass uninspected
)

// Config configures one proxy.
type Config struct {
	// Name is the server's name, used in messages, logs and the audit log.
	Name string
	// Upstream is the MCP server's streamable-HTTP URL (https://host/mcp).
	// Clients reach it at http://127.0.0.1:PORT/ and /mcp.
	Upstream string
	// Port is the local port; 0 picks a free one.
	Port int
	// Credentials returns the headers to inject; nil injects none.
	Credentials CredentialsFunc
	// CredentialsRejected, if set, is called when the upstream answers 401
	// (respHeader holds its WWW-Authenticate) to the credentials in sent
	// (the headers Credentials returned), e.g. to refresh a token or sign in
	// again. ErrRetryRequest sends the request once more with new
	// credentials; another error replaces the message the client gets with
	// the 503 ("sign in to NAME in Keyport ..."). It may block (a sign-in in
	// the browser) for as long as the request's context allows.
	CredentialsRejected func(ctx context.Context, respHeader, sent http.Header) error
	// CredentialsForbidden, if set, is called when the upstream answers 403
	// (respHeader holds its WWW-Authenticate, e.g. insufficient_scope).
	// ErrRetryRequest sends the request once more with new credentials
	// (step-up: a sign-in with more scopes); another error turns the answer
	// into a 503 with the error's text; nil passes the 403 through. See
	// Retried for the second answer.
	CredentialsForbidden func(ctx context.Context, respHeader, sent http.Header) error
	// Headers are static, non-secret headers added to every upstream request.
	Headers map[string]string
	// Policy is the tool policy.
	Policy ToolPolicy
	// Pins, if set, holds the tool definitions the user approved: tools
	// whose definitions differ are held (see PinMode and pinning.go).
	Pins Pins
	// Pinning is what happens to tools not approved (default PinHold when
	// Pins is set).
	Pinning PinMode
	// Audit configures the audit log; an empty Audit.File disables it.
	Audit AuditConfig
	// LocalToken, if set, must be sent by clients as
	// "Authorization: Bearer <token>".
	LocalToken string
	// AllowedOrigins are browser origins (scheme://host[:port]) allowed besides
	// loopback ones.
	AllowedOrigins []string
	// MaxBodyBytes limits request bodies (default 4 MiB).
	MaxBodyBytes int64
	// MaxInspectBytes limits how much of a response (or one SSE event) the
	// proxy buffers to inspect (default 8 MiB). Larger ones are streamed
	// through uninspected.
	MaxInspectBytes int64
	// CAFile is a PEM file of extra CA certificates trusted for the upstream.
	CAFile string
	// Logger receives the proxy's logs (default slog.Default()).
	Logger *slog.Logger

	// derived by Check
	upstreamURL *url.URL
	policy      *policy.Policy
	caPool      *x509.CertPool
}

// Check validates the configuration and fills defaults. Errors name the
// field to fix.
func (c *Config) Check() error {
	if err := checkName(c.Name); err != nil {
		return err
	}
	u, err := checkUpstream(c.Upstream)
	if err != nil {
		return fmt.Errorf("server %s: %w", c.Name, err)
	}
	c.upstreamURL = u
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("server %s: port %d: use 1-65535, or 0 for a free port", c.Name, c.Port)
	}
	for k, v := range c.Headers {
		if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) }) {
			return fmt.Errorf("server %s: header name %q is not a valid HTTP header name", c.Name, k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("server %s: header %s: the value must be one line", c.Name, k)
		}
		switch http.CanonicalHeaderKey(k) {
		case "Host", "Content-Length", "Content-Type", "Mcp-Session-Id", "Transfer-Encoding", "Connection":
			return fmt.Errorf("server %s: header %s is managed by the proxy and cannot be configured", c.Name, k)
		}
	}
	if c.policy, err = policy.Compile(c.Policy.Allow, c.Policy.Deny); err != nil {
		return fmt.Errorf("server %s: %w", c.Name, err)
	}
	switch c.Pinning {
	case "":
		c.Pinning = PinHold
		if c.Pins == nil {
			c.Pinning = PinOff
		}
	case PinHold, PinWarn, PinOff:
	default:
		return fmt.Errorf("server %s: tool pinning %q: use hold, warn or off", c.Name, c.Pinning)
	}
	if c.Pinning != PinOff && c.Pins == nil {
		return fmt.Errorf("server %s: tool pinning %s needs a pin store (Config.Pins)", c.Name, c.Pinning)
	}
	if err := c.Audit.Check(); err != nil {
		return fmt.Errorf("server %s: %w", c.Name, err)
	}
	if c.LocalToken != "" && (strings.TrimSpace(c.LocalToken) != c.LocalToken || strings.ContainsAny(c.LocalToken, " \r\n")) {
		return fmt.Errorf("server %s: the local token must not contain spaces or line breaks", c.Name)
	}
	for _, o := range c.AllowedOrigins {
		if _, err := normalizeOrigin(o); err != nil {
			return fmt.Errorf("server %s: allowed origin %q: %w", c.Name, o, err)
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("server %s: max body size %d bytes is too small; use at least 1024", c.Name, c.MaxBodyBytes)
	}
	if c.MaxInspectBytes == 0 {
		c.MaxInspectBytes = DefaultMaxInspectBytes
	}
	if c.MaxInspectBytes < 64<<10 {
		return fmt.Errorf("server %s: max inspect size %d bytes is too small; use at least 65536", c.Name, c.MaxInspectBytes)
	}
	c.caPool = nil
	if c.CAFile != "" {
		if c.caPool, err = CAPool(c.CAFile); err != nil {
			return fmt.Errorf("server %s: %w", c.Name, err)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("proxy: the server name is empty")
	case len(name) > 200:
		return fmt.Errorf("proxy: server name %.20q... is longer than 200 bytes", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("proxy: server name %q contains control characters", name)
	}
	return nil
}

func checkUpstream(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("no upstream URL; give the server's streamable-HTTP URL, e.g. https://example.com/mcp")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("upstream URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("upstream URL %q: the scheme must be https or http", redactURL(u))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("upstream URL %q has no host", redactURL(u))
	}
	if u.User != nil {
		return nil, fmt.Errorf("upstream URL %q holds a user name or password; store credentials in Keyport instead", redactURL(u))
	}
	u.Fragment, u.RawFragment = "", ""
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

// redactURL is u without user info and with query values hidden: upstream
// URLs may carry API keys and appear in logs, errors and the UI.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// normalizeOrigin validates an Origin value and returns it in lower case.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", errors.New("an origin is scheme://host[:port], e.g. https://app.example.com")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// CAPool is the system's trusted roots plus the PEM certificates in file:
// what a proxy (and anything else talking to the same upstream) trusts
// when a server has tls.ca_file.
func CAPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
