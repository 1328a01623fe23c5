// Package opserver is a second, real authorization server for Keyport's
// tests, besides oauthtest's and the conformance suite's: an OpenID
// provider built on github.com/zitadel/oidc/v3's op package (which does
// every part of the protocol: discovery, PKCE, client authentication, code
// and refresh grants, signed JWT access tokens), with an in-memory store,
// one confidential client registered beforehand, refresh-token rotation,
// and a protected go-sdk MCP server whose "admin" tool needs a scope the
// first sign-in does not ask for (step-up).
//
// The store holds what op asks it to keep; it implements no token logic of
// its own beyond minting opaque IDs and refusing a refresh token once it
// was rotated.
package opserver

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"keyport/app/oauth/oauthtest"
)

// Scopes of the protected MCP server.
const (
	// ReadScope is what every request needs (the 401's scope).
	ReadScope = "mcp:read"
	// AdminScope is what the "admin" tool needs (403 insufficient_scope).
	AdminScope = "mcp:admin"
)

// Options configure a Server.
type Options struct {
	// AccessTokenLifetime is how long an access token lives; 0: an hour.
	AccessTokenLifetime time.Duration
}

// Server is the authorization server and its protected MCP server.
type Server struct {
	// Issuer is the authorization server's issuer URL.
	Issuer string
	// MCP is the protected MCP server; MCP.Endpoint is its URL.
	MCP *oauthtest.MCP
	// ClientID and ClientSecret are the confidential client registered for
	// Keyport (token endpoint auth client_secret_basic; redirect URI
	// http://127.0.0.1/callback on any port, RFC 8252).
	ClientID, ClientSecret string

	store *store
}

// New starts the authorization server and the MCP server; they stop when
// the test ends.
func New(t interface {
	Cleanup(func())
	Fatal(...any)
}, opts Options) *Server {
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = time.Hour
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ClientID: "keyport-" + strings.ToLower(rand.Text()[:8]), ClientSecret: "cs-" + rand.Text()}
	st := &store{
		key:      key,
		keyID:    rand.Text()[:8],
		lifetime: opts.AccessTokenLifetime,
		requests: map[string]*authRequest{},
		codes:    map[string]string{},
		refresh:  map[string]*refreshToken{},
		access:   map[string]bool{},
	}
	s.store = st

	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.Issuer = srv.URL
	st.client = &client{id: s.ClientID, loginURL: srv.URL + "/login?id="}
	st.clientSecret = s.ClientSecret

	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:             cryptoKey,
		CodeMethodS256:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess, ReadScope, AdminScope},
	}, st, op.StaticIssuer(s.Issuer), op.WithAllowInsecure(), op.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	callback := op.AuthCallbackURL(provider)
	// The sign-in page: the test's user approves at once (a headless
	// browser follows the redirects), then op issues the code.
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if err := st.approve(id, "alice"); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	})
	mux.Handle("/", provider)

	verifier := op.NewAccessTokenVerifier(s.Issuer, rp.NewRemoteKeySet(http.DefaultClient, s.Issuer+"/keys"))
	s.MCP = oauthtest.NewMCPFor(t, s.Issuer, func(string) auth.TokenVerifier {
		return func(ctx context.Context, tok string, _ *http.Request) (*auth.TokenInfo, error) {
			claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, tok, verifier)
			if err != nil || !st.live(claims.JWTID) {
				return nil, auth.ErrInvalidToken
			}
			return &auth.TokenInfo{Scopes: claims.Scopes, Expiration: claims.Expiration.AsTime(), UserID: claims.Subject}, nil
		}
	}, oauthtest.MCPOptions{Scopes: []string{ReadScope}, AdminScope: AdminScope})
	return s
}

// Stats is what the authorization server saw.
type Stats struct {
	// Authorizations is how many sign-ins the user approved.
	Authorizations int
	// Refreshes is how many refresh tokens were redeemed (and rotated).
	Refreshes int
	// Reused counts rotated refresh tokens presented again (refused).
	Reused int
}

// Stats returns what the server saw so far.
func (s *Server) Stats() Stats {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	return s.store.stats
}

// Secrets returns every credential the server issued or holds (the
// client secret, refresh token values), for tests that scan files and logs.
func (s *Server) Secrets() []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	out := []string{s.ClientSecret}
	for v := range s.store.refresh {
		out = append(out, v)
	}
	return out
}

// AccessTokenIDs are the IDs (jti) of the access tokens issued.
func (s *Server) AccessTokenIDs() []string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	var out []string
	for id := range s.store.access {
		out = append(out, id)
	}
	return out
}

// client is the pre-registered confidential client.
type client struct {
	id       string
	loginURL string
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return []string{"http://127.0.0.1/callback"} }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeNative }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) LoginURL(id string) string            { return c.loginURL + id }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(scope string) bool     { return scope == ReadScope || scope == AdminScope }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// authRequest is one authorization request op asked the store to keep.
type authRequest struct {
	id       string
	req      oidc.AuthRequest
	subject  string
	authTime time.Time
	done     bool
}

func (a *authRequest) GetID() string                      { return a.id }
func (a *authRequest) GetACR() string                     { return "" }
func (a *authRequest) GetAMR() []string                   { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string              { return []string{a.req.ClientID} }
func (a *authRequest) GetAuthTime() time.Time             { return a.authTime }
func (a *authRequest) GetClientID() string                { return a.req.ClientID }
func (a *authRequest) GetNonce() string                   { return a.req.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.req.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.req.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.req.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.req.Scopes }
func (a *authRequest) GetState() string                   { return a.req.State }
func (a *authRequest) GetSubject() string                 { return a.subject }
func (a *authRequest) Done() bool                         { return a.done }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.req.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.req.CodeChallenge, Method: a.req.CodeChallengeMethod}
}

