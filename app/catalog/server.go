package catalog

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"keyport/app/secrets"
)

// Server is one MCP server of the catalog: one entry of servers.yaml.
type Server struct {
	// Name identifies the server (unique; lowercase letters, digits, dashes).
	Name string `yaml:"name"`
	// Description is shown in `keyport ls` and the app.
	Description string `yaml:"description,omitempty"`
	// URL is the server's streamable-HTTP endpoint: https, or http for a
	// loopback host (or any host with Insecure).
	URL string `yaml:"url"`
	// Insecure allows plain http to a non-loopback host. It does not turn
	// off TLS verification.
	Insecure bool `yaml:"insecure,omitempty"`
	// Labels are free key/value tags (`keyport ls --labels k=v`).
	Labels map[string]string `yaml:"labels,omitempty"`
	// Headers are non-secret headers sent to the server.
	Headers map[string]string `yaml:"headers,omitempty"`
	// Auth says how the proxy authenticates to the server.
	Auth Auth `yaml:"auth,omitempty"`
	// Tools is the tool policy the proxy enforces.
	Tools Tools `yaml:"tools,omitempty"`
	// Audit configures the audit log.
	Audit Audit `yaml:"audit,omitempty"`
	// TLS configures the connection to the server.
	TLS TLS `yaml:"tls,omitempty"`
	// Source records where an imported server came from.
	Source *Source `yaml:"source,omitempty"`
	// Managed says which of its values the organization's managed file
	// sets (nil: none); never read from or written to servers.yaml.
	Managed *ManagedInfo `yaml:"-"`
}

// AuthType is how the proxy authenticates to a server.
type AuthType string

// Auth types.
const (
	AuthNone    AuthType = "none"    // nothing is injected
	AuthBearer  AuthType = "bearer"  // Authorization: Bearer <keychain "bearer">
	AuthHeaders AuthType = "headers" // each secret header from the keychain
	AuthOAuth   AuthType = "oauth"   // OAuth 2.1 sign-in; tokens in the keychain
)

// Auth configures the credentials the proxy injects. The values themselves
// live in the OS keychain, never in servers.yaml.
type Auth struct {
	// Type defaults to "headers" when SecretHeaders is set, else "none".
	Type AuthType `yaml:"type,omitempty"`
	// SecretHeaders are headers whose values are in the keychain
	// (kind "header/<Name>"). Allowed with every type but none.
	SecretHeaders []string `yaml:"secret_headers,omitempty"`
	// ClientID is a pre-registered OAuth client (oauth only; optional).
	ClientID string `yaml:"client_id,omitempty"`
	// Scopes to request (oauth only; optional).
	Scopes []string `yaml:"scopes,omitempty"`
	// CallbackPort fixes the loopback port of the OAuth redirect (oauth
	// only; 0 picks a free one).
	CallbackPort int `yaml:"callback_port,omitempty"`
}

// Tools is a tool policy: patterns are literal names, globs (`get_*`), or
// regular expressions written `^...$`. An empty Allow allows every tool;
// Deny wins over Allow.
type Tools struct {
	Allow []string `yaml:"allow,omitempty"`
	Deny  []string `yaml:"deny,omitempty"`
}

// AuditParams says how much of a request's parameters the audit log keeps.
type AuditParams string

// Audit parameter modes.
const (
	AuditNone     AuditParams = "none"     // no parameters
	AuditRedacted AuditParams = "redacted" // parameters with secrets redacted (default)
	AuditFull     AuditParams = "full"     // everything, as sent
)

// Audit configures the audit log of a server's proxy.
type Audit struct {
	Params AuditParams `yaml:"params,omitempty"`
}

// TLS configures how the proxy verifies the server.
type TLS struct {
	// CAFile is a PEM bundle of extra trusted CAs: an absolute path, or
	// one starting with ~/.
	CAFile string `yaml:"ca_file,omitempty"`
}

// Source records the registry entry a server was imported from.
type Source struct {
	Registry string `yaml:"registry"`          // registry base URL
	Name     string `yaml:"name"`              // reverse-DNS name in the registry
	Version  string `yaml:"version,omitempty"` // version imported
}

// FieldError is a problem with one field of a server. Field is a path like
// "url", "auth.secret_headers[1]" or "labels.team".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// FieldErrors are all the problems Check found, in field order.
type FieldErrors []*FieldError

