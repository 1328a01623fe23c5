package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Challenge is what Keyport reads from the Bearer challenge of a 401 or 403
// answer's WWW-Authenticate header (RFC 6750 section 3, RFC 9728 section 5.1).
type Challenge struct {
	// ResourceMetadata is the protected resource metadata URL, if given.
	ResourceMetadata string
	// Scopes are the scopes the server asks for, if given.
	Scopes []string
	// Error is the OAuth error code ("invalid_token", "insufficient_scope").
	Error string
	// ErrorDescription is the server's text, sanitized.
	ErrorDescription string
}

// ParseChallenge reads the WWW-Authenticate headers of h. A missing header
// yields a zero Challenge; a malformed one an error saying so.
func ParseChallenge(h http.Header) (Challenge, error) {
	return parseChallengeValues(h.Values("WWW-Authenticate"))
}

func parseChallengeValues(values []string) (Challenge, error) {
	var c Challenge
	if len(values) == 0 {
		return c, nil
	}
	challenges, err := oauthex.ParseWWWAuthenticate(values)
	if err != nil {
		return c, fmt.Errorf("the server's WWW-Authenticate header is malformed: %v", err)
	}
	// Bearer challenges first; resource_metadata may ride on any scheme.
	slices.SortStableFunc(challenges, func(a, b oauthex.Challenge) int {
		return boolRank(a.Scheme != "bearer") - boolRank(b.Scheme != "bearer")
	})
	for _, ch := range challenges {
		if c.ResourceMetadata == "" {
			c.ResourceMetadata = ch.Params["resource_metadata"]
		}
		if ch.Scheme != "bearer" {
			continue
		}
		if c.Scopes == nil {
			c.Scopes = strings.Fields(ch.Params["scope"])
		}
		if c.Error == "" {
			c.Error = sanitize(ch.Params["error"], 64)
			c.ErrorDescription = sanitize(ch.Params["error_description"], 200)
		}
	}
	return c, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// maxMetadata bounds a metadata document.
const maxMetadata = 1 << 20

// errNoDocument means a metadata URL had no document (4xx, or not JSON):
// the next candidate is tried.
var errNoDocument = errors.New("no metadata document")

// fetchMetadata GETs a JSON metadata document into v. It refuses URLs that
// are neither HTTPS nor loopback.
func fetchMetadata(ctx context.Context, hc *http.Client, rawURL string, v any) error {
	if err := checkHTTPSOrLoopback(rawURL); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("metadata URL %q: %w", rawURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", rawURL, scrubURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		return fmt.Errorf("%s answered %d: %w", rawURL, resp.StatusCode, errNoDocument)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", rawURL, resp.StatusCode)
	}
	if media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); media != "application/json" {
		return fmt.Errorf("%s is not JSON (Content-Type %q): %w", rawURL, sanitize(resp.Header.Get("Content-Type"), 60), errNoDocument)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadata+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", rawURL, err)
	}
	if len(body) > maxMetadata {
		return fmt.Errorf("%s is larger than %d bytes", rawURL, maxMetadata)
	}
	if err := decodeStrict(body, v); err != nil {
		return fmt.Errorf("%s is not valid metadata: %v", rawURL, err)
	}
	return nil
}

// decodeStrict decodes one JSON object (and nothing after it).
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// checkHTTPSOrLoopback refuses a URL that is neither https nor http on a
// loopback host: OAuth endpoints must be HTTPS (MCP authorization,
// "Communication Security"); loopback http is allowed for local servers.
func checkHTTPSOrLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %v", sanitize(raw, 200), err)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("URL %q has no host", sanitize(raw, 200))
		}
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("URL %q is plain http on a non-loopback host; OAuth endpoints must use https", sanitize(raw, 200))
	}
	return fmt.Errorf("URL %q is not an http(s) URL", sanitize(raw, 200))
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// resourceCovers reports whether the protected resource identifier
// resource (from metadata) covers the MCP server URL serverURL: same scheme
// and authority (case-insensitive, default ports folded), and a path equal
// to or a parent of the server's path (a trailing slash is not
// significant). A resource with a query or fragment must match exactly.
func resourceCovers(resource, serverURL string) bool {
	r, err := url.Parse(resource)
	if err != nil || r.Scheme == "" || r.Host == "" || r.Fragment != "" || r.User != nil {
		return false
	}
	s, err := url.Parse(serverURL)
	if err != nil {
		return false
	}
	if !strings.EqualFold(r.Scheme, s.Scheme) || canonicalHost(r) != canonicalHost(s) {
		return false
	}
	if r.RawQuery != "" && r.RawQuery != s.RawQuery {
		return false
	}
	rp := strings.TrimSuffix(r.EscapedPath(), "/")
	sp := strings.TrimSuffix(s.EscapedPath(), "/")
	return rp == "" || sp == rp || strings.HasPrefix(sp, rp+"/")
}

