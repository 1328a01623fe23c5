// Package oauthtest is a small OAuth 2.1 authorization server and a protected
// go-sdk MCP server for Keyport's OAuth tests: metadata (RFC 8414),
// dynamic registration (RFC 7591), PKCE S256 verification, resource
// indicators, rotating refresh tokens, revocation, and knobs for the
// misbehaviours Keyport must survive. The MCP server is a real go-sdk
// server behind go-sdk's auth.RequireBearerToken and
// ProtectedResourceMetadataHandler.
package oauthtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Options are the authorization server's knobs. The zero value is a
// well-behaved server with dynamic registration and PKCE S256.
type Options struct {
	// MetadataIssuer, when set, is the issuer the metadata claims (a wrong
	// issuer).
	MetadataIssuer string
	// PKCEMethods are the advertised code_challenge_methods_supported;
	// nil: ["S256"]; empty non-nil: the field is omitted.
	PKCEMethods []string
	// NoRegistration disables dynamic client registration.
	NoRegistration bool
	// IssAdvertised sets authorization_response_iss_parameter_supported.
	IssAdvertised bool
	// IssMode is what the redirect's iss is: "" the issuer (when
	// advertised, else none), "omit", "wrong".
	IssMode string
	// WrongState makes the redirect carry another state.
	WrongState bool
	// AuthError makes the authorization endpoint redirect with this error.
	AuthError string
	// TokenStatus, when set, makes the authorization_code grant fail with it.
	TokenStatus int
	// RefreshStatus, when set, makes the refresh_token grant fail with it
	// (400 answers invalid_grant).
	RefreshStatus int
	// RefreshDelay delays each refresh (widens race windows in tests).
	RefreshDelay time.Duration
	// AccessTTL is the access token lifetime; 0: one hour.
	AccessTTL time.Duration
	// NoRefreshToken issues no refresh tokens.
	NoRefreshToken bool
	// ScopesSupported is advertised in the metadata.
	ScopesSupported []string
	// AuthMethods is token_endpoint_auth_methods_supported; nil: ["none",
	// "client_secret_post", "client_secret_basic"].
	AuthMethods []string
	// Preregistered maps client IDs to secrets ("" for public clients).
	Preregistered map[string]string
	// CIMD advertises client_id_metadata_document_supported and accepts
	// https client IDs.
	CIMD bool
	// Revocation serves a revocation endpoint.
	Revocation bool
	// GrantScopes, when set, replaces the scopes granted (an AS that grants
	// less than asked).
	GrantScopes []string
}

type client struct {
	secret       string
	method       string
	redirectURIs []string
}

type grant struct {
	clientID, redirectURI, challenge, resource string
	scopes                                     []string
}

// Token is what the server knows about an issued access token.
type Token struct {
	ClientID string
	Resource string
	Scopes   []string
	Expiry   time.Time
	Revoked  bool
}

type refresh struct {
	clientID, resource string
	scopes             []string
	used, revoked      bool
}

// Server is the test authorization server.
type Server struct {
	*httptest.Server
	opts Options

	mu      sync.Mutex
	clients map[string]*client
	codes   map[string]*grant
	access  map[string]*Token
	refresh map[string]*refresh
	errs    []string
	// LastAuthorize is the query of the last authorization request.
	lastAuthorize url.Values

	Authorizations, Registrations, Refreshes, CodeExchanges, Revocations atomic.Int64
}

// New starts an authorization server; it stops when the test ends.
func New(t interface{ Cleanup(func()) }, opts Options) *Server {
	s := &Server{opts: opts, clients: map[string]*client{}, codes: map[string]*grant{},
		access: map[string]*Token{}, refresh: map[string]*refresh{}}
	for id, secret := range opts.Preregistered {
		method := "none"
		if secret != "" {
			method = "any"
		}
		s.clients[id] = &client{secret: secret, method: method}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.metadata)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	if !opts.NoRegistration {
		mux.HandleFunc("POST /register", s.register)
	}
	if opts.Revocation {
		mux.HandleFunc("POST /revoke", s.revoke)
	}
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *Server) fail(format string, args ...any) {
	s.mu.Lock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// Errors returns the protocol violations the server saw.
func (s *Server) Errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

// LastAuthorize returns the query of the last authorization request.
func (s *Server) LastAuthorize() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAuthorize
}