// refreshToken is a live refresh token (its value is the map key).
type refreshToken struct {
	subject, clientID string
	scopes, audience  []string
	amr               []string
	authTime          time.Time
}

func (r *refreshToken) GetAMR() []string             { return r.amr }
func (r *refreshToken) GetAudience() []string        { return r.audience }
func (r *refreshToken) GetAuthTime() time.Time       { return r.authTime }
func (r *refreshToken) GetClientID() string          { return r.clientID }
func (r *refreshToken) GetScopes() []string          { return r.scopes }
func (r *refreshToken) GetSubject() string           { return r.subject }
func (r *refreshToken) SetCurrentScopes(sc []string) { r.scopes = sc }

// signingKey is the RSA key op signs tokens with.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// store is op's Storage, in memory.
type store struct {
	key          *rsa.PrivateKey
	keyID        string
	lifetime     time.Duration
	client       *client
	clientSecret string

	mu       sync.Mutex
	requests map[string]*authRequest
	codes    map[string]string // code -> request id
	refresh  map[string]*refreshToken
	rotated  map[string]bool // refresh tokens spent by a rotation
	access   map[string]bool // access token IDs issued (and not revoked)
	stats    Stats
}

var errNotFound = errors.New("not found")

func (s *store) approve(id, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return errors.New("unknown authorization request")
	}
	r.subject, r.done, r.authTime = subject, true, time.Now()
	s.stats.Authorizations++
	return nil
}

func (s *store) live(accessID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.access[accessID]
}

func (s *store) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &authRequest{id: rand.Text(), req: *req}
	s.requests[a.id] = a
	return a, nil
}

func (s *store) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[id]; ok {
		return a, nil
	}
	return nil, errNotFound
}

func (s *store) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[s.codes[code]]; ok {
		return a, nil
	}
	return nil, errNotFound
}

func (s *store) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *store) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for c, rid := range s.codes {
		if rid == id {
			delete(s.codes, c)
		}
	}
	return nil
}

func (s *store) newAccess() (string, time.Time) {
	id := rand.Text()
	s.access[id] = true
	return id, time.Now().Add(s.lifetime)
}

func (s *store) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, exp := s.newAccess()
	return id, exp, nil
}

// CreateAccessAndRefreshTokens issues an access token and a new refresh
// token; the refresh token it replaces (currentRefreshToken) is spent.
func (s *store) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := &refreshToken{subject: req.GetSubject(), scopes: req.GetScopes(), audience: req.GetAudience(), authTime: time.Now()}
	switch r := req.(type) {
	case op.AuthRequest:
		rt.clientID, rt.amr, rt.authTime = r.GetClientID(), r.GetAMR(), r.GetAuthTime()
	case op.RefreshTokenRequest:
		rt.clientID, rt.amr, rt.authTime = r.GetClientID(), r.GetAMR(), r.GetAuthTime()
	}
	if current != "" {
		if _, ok := s.refresh[current]; !ok {
			return "", "", time.Time{}, op.ErrInvalidRefreshToken
		}
		delete(s.refresh, current)
		if s.rotated == nil {
			s.rotated = map[string]bool{}
		}
		s.rotated[current] = true
		s.stats.Refreshes++
	}
	value := "rt-" + rand.Text()
	s.refresh[value] = rt
	id, exp := s.newAccess()
	return id, value, exp, nil
}

func (s *store) TokenRequestByRefreshToken(_ context.Context, value string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt, ok := s.refresh[value]; ok {
		c := *rt
		return &c, nil
	}
	if s.rotated[value] {
		s.stats.Reused++
	}
	return nil, op.ErrInvalidRefreshToken
}

func (s *store) TerminateSession(context.Context, string, string) error { return nil }

func (s *store) RevokeToken(_ context.Context, token, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refresh, token)
	delete(s.access, token)
	return nil
}

func (s *store) GetRefreshTokenInfo(_ context.Context, _, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt, ok := s.refresh[token]; ok {
		return rt.subject, token, nil
	}
	return "", "", op.ErrInvalidRefreshToken
}

func (s *store) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{id: s.keyID, key: s.key}, nil
}

func (s *store) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *store) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{signingKey{id: s.keyID, key: s.key}}}, nil
}

func (s *store) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.client.id {
		return nil, errNotFound
	}
	return s.client, nil
}

// AuthorizeClientIDSecret checks the confidential client's credentials.
func (s *store) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.client.id || secret != s.clientSecret {
		return oidc.ErrInvalidClient().WithDescription("wrong client credentials")
	}
	return nil
}

func (s *store) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *store) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, _, subject, _ string) error {
	ui.Subject = subject
	return nil
}

func (s *store) SetIntrospectionFromToken(_ context.Context, r *oidc.IntrospectionResponse, _, subject, clientID string) error {
	r.Subject, r.ClientID, r.Active = subject, clientID, true
	return nil
}

// GetPrivateClaimsFromScopes puts the granted scopes into the JWT access
// token (its "scope" claim), where the MCP server reads them.
func (s *store) GetPrivateClaimsFromScopes(_ context.Context, _, _ string, scopes []string) (map[string]any, error) {
	return map[string]any{"scope": strings.Join(scopes, " ")}, nil
}

func (s *store) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *store) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return slices.Clone(scopes), nil
}

func (s *store) Health(context.Context) error { return nil }