// canonicalHost is host[:port] lowercased, without the scheme's default port.
func canonicalHost(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (port == "443" && strings.EqualFold(u.Scheme, "https")) || (port == "80" && strings.EqualFold(u.Scheme, "http")) {
		port = ""
	}
	if port == "" {
		return host
	}
	return net.JoinHostPort(host, port)
}

// prmCandidates lists the protected resource metadata URLs to try, in the
// order the MCP authorization spec requires: the WWW-Authenticate
// resource_metadata URL, then the well-known URL with the endpoint's path,
// then the well-known URL at the root.
func prmCandidates(challengeURL, serverURL string) []string {
	var out []string
	if challengeURL != "" {
		out = append(out, challengeURL)
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return out
	}
	base := url.URL{Scheme: u.Scheme, Host: u.Host}
	if p := strings.Trim(u.EscapedPath(), "/"); p != "" {
		w := base
		w.Path = "/.well-known/oauth-protected-resource/" + strings.Trim(u.Path, "/")
		out = append(out, w.String())
	}
	w := base
	w.Path = "/.well-known/oauth-protected-resource"
	out = append(out, w.String())
	return slices.Compact(out)
}

// discovered is what discovery learned about a server.
type discovered struct {
	// prm is the protected resource metadata; nil for a server that
	// predates it (MCP 2025-03-26: the server's origin is the authorization
	// server).
	prm *oauthex.ProtectedResourceMetadata
	// resource is the resource indicator (RFC 8707) to send.
	resource string
	// asm is the authorization server's metadata.
	asm *oauthex.AuthServerMeta
	// legacyEndpoints is true when no metadata existed at all and the
	// 2025-03-26 default endpoints are used.
	legacyEndpoints bool
}

// discoverResource finds the protected resource metadata of serverURL.
// It returns nil (and no error) when the server publishes none.
func discoverResource(ctx context.Context, hc *http.Client, server, serverURL string, ch Challenge) (*oauthex.ProtectedResourceMetadata, error) {
	var lastErr error
	for _, cand := range prmCandidates(ch.ResourceMetadata, serverURL) {
		var prm oauthex.ProtectedResourceMetadata
		err := fetchMetadata(ctx, hc, cand, &prm)
		if errors.Is(err, errNoDocument) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			lastErr = err
			continue
		}
		if err := checkResourceMetadata(&prm, server, serverURL, cand); err != nil {
			// A document exists but is unusable: never fall back to guessing.
			return nil, err
		}
		return &prm, nil
	}
	if lastErr != nil {
		return nil, fmt.Errorf("discover the authorization server of %s: %w", server, lastErr)
	}
	return nil, nil
}

// checkResourceMetadata validates a protected resource metadata document.
func checkResourceMetadata(prm *oauthex.ProtectedResourceMetadata, server, serverURL, from string) error {
	if prm.Resource == "" {
		return fmt.Errorf("the protected resource metadata at %s has no \"resource\"; %s's server is misconfigured", from, server)
	}
	if !resourceCovers(prm.Resource, serverURL) {
		return fmt.Errorf("the protected resource metadata at %s is for %q, not %s: refusing to sign in "+
			"(check the URL of %s in servers.yaml)", from, sanitize(prm.Resource, 200), serverURL, server)
	}
	if len(prm.AuthorizationServers) == 0 {
		return fmt.Errorf("the protected resource metadata at %s lists no authorization_servers; %s's server is misconfigured", from, server)
	}
	for i, as := range prm.AuthorizationServers {
		if err := checkHTTPSOrLoopback(as); err != nil {
			return fmt.Errorf("the protected resource metadata at %s: authorization_servers[%d]: %v", from, i, err)
		}
	}
	return nil
}