// Clients returns the number of registered clients.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	issuer := s.URL
	if s.opts.MetadataIssuer != "" {
		issuer = s.opts.MetadataIssuer
	}
	m := map[string]any{
		"issuer":                   issuer,
		"authorization_endpoint":   s.URL + "/authorize",
		"token_endpoint":           s.URL + "/token",
		"response_types_supported": []string{"code"},
		"grant_types_supported":    []string{"authorization_code", "refresh_token"},
	}
	switch {
	case s.opts.PKCEMethods == nil:
		m["code_challenge_methods_supported"] = []string{"S256"}
	case len(s.opts.PKCEMethods) > 0:
		m["code_challenge_methods_supported"] = s.opts.PKCEMethods
	}
	if !s.opts.NoRegistration {
		m["registration_endpoint"] = s.URL + "/register"
	}
	if s.opts.Revocation {
		m["revocation_endpoint"] = s.URL + "/revoke"
	}
	if s.opts.IssAdvertised {
		m["authorization_response_iss_parameter_supported"] = true
	}
	if s.opts.CIMD {
		m["client_id_metadata_document_supported"] = true
	}
	if s.opts.ScopesSupported != nil {
		m["scopes_supported"] = s.opts.ScopesSupported
	}
	methods := s.opts.AuthMethods
	if methods == nil {
		methods = []string{"none", "client_secret_post", "client_secret_basic"}
	}
	m["token_endpoint_auth_methods_supported"] = methods
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var meta oauthex.ClientRegistrationMetadata
	if err := json.NewDecoder(r.Body).Decode(&meta); err != nil || len(meta.RedirectURIs) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client_metadata"})
		return
	}
	for _, u := range meta.RedirectURIs {
		if !strings.HasPrefix(u, "http://127.0.0.1:") && !strings.HasPrefix(u, "http://localhost:") {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_redirect_uri"})
			return
		}
	}
	s.Registrations.Add(1)
	method := meta.TokenEndpointAuthMethod
	if method == "" {
		method = "client_secret_basic"
	}
	c := &client{method: method, redirectURIs: meta.RedirectURIs}
	id := "client-" + rand.Text()[:10]
	resp := map[string]any{"client_id": id, "redirect_uris": meta.RedirectURIs, "token_endpoint_auth_method": method,
		"grant_types": meta.GrantTypes, "client_name": meta.ClientName}
	if method != "none" {
		c.secret = "secret-" + rand.Text()
		resp["client_secret"] = c.secret
		resp["client_secret_expires_at"] = 0
	}
	s.mu.Lock()
	s.clients[id] = c
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.Authorizations.Add(1)
	s.mu.Lock()
	s.lastAuthorize = q
	c := s.clients[q.Get("client_id")]
	s.mu.Unlock()
	redirect := q.Get("redirect_uri")
	switch {
	case c == nil && !(s.opts.CIMD && strings.HasPrefix(q.Get("client_id"), "https://")):
		s.fail("authorize: unknown client %q", q.Get("client_id"))
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	case c != nil && c.redirectURIs != nil && !slices.Contains(c.redirectURIs, redirect):
		s.fail("authorize: redirect_uri %q not registered", redirect)
		http.Error(w, "redirect_uri not registered", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code":
		s.fail("authorize: response_type %q", q.Get("response_type"))
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		s.fail("authorize: PKCE missing or not S256")
		http.Error(w, "PKCE S256 required", http.StatusBadRequest)
		return
	case q.Get("resource") == "":
		s.fail("authorize: no resource parameter")
		http.Error(w, "resource required", http.StatusBadRequest)
		return
	}
	u, err := url.Parse(redirect)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	rq := u.Query()
	state := q.Get("state")
	if s.opts.WrongState {
		state = "not-" + state
	}
	rq.Set("state", state)
	if s.opts.AuthError != "" {
		rq.Set("error", s.opts.AuthError)
		rq.Set("error_description", "the user said no")
	} else {
		code := "code-" + rand.Text()
		s.mu.Lock()
		s.codes[code] = &grant{clientID: q.Get("client_id"), redirectURI: redirect, challenge: q.Get("code_challenge"),
			resource: q.Get("resource"), scopes: strings.Fields(q.Get("scope"))}
		s.mu.Unlock()
		rq.Set("code", code)
	}
	switch {
	case s.opts.IssMode == "wrong":
		rq.Set("iss", "https://evil.example.com")
	case s.opts.IssMode == "" && s.opts.IssAdvertised:
		rq.Set("iss", s.URL)
	}
	u.RawQuery = rq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// authenticate checks the client's authentication at the token endpoint.
func (s *Server) authenticate(r *http.Request) (string, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	s.mu.Lock()
	c := s.clients[id]
	s.mu.Unlock()
	if c == nil {
		return id, s.opts.CIMD && strings.HasPrefix(id, "https://") && secret == ""
	}
	switch c.method {
	case "none":
		return id, secret == "" && !basic
	case "client_secret_basic":
		return id, basic && secret == c.secret
	case "client_secret_post":
		return id, !basic && secret == c.secret
	default: // preregistered with a secret: either way
		return id, secret == c.secret
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, ok := s.authenticate(r)
	if !ok {
		s.fail("token: client authentication failed for %q", id)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		s.exchange(w, r, id)
	case "refresh_token":
		s.refreshGrant(w, r, id)
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
	}
}

func (s *Server) exchange(w http.ResponseWriter, r *http.Request, clientID string) {
	f := r.PostForm
	s.CodeExchanges.Add(1)
	if s.opts.TokenStatus != 0 {
		writeJSON(w, s.opts.TokenStatus, map[string]string{"error": "server_error", "error_description": "token endpoint broken"})
		return
	}
	s.mu.Lock()
	g := s.codes[f.Get("code")]
	delete(s.codes, f.Get("code"))
	s.mu.Unlock()
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	switch {
	case g == nil:
		s.fail("token: unknown or reused code")
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	case g.clientID != clientID || g.redirectURI != f.Get("redirect_uri"):
		s.fail("token: client or redirect_uri differs from the authorization request")
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		s.fail("token: PKCE verifier does not match")
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "PKCE"})
		return
	case f.Get("resource") != g.resource:
		s.fail("token: resource %q differs from %q", f.Get("resource"), g.resource)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_target"})
		return
	}
	scopes := g.scopes
	if s.opts.GrantScopes != nil {
		scopes = s.opts.GrantScopes
	}
	s.issue(w, clientID, g.resource, scopes)
}