func (e FieldErrors) Error() string {
	msgs := make([]string, len(e))
	for i, fe := range e {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "; ")
}

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	labelKeyRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$`)
	// headerRE is an HTTP token (RFC 9110 5.1).
	headerRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// reservedHeaders are set by the proxy or the MCP transport; a server entry
// may not set them.
var reservedHeaders = []string{
	"Accept", "Connection", "Content-Length", "Content-Type", "Host", "Keep-Alive",
	"Last-Event-Id", "Mcp-Method", "Mcp-Name", "Mcp-Protocol-Version", "Mcp-Session-Id",
	"Proxy-Authorization", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// CheckName validates a server name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		if name == "" {
			return errors.New("missing; give the server a name")
		}
		return fmt.Errorf("%q is not a valid name: use 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit", name)
	}
	return nil
}

// Check validates the server and fills defaults (auth.type, audit.params).
// It returns FieldErrors naming every bad field. Error texts never quote a
// URL or header value (they may hold a secret pasted by mistake).
func (s *Server) Check() error {
	s.normalize()
	var errs FieldErrors
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	s.Name = strings.TrimSpace(s.Name)
	if err := CheckName(s.Name); err != nil {
		add("name", "%v", err)
	}
	if len(s.Description) > 2000 {
		add("description", "too long (%d characters; at most 2000)", len(s.Description))
	}
	if msg := checkURL(s.URL, s.Insecure); msg != "" {
		add("url", "%s", msg)
	}
	for _, k := range sortedKeys(s.Labels) {
		v := s.Labels[k]
		switch {
		case !labelKeyRE.MatchString(k):
			add("labels."+k, "%q is not a valid label key: use letters, digits and . _ / - (at most 63)", k)
		case len(v) > 256:
			add("labels."+k, "value too long (%d characters; at most 256)", len(v))
		case strings.ContainsAny(v, ",\r\n"):
			add("labels."+k, "value must not contain a comma or a line break")
		}
	}
	seenHeader := map[string]string{}
	for _, k := range sortedKeys(s.Headers) {
		if msg := checkHeaderName(k); msg != "" {
			add("headers."+k, "%s", msg)
			continue
		}
		if prev, dup := seenHeader[canonical(k)]; dup {
			add("headers."+k, "same header as %q (header names ignore case)", prev)
			continue
		}
		seenHeader[canonical(k)] = k
		v := s.Headers[k]
		switch ck := canonical(k); {
		case ck == "Authorization" || ck == "Cookie":
			add("headers."+k, "is a credential: use auth (type: bearer, or list it in auth.secret_headers) so its value stays in the OS keychain")
		case strings.ContainsAny(v, "\r\n\x00"):
			add("headers."+k, "value must not contain a line break or NUL")
		case len(v) > 8192:
			add("headers."+k, "value too long (%d bytes; at most 8192)", len(v))
		case looksLikeCredential(v):
			add("headers."+k, "value looks like a credential: list the header in auth.secret_headers so its value stays in the OS keychain")
		}
	}
	s.checkAuth(add)
	for i, p := range s.Tools.Allow {
		if err := CheckToolPattern(p); err != nil {
			add(fmt.Sprintf("tools.allow[%d]", i), "%v", err)
		}
	}
	for i, p := range s.Tools.Deny {
		if err := CheckToolPattern(p); err != nil {
			add(fmt.Sprintf("tools.deny[%d]", i), "%v", err)
		}
	}
	switch s.Audit.Params {
	case "":
		s.Audit.Params = AuditRedacted
	case AuditNone, AuditRedacted, AuditFull:
	default:
		add("audit.params", "%q is not one of none, redacted, full", s.Audit.Params)
	}
	if s.TLS.CAFile != "" {
		if msg := checkCAFile(s.TLS.CAFile); msg != "" {
			add("tls.ca_file", "%s", msg)
		}
	}
	if s.Source != nil && (s.Source.Registry == "" || s.Source.Name == "") {
		add("source", "needs registry and name (or remove it)")
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// normalize makes empty maps and lists nil, so equal servers compare equal
// however they were written.
func (s *Server) normalize() {
	if len(s.Labels) == 0 {
		s.Labels = nil
	}
	if len(s.Headers) == 0 {
		s.Headers = nil
	}
	if len(s.Auth.SecretHeaders) == 0 {
		s.Auth.SecretHeaders = nil
	}
	if len(s.Auth.Scopes) == 0 {
		s.Auth.Scopes = nil
	}
	if len(s.Tools.Allow) == 0 {
		s.Tools.Allow = nil
	}
	if len(s.Tools.Deny) == 0 {
		s.Tools.Deny = nil
	}
}

func (s *Server) checkAuth(add func(field, format string, args ...any)) {
	a := &s.Auth
	if a.Type == "" {
		a.Type = AuthNone
		if len(a.SecretHeaders) > 0 {
			a.Type = AuthHeaders
		}
	}
	switch a.Type {
	case AuthNone, AuthBearer, AuthHeaders, AuthOAuth:
	default:
		add("auth.type", "%q is not one of none, bearer, headers, oauth", a.Type)
		return
	}
	if a.Type == AuthNone && len(a.SecretHeaders) > 0 {
		add("auth.secret_headers", "needs auth.type headers, bearer or oauth (it is none)")
	}
	if a.Type == AuthHeaders && len(a.SecretHeaders) == 0 {
		add("auth.secret_headers", "auth.type headers needs at least one secret header (e.g. [X-API-Key])")
	}
	seen := map[string]int{}
	for i, h := range a.SecretHeaders {
		field := fmt.Sprintf("auth.secret_headers[%d]", i)
		ch := canonical(h)
		if msg := checkHeaderName(h); msg != "" {
			add(field, "%s", msg)
		} else if j, dup := seen[ch]; dup {
			add(field, "%q is listed twice (also at [%d])", h, j)
		} else if _, plain := findHeader(s.Headers, h); plain {
			add(field, "%q is also in headers: a header is either secret (keychain) or not (servers.yaml)", h)
		} else if ch == "Authorization" && (a.Type == AuthBearer || a.Type == AuthOAuth) {
			add(field, "auth.type %s already sets Authorization", a.Type)
		}
		seen[ch] = i
	}
	if a.Type != AuthOAuth {
		if a.ClientID != "" {
			add("auth.client_id", "only for auth.type oauth")
		}
		if len(a.Scopes) > 0 {
			add("auth.scopes", "only for auth.type oauth")
		}
		if a.CallbackPort != 0 {
			add("auth.callback_port", "only for auth.type oauth")
		}
		return
	}
	if strings.TrimSpace(a.ClientID) != a.ClientID || strings.IndexFunc(a.ClientID, unicode.IsControl) >= 0 {
		add("auth.client_id", "must not have surrounding spaces or control characters")
	}
	for i, sc := range a.Scopes {
		if sc == "" || strings.IndexFunc(sc, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r > '~' }) >= 0 {
			add(fmt.Sprintf("auth.scopes[%d]", i), "%q is not a valid OAuth scope (no spaces or quotes)", sc)
		}
	}
	if a.CallbackPort != 0 && (a.CallbackPort < 1024 || a.CallbackPort > 65535) {
		add("auth.callback_port", "%d is not a usable port (1024-65535, or 0 for any)", a.CallbackPort)
	}
}

// SecretKinds are the keychain kinds this server's credentials use (for
// app/secrets: "bearer", "header/X-Api-Key"...). OAuth kinds are app/oauth's.
func (s *Server) SecretKinds() []string {
	var kinds []string
	if s.Auth.Type == AuthBearer {
		kinds = append(kinds, secrets.KindBearer)
	}
	for _, h := range s.Auth.SecretHeaders {
		kinds = append(kinds, secrets.HeaderKind(h))
	}
	return kinds
}

// CAFilePath is TLS.CAFile with a leading ~/ expanded ("" when unset).
func (s *Server) CAFilePath() (string, error) { return expandHome(s.TLS.CAFile) }

// Loopback reports whether the URL's host is a loopback name or address.
func (s *Server) Loopback() bool {
	u, err := url.Parse(s.URL)
	return err == nil && isLoopback(u.Hostname())
}

func checkURL(raw string, insecure bool) string {
	if raw == "" {
		return "missing; give the server's streamable-HTTP endpoint, e.g. https://mcp.example.com/mcp"
	}
	if strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "must not contain spaces or control characters"
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL; say what is wrong without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("not a valid URL: %v", err)
	}
	if u.User != nil {
		return "must not contain a user name or password: use auth (secrets go in the OS keychain)"
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !insecure && !isLoopback(u.Hostname()) {
			return "plain http is allowed only for localhost; use https (or set insecure: true if you really mean it)"
		}
	case "":
		return "needs a scheme: https://..."
	default:
		return fmt.Sprintf("scheme %q is not supported: use https (streamable HTTP)", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return "needs a host: https://host/path"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("port %q is not valid (1-65535)", p)
		}
	}
	if u.Fragment != "" || strings.HasSuffix(raw, "#") {
		return "must not have a #fragment"
	}
	return ""
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkHeaderName(h string) string {
	if !headerRE.MatchString(h) {
		return fmt.Sprintf("%q is not a valid header name", h)
	}
	if slices.Contains(reservedHeaders, canonical(h)) {
		return fmt.Sprintf("%q is set by Keyport or the MCP transport and cannot be configured", h)
	}
	return ""
}

// looksLikeCredential catches a credential pasted into plain headers.
func looksLikeCredential(v string) bool {
	l := strings.ToLower(strings.TrimSpace(v))
	return strings.HasPrefix(l, "bearer ") || strings.HasPrefix(l, "basic ")
}

func checkCAFile(p string) string {
	if !filepath.IsAbs(p) && !strings.HasPrefix(p, "~/") {
		return "must be an absolute path (or start with ~/)"
	}
	path, err := expandHome(p)
	if err != nil {
		return err.Error()
	}
	b, err := readSmallFile(path, 4<<20)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Sprintf("cannot read %s: %v", p, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Sprintf("%s holds no PEM certificate", p)
	}
	return ""
}

// readSmallFile reads a regular file of at most limit bytes (never a
// device or a FIFO that would block or never end).
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

func expandHome(p string) (string, error) {
	rest, ok := strings.CutPrefix(p, "~/")
	if !ok {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot expand ~: %v", err)
	}
	return filepath.Join(home, rest), nil
}

func canonical(h string) string { return textproto.CanonicalMIMEHeaderKey(h) }

// findHeader looks a header up case-insensitively.
func findHeader(m map[string]string, name string) (string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