// discoverAuthServer fetches the metadata of issuer (RFC 8414, then OpenID
// discovery, in the order the MCP spec lists) and checks what Keyport
// relies on: the issuer matches, PKCE S256 is supported.
func discoverAuthServer(ctx context.Context, hc *http.Client, server, issuer string) (*oauthex.AuthServerMeta, error) {
	asm, err := auth.GetAuthServerMetadata(ctx, issuer, hc)
	if err != nil {
		return nil, fmt.Errorf("authorization server metadata of %s (issuer %s): %w; Keyport refuses to sign in", server, issuer, err)
	}
	if asm == nil {
		return nil, nil
	}
	if err := checkAuthServerMeta(asm, server, issuer); err != nil {
		return nil, err
	}
	return asm, nil
}

// checkAuthServerMeta validates authorization server metadata.
func checkAuthServerMeta(asm *oauthex.AuthServerMeta, server, issuer string) error {
	if strings.TrimSuffix(asm.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return fmt.Errorf("the authorization server metadata of %s names issuer %q, not %q: refusing to sign in",
			server, sanitize(asm.Issuer, 200), issuer)
	}
	if !slices.Contains(asm.CodeChallengeMethodsSupported, "S256") {
		return fmt.Errorf("the authorization server of %s (%s) does not advertise PKCE S256 "+
			"(code_challenge_methods_supported: %q); Keyport refuses to sign in without it",
			server, issuer, asm.CodeChallengeMethodsSupported)
	}
	if asm.AuthorizationEndpoint == "" || asm.TokenEndpoint == "" {
		return fmt.Errorf("the authorization server metadata of %s (%s) lacks authorization_endpoint or token_endpoint", server, issuer)
	}
	for name, u := range map[string]string{
		"authorization_endpoint": asm.AuthorizationEndpoint,
		"token_endpoint":         asm.TokenEndpoint,
		"registration_endpoint":  asm.RegistrationEndpoint,
		"revocation_endpoint":    asm.RevocationEndpoint,
	} {
		if u == "" {
			continue
		}
		if err := checkHTTPSOrLoopback(u); err != nil {
			return fmt.Errorf("the authorization server metadata of %s: %s: %v", server, name, err)
		}
	}
	return nil
}

// discover runs the whole discovery for serverURL.
func discover(ctx context.Context, hc *http.Client, server, serverURL string, ch Challenge) (*discovered, error) {
	prm, err := discoverResource(ctx, hc, server, serverURL, ch)
	if err != nil {
		return nil, err
	}
	d := &discovered{prm: prm, resource: serverURL}
	issuer := ""
	if prm != nil {
		d.resource = prm.Resource
		issuer = prm.AuthorizationServers[0]
	} else {
		// MCP 2025-03-26: the authorization server is the server's origin.
		u, _ := url.Parse(serverURL)
		issuer = (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
	}
	asm, err := discoverAuthServer(ctx, hc, server, issuer)
	if err != nil {
		return nil, err
	}
	if asm == nil {
		if prm != nil {
			return nil, fmt.Errorf("the authorization server of %s (%s) publishes no metadata "+
				"(neither RFC 8414 nor OpenID discovery); Keyport cannot sign in to it", server, issuer)
		}
		// MCP 2025-03-26 fallback: default endpoints at the origin. PKCE S256
		// is still used; there is just no metadata to confirm it.
		asm = &oauthex.AuthServerMeta{
			Issuer:                        issuer,
			AuthorizationEndpoint:         issuer + "/authorize",
			TokenEndpoint:                 issuer + "/token",
			RegistrationEndpoint:          issuer + "/register",
			CodeChallengeMethodsSupported: []string{"S256"},
		}
		d.legacyEndpoints = true
	}
	d.asm = asm
	return d, nil
}