func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, clientID string) {
	f := r.PostForm
	if s.opts.RefreshDelay > 0 {
		time.Sleep(s.opts.RefreshDelay)
	}
	s.Refreshes.Add(1)
	if s.opts.RefreshStatus != 0 {
		code := "server_error"
		if s.opts.RefreshStatus == http.StatusBadRequest {
			code = "invalid_grant"
		}
		writeJSON(w, s.opts.RefreshStatus, map[string]string{"error": code})
		return
	}
	s.mu.Lock()
	rt := s.refresh[f.Get("refresh_token")]
	ok := rt != nil && !rt.used && !rt.revoked && rt.clientID == clientID
	if ok {
		rt.used = true // rotation: each refresh token works once
	}
	s.mu.Unlock()
	if !ok {
		s.fail("token: refresh token unknown, reused or revoked")
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "refresh token is not valid"})
		return
	}
	if res := f.Get("resource"); res != "" && res != rt.resource {
		s.fail("token: refresh resource %q differs from %q", res, rt.resource)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_target"})
		return
	}
	s.issue(w, clientID, rt.resource, rt.scopes)
}

func (s *Server) issue(w http.ResponseWriter, clientID, resource string, scopes []string) {
	ttl := s.opts.AccessTTL
	if ttl == 0 {
		ttl = time.Hour
	}
	at := "at-" + rand.Text()
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(ttl.Seconds()),
		"scope": strings.Join(scopes, " ")}
	s.mu.Lock()
	s.access[at] = &Token{ClientID: clientID, Resource: resource, Scopes: scopes, Expiry: time.Now().Add(ttl)}
	if !s.opts.NoRefreshToken {
		rt := "rt-" + rand.Text()
		s.refresh[rt] = &refresh{clientID: clientID, resource: resource, scopes: scopes}
		resp["refresh_token"] = rt
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if _, ok := s.authenticate(r); !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	s.Revocations.Add(1)
	tok := r.PostForm.Get("token")
	s.mu.Lock()
	if a := s.access[tok]; a != nil {
		a.Revoked = true
	}
	if rt := s.refresh[tok]; rt != nil {
		rt.revoked = true
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// RevokeAll revokes every token, as an administrator would.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.access {
		a.Revoked = true
	}
	for _, rt := range s.refresh {
		rt.revoked = true
	}
}

// RevokeAccessTokens revokes every access token but no refresh token (the
// resource server will answer 401; a refresh fixes it).
func (s *Server) RevokeAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.access {
		a.Revoked = true
	}
}

// AccessToken returns what the server knows of an access token.
func (s *Server) AccessToken(tok string) (Token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.access[tok]
	if !ok {
		return Token{}, false
	}
	return *a, true
}

// Verifier is the MCP server's token verifier for resource.
func (s *Server) Verifier(resource string) auth.TokenVerifier {
	return func(_ context.Context, tok string, _ *http.Request) (*auth.TokenInfo, error) {
		s.mu.Lock()
		a := s.access[tok]
		s.mu.Unlock()
		if a == nil || a.Revoked || time.Now().After(a.Expiry) {
			return nil, auth.ErrInvalidToken
		}
		if a.Resource != resource {
			return nil, fmt.Errorf("token is for %q: %w", a.Resource, auth.ErrInvalidToken)
		}
		return &auth.TokenInfo{Scopes: a.Scopes, Expiration: a.Expiry, UserID: a.ClientID}, nil
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// MCPOptions configure the protected MCP server.
type MCPOptions struct {
	// Scopes every request needs (the 401 challenge's scope).
	Scopes []string
	// ScopesSupported is the resource metadata's scopes_supported.
	ScopesSupported []string
	// AdminScope, when set, is needed to call the "admin" tool: without it
	// the server answers 403 insufficient_scope.
	AdminScope string
	// NoChallengeMetadata leaves resource_metadata out of the 401 (the
	// client must use the well-known URL).
	NoChallengeMetadata bool
	// Resource overrides the metadata's resource (a mismatch).
	Resource string
}

// MCP is a protected go-sdk MCP server.
type MCP struct {
	*httptest.Server
	// Endpoint is the MCP URL (<server>/mcp).
	Endpoint string
}

// NewMCP starts a real go-sdk MCP server behind go-sdk's bearer-token
// middleware, trusting as; it stops when the test ends.
func NewMCP(t interface{ Cleanup(func()) }, as *Server, opts MCPOptions) *MCP {
	return NewMCPFor(t, as.URL, func(resource string) auth.TokenVerifier { return as.Verifier(resource) }, opts)
}

// NewMCPFor is NewMCP trusting the authorization server issuer, whose
// access tokens verifier (given the MCP endpoint, the resource) checks.
func NewMCPFor(t interface{ Cleanup(func()) }, issuer string, verifier func(resource string) auth.TokenVerifier, opts MCPOptions) *MCP {
	m := &MCP{}
	srv := mcp.NewServer(&mcp.Implementation{Name: "protected", Version: "1.0.0"}, nil)
	type in struct {
		Text string `json:"text"`
	}
	type out struct {
		Echo   string   `json:"echo"`
		Scopes []string `json:"scopes"`
	}
	handler := func(ctx context.Context, req *mcp.CallToolRequest, args in) (*mcp.CallToolResult, out, error) {
		var scopes []string
		if ti := req.Extra.TokenInfo; ti != nil {
			scopes = ti.Scopes
		}
		return nil, out{Echo: args.Text, Scopes: scopes}, nil
	}
	mcp.AddTool(srv, &mcp.Tool{Name: "echo", Description: "echoes its text"}, handler)
	mcp.AddTool(srv, &mcp.Tool{Name: "admin", Description: "needs the admin scope"}, handler)

	mux := http.NewServeMux()
	m.Server = httptest.NewServer(mux)
	t.Cleanup(m.Close)
	m.Endpoint = m.URL + "/mcp"
	prmURL := m.URL + "/.well-known/oauth-protected-resource/mcp"
	resource := m.Endpoint
	if opts.Resource != "" {
		resource = opts.Resource
	}
	mux.Handle("/.well-known/oauth-protected-resource/mcp", auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource:             resource,
		AuthorizationServers: []string{issuer},
		ScopesSupported:      opts.ScopesSupported,
		ResourceName:         "protected test server",
	}))
	bearer := &auth.RequireBearerTokenOptions{Scopes: opts.Scopes}
	if !opts.NoChallengeMetadata {
		bearer.ResourceMetadataURL = prmURL
	}
	inner := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	var h http.Handler = inner
	if opts.AdminScope != "" {
		h = requireToolScope(inner, "admin", opts.AdminScope, prmURL)
	}
	mux.Handle("/mcp", auth.RequireBearerToken(verifier(m.Endpoint), bearer)(h))
	return m
}

// requireToolScope answers 403 insufficient_scope to a tools/call of tool
// unless the token has scope.
func requireToolScope(next http.Handler, tool, scope, prmURL string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := readAll(r)
			var msg struct {
				Method string `json:"method"`
				Params struct {
					Name string `json:"name"`
				} `json:"params"`
			}
			_ = json.Unmarshal(body, &msg)
			ti := auth.TokenInfoFromContext(r.Context())
			if msg.Method == "tools/call" && msg.Params.Name == tool && (ti == nil || !slices.Contains(ti.Scopes, scope)) {
				var have []string
				if ti != nil {
					have = ti.Scopes
				}
				need := append(slices.Clone(have), scope)
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q, resource_metadata=%q`,
					strings.Join(need, " "), prmURL))
				http.Error(w, "insufficient scope", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func readAll(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, err
}

// Browser is the test's browser: it loads the authorization URL with an
// HTTP client that follows the redirect to Keyport's loopback callback,
// and records the page it ends on.
type Browser struct {
	// Client is the browser's HTTP client (follows redirects).
	Client *http.Client
	mu     sync.Mutex
	pages  []Page
	// Done receives each finished page.
	Done chan Page
}

// Page is a page the browser ended on.
type Page struct {
	Status int
	Body   string
	URL    string
	Err    error
}

// NewBrowser returns a browser.
func NewBrowser() *Browser {
	return &Browser{Client: &http.Client{Timeout: time.Minute}, Done: make(chan Page, 16)}
}

// Open loads u; use it as LoginConfig.OpenBrowser.
func (b *Browser) Open(u string) error {
	resp, err := b.Client.Get(u)
	p := Page{Err: err}
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		p.Status, p.Body, p.URL = resp.StatusCode, string(body), resp.Request.URL.String()
	}
	b.mu.Lock()
	b.pages = append(b.pages, p)
	b.mu.Unlock()
	b.Done <- p
	return nil
}

// Pages returns the pages loaded so far.
func (b *Browser) Pages() []Page {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.pages)
}
