package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// DefaultLoginTimeout is how long a sign-in waits for the browser.
const DefaultLoginTimeout = 3 * time.Minute

// LoginConfig configures one sign-in.
type LoginConfig struct {
	// Server is the server's name: the keychain key and the name in messages.
	Server string
	// ResourceURL is the MCP endpoint URL (https, or http on loopback).
	ResourceURL string
	// ClientID is a pre-registered OAuth client ID (servers.yaml
	// auth.client_id). Empty: a Client ID Metadata Document or dynamic
	// registration is used.
	ClientID string
	// ClientSecret is the pre-registered client's secret, from the keychain
	// (see ClientSecretFromStore); empty for a public client.
	ClientSecret string
	// ClientMetadataURL is Keyport's Client ID Metadata Document URL (an
	// https URL with a path). When set and the authorization server
	// advertises client_id_metadata_document_supported, it is the client ID.
	ClientMetadataURL string
	// Scopes, when set, are the scopes to request; otherwise the 401's
	// challenge scope, else the server's scopes_supported, else none.
	Scopes []string
	// CallbackPort is the fixed loopback port of the redirect URI (for
	// clients registered with one); 0 picks a free port.
	CallbackPort int
	// OpenBrowser opens the authorization URL (fyne's OpenURL in the app,
	// [BrowserOpener] in the CLI). Required. It may block until the page
	// is done; Login runs it on its own goroutine.
	OpenBrowser func(url string) error
	// Store is the keychain. Required.
	Store TokenStore
	// HTTPClient makes every request but the browser's; nil: [DefaultHTTPClient].
	HTTPClient *http.Client
	// Logger receives progress logs (never a secret); nil: slog.Default().
	Logger *slog.Logger
	// Timeout bounds the whole sign-in; 0: DefaultLoginTimeout.
	Timeout time.Duration
	// LockDir holds the per-server lock files; "": DefaultLockDir().
	LockDir string
	// Challenge is the header of a 401 or 403 answer the caller already has
	// (its WWW-Authenticate is used). Nil: Login sends an unauthenticated
	// MCP initialize request to get one.
	Challenge http.Header
	// ClientName is the name registered dynamically; "": "Keyport".
	ClientName string
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// LoginResult describes a successful sign-in. It holds no secret.
type LoginResult struct {
	// Issuer is the authorization server's issuer identifier.
	Issuer string
	// Resource is the resource indicator the tokens are bound to.
	Resource string
	// Scopes are the scopes granted (or requested, if the server did not say).
	Scopes []string
	// Expiry is when the access token expires; zero if the server did not say.
	Expiry time.Time
	// Refreshable is true when a refresh token was issued.
	Refreshable bool
	// Registration is how the client was obtained: "preregistered",
	// "metadata-document" or "dynamic".
	Registration string
}

// DefaultHTTPClient returns the HTTP client Keyport's OAuth requests use:
// a clone of http.DefaultTransport (so the user's proxy settings apply and
// servers on private networks stay reachable) with a 30 s timeout.
func DefaultHTTPClient() *http.Client {
	return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 30 * time.Second}
}

func (c *LoginConfig) check() error {
	if c.Server == "" {
		return errors.New("login: the server name is empty")
	}
	if err := checkServerURL(c.Server, c.ResourceURL); err != nil {
		return err
	}
	if c.Store == nil {
		return errors.New("login: no keychain store configured")
	}
	if c.OpenBrowser == nil {
		return errors.New("login: no way to open the browser configured")
	}
	if c.CallbackPort < 0 || c.CallbackPort > 65535 {
		return fmt.Errorf("callback_port %d of %s is not a port number (1-65535, or 0 for any)", c.CallbackPort, c.Server)
	}
	if c.ClientSecret != "" && c.ClientID == "" {
		return fmt.Errorf("a client secret is set for %s but no client_id: set auth.client_id in servers.yaml", c.Server)
	}
	if c.ClientMetadataURL != "" {
		if err := CheckClientMetadataURL(c.ClientMetadataURL); err != nil {
			return err
		}
	}
	if c.HTTPClient == nil {
		c.HTTPClient = DefaultHTTPClient()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultLoginTimeout
	}
	if c.ClientName == "" {
		c.ClientName = "Keyport"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LockDir == "" {
		d, err := DefaultLockDir()
		if err != nil {
			return err
		}
		c.LockDir = d
	}
	return nil
}

// checkServerURL validates an MCP server URL for OAuth use.
func checkServerURL(server, raw string) error {
	if raw == "" {
		return fmt.Errorf("%s has no URL", server)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("the URL of %s, %q, is not an absolute http(s) URL", server, raw)
	}
	if u.Fragment != "" {
		return fmt.Errorf("the URL of %s, %q, has a #fragment; remove it", server, raw)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("the URL of %s, %q, is plain http: OAuth sign-in needs https (http only on 127.0.0.1/localhost)", server, raw)
	}
	return nil
}

// Login signs in to one server in the browser and stores the tokens in the
// keychain. On failure nothing in the keychain changes, with one deliberate
// exception: a cached dynamic registration the authorization server no
// longer knows (invalid_client) is dropped, so the next attempt registers
// anew.
func Login(ctx context.Context, cfg LoginConfig) (*LoginResult, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	res, err := (&login{cfg: cfg, log: cfg.Logger.With("server", cfg.Server)}).run(ctx)
	if err != nil && ctx.Err() != nil && parent.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		note := ""
		if rc := (*refusedCallbacksError)(nil); errors.As(err, &rc) {
			note = fmt.Sprintf(" (%d request(s) to the sign-in callback that did not belong to this sign-in were refused)", rc.n)
		}
		return nil, fmt.Errorf("sign-in to %s timed out after %s: the browser page was closed or not finished%s; "+
			"run keyport login %s again", cfg.Server, cfg.Timeout, note, cfg.Server)
	}
	return res, err
}

// refusedCallbacksError is a sign-in that ended (timed out) after the
// callback turned away requests that did not belong to it.
type refusedCallbacksError struct {
	n   int64
	err error
}

func (e *refusedCallbacksError) Error() string {
	return fmt.Sprintf("%v (%d callback requests refused)", e.err, e.n)
}
func (e *refusedCallbacksError) Unwrap() error { return e.err }

type login struct {
	cfg LoginConfig
	log *slog.Logger
}

// loginState is everything read from the keychain before the flow.
type loginState struct {
	prev    *tokenRecord
	clients clientsRecord
	stepUp  *stepUpRecord
}

func (l *login) readState() (*loginState, error) {
	st := &loginState{clients: clientsRecord{Version: recordVersion, Clients: map[string]clientInfo{}}}
	prev, err := loadToken(l.cfg.Store, l.cfg.Server)
	if err != nil && !errors.Is(err, errCorrupt) {
		return nil, err
	}
	if err != nil {
		l.log.Warn("replacing an unusable keychain entry", "err", err)
	}
	st.prev = prev
	if _, err := loadJSON(l.cfg.Store, l.cfg.Server, KindClients, &st.clients); err != nil {
		if !errors.Is(err, errCorrupt) {
			return nil, err
		}
		st.clients = clientsRecord{Version: recordVersion}
	}
	if st.clients.Clients == nil {
		st.clients.Clients = map[string]clientInfo{}
	}
	var su stepUpRecord
	if found, err := loadJSON(l.cfg.Store, l.cfg.Server, KindStepUp, &su); err == nil && found {
		st.stepUp = &su
	}
	return st, nil
}

func (l *login) run(ctx context.Context) (_ *LoginResult, err error) {
	cfg := l.cfg
	var ch Challenge
	probeStatus := 0
	if cfg.Challenge != nil {
		if ch, err = ParseChallenge(cfg.Challenge); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Server, err)
		}
	} else {
		if ch, probeStatus, err = probe(ctx, cfg.HTTPClient, cfg.Server, cfg.ResourceURL); err != nil {
			return nil, err
		}
	}
	d, err := discover(ctx, cfg.HTTPClient, cfg.Server, cfg.ResourceURL, ch)
	if err != nil {
		return nil, err
	}
	if d.legacyEndpoints && probeStatus >= 200 && probeStatus < 300 {
		return nil, fmt.Errorf("%s answered without asking for a sign-in and publishes no OAuth metadata: "+
			"it does not use OAuth; remove auth type oauth for %s in servers.yaml", cfg.ResourceURL, cfg.Server)
	}
	issuer := d.asm.Issuer
	l.log.Info("discovered the authorization server", "issuer", issuer, "resource", d.resource)

	st, err := l.readState()
	if err != nil {
		return nil, err
	}
	if err := l.checkClientIssuer(st, issuer); err != nil {
		return nil, err
	}
	scopes := l.selectScopes(ch, d, st)

	client, cached, port, err := l.chooseClient(d, st)
	if err != nil {
		return nil, err
	}
	cb, err := listenCallback(cfg.Server, port)
	if err != nil && port != 0 && cached != nil && cfg.CallbackPort == 0 {
		// The cached registration's port is taken: register anew on another.
		client, cached = nil, nil
		cb, err = listenCallback(cfg.Server, 0)
	}
	if err != nil {
		return nil, err
	}
	defer cb.close()
	redirectURI := cb.redirectURI()
	if client == nil {
		if client, err = l.register(ctx, d, redirectURI); err != nil {
			return nil, err
		}
	}

	verifier, challenge := newPKCE()
	state := cb.state
	authURL, err := authorizationURL(d.asm.AuthorizationEndpoint, url.Values{
		"response_type":         {"code"},
		"client_id":             {client.ID},
		"redirect_uri":          {redirectURI},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"state":                 {state},
		"resource":              {d.resource},
	}, scopes)
	if err != nil {
		return nil, err
	}

	browserErr := make(chan error, 1)
	go func() {
		if err := cfg.OpenBrowser(authURL); err != nil {
			browserErr <- err
		}
	}()
	l.log.Info("waiting for the browser sign-in", "redirect_uri", redirectURI)

	var res callbackResult
	select {
	case <-ctx.Done():
		if n := cb.refused.Load(); n > 0 {
			return nil, &refusedCallbacksError{n: n, err: ctx.Err()}
		}
		return nil, ctx.Err()
	case err := <-browserErr:
		return nil, fmt.Errorf("open the browser to sign in to %s: %w; run keyport login %s --no-browser and open the printed URL",
			cfg.Server, err, cfg.Server)
	case res = <-cb.results:
	}
	// Whatever happens next, the browser shows it.
	defer func() { res.reply <- err }()

	q := res.query // the callback checked its state
	if code := q.Get("error"); code != "" {
		if cached != nil && (code == "invalid_client" || code == "unauthorized_client") {
			l.dropCachedClient(st, issuer)
		}
		return nil, fmt.Errorf("the authorization server of %s refused the sign-in: %s%s",
			cfg.Server, sanitize(code, 64), describe(q.Get("error_description")))
	}
	if err := checkIssuer(q, issuer, d.asm.AuthorizationResponseIssParameterSupported); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Server, err)
	}
	code := q.Get("code")
	if code == "" {
		return nil, fmt.Errorf("the sign-in response for %s has no authorization code", cfg.Server)
	}

	now := cfg.Now()
	tr, err := requestToken(ctx, cfg.HTTPClient, d.asm.TokenEndpoint, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
		"resource":      {d.resource},
	}, *client)
	if err != nil {
		var te *TokenError
		if cached != nil && errors.As(err, &te) && te.Code == "invalid_client" {
			l.dropCachedClient(st, issuer)
		}
		if client.Registration == regPreregistered && errors.As(err, &te) && te.clientRefused() {
			return nil, &ClientRefusedError{Server: cfg.Server, ClientID: client.ID, HasSecret: client.Secret != "", Err: err}
		}
		return nil, fmt.Errorf("exchange the authorization code of %s: %w", cfg.Server, err)
	}
	granted := scopes
	if tr.Scope != "" {
		granted = strings.Fields(tr.Scope)
	}
	rec := &tokenRecord{
		Version:            recordVersion,
		Issuer:             issuer,
		Resource:           d.resource,
		ServerURL:          cfg.ResourceURL,
		TokenEndpoint:      d.asm.TokenEndpoint,
		RevocationEndpoint: d.asm.RevocationEndpoint,
		Client:             *client,
		AccessToken:        tr.AccessToken,
		TokenType:          "Bearer",
		RefreshToken:       tr.RefreshToken,
		Expiry:             expiryFrom(now, tr.ExpiresIn),
		Scopes:             granted,
		ObtainedAt:         now,
		SignedInAt:         now,
	}
	if err := l.save(ctx, st, rec, cached == nil && client.Registration == regDynamic); err != nil {
		return nil, err
	}
	l.log.Info("signed in", "issuer", issuer, "scopes", strings.Join(granted, " "),
		"expiry", rec.Expiry, "refreshable", rec.RefreshToken != "")
	return &LoginResult{
		Issuer:       issuer,
		Resource:     d.resource,
		Scopes:       granted,
		Expiry:       rec.Expiry,
		Refreshable:  rec.RefreshToken != "",
		Registration: client.Registration,
	}, nil
}

// describe formats an optional error description.
func describe(desc string) string {
	if desc = sanitize(desc, 200); desc != "" {
		return " (" + desc + ")"
	}
	return ""
}

// selectScopes applies the MCP scope selection strategy: configured
// scopes, else the challenge's, else the resource's scopes_supported; plus
// the scopes of an earlier sign-in at the same issuer (step-up keeps what
// was granted), the scopes a 403 asked for, and offline_access when the
// authorization server offers it (Keyport stores refresh tokens securely).
func (l *login) selectScopes(ch Challenge, d *discovered, st *loginState) []string {
	var scopes []string
	switch {
	case len(l.cfg.Scopes) > 0:
		scopes = unionScopes(nil, l.cfg.Scopes)
	case len(ch.Scopes) > 0:
		scopes = unionScopes(nil, ch.Scopes)
		if st.prev != nil && st.prev.Issuer == d.asm.Issuer && st.prev.Resource == d.resource {
			scopes = unionScopes(st.prev.Scopes, scopes)
		}
	case d.prm != nil && len(d.prm.ScopesSupported) > 0:
		scopes = unionScopes(nil, d.prm.ScopesSupported)
	}
	if st.stepUp != nil {
		scopes = unionScopes(scopes, st.stepUp.Scopes)
	}
	if len(scopes) > 0 && slices.Contains(d.asm.ScopesSupported, "offline_access") {
		scopes = unionScopes(scopes, []string{"offline_access"})
	}
	return scopes
}

// chooseClient picks the OAuth client in the MCP spec's order:
// pre-registered, Client ID Metadata Document, dynamic registration. A
// dynamic registration cached for this issuer is reused when its redirect
// port can be. client is nil when a registration is still needed (after
// the callback listener is up); port is the port to listen on.
func (l *login) chooseClient(d *discovered, st *loginState) (client, cached *clientInfo, port int, err error) {
	cfg, asm := l.cfg, d.asm
	port = cfg.CallbackPort
	if cfg.ClientID != "" {
		c := &clientInfo{ID: cfg.ClientID, Secret: cfg.ClientSecret, Registration: regPreregistered,
			AuthMethod: secretAuthMethod(cfg.ClientSecret, asm.TokenEndpointAuthMethodsSupported)}
		return c, nil, port, nil
	}
	if cfg.ClientMetadataURL != "" && asm.ClientIDMetadataDocumentSupported {
		if port == 0 {
			// The document lists one redirect URI: listen where it says.
			port = DefaultMetadataCallbackPort
		}
		return &clientInfo{ID: cfg.ClientMetadataURL, AuthMethod: "none", Registration: regMetadataDocument}, nil, port, nil
	}
	if asm.RegistrationEndpoint == "" {
		return nil, nil, 0, fmt.Errorf("the authorization server of %s (%s) offers no dynamic client registration "+
			"and no client ID metadata documents: register an OAuth client for Keyport there (redirect URI "+
			"http://127.0.0.1:PORT/callback) and set auth.client_id and auth.callback_port for %s in servers.yaml",
			cfg.Server, asm.Issuer, cfg.Server)
	}
	if c, ok := st.clients.Clients[asm.Issuer]; ok && c.ID != "" && usableRegistration(c, cfg.Now()) {
		cport := redirectPort(c.RedirectURI)
		if cport != 0 && (cfg.CallbackPort == 0 || cfg.CallbackPort == cport) {
			return &c, &c, cport, nil
		}
	}
	return nil, nil, port, nil
}

// checkClientIssuer keeps a pre-registered client's secret with the
// authorization server it was registered at. Which one that is comes from
// the MCP server's metadata, which the server controls: after a sign-in,
// a 401 or a 403 insufficient_scope whose resource_metadata names another
// authorization server would make Keyport sign in again there, and send
// it the client secret (and later the refresh grants). So once the client
// has signed in at one issuer, a sign-in at another with its secret is
// refused until the user signs out (keyport logout), which is how they say
// the move is real. Dynamic registrations are per issuer anyway, and a
// public client's ID is no secret.
func (l *login) checkClientIssuer(st *loginState, issuer string) error {
	cfg, prev := l.cfg, st.prev
	if cfg.ClientID == "" || cfg.ClientSecret == "" || prev == nil || prev.Client.Registration != regPreregistered ||
		prev.Client.ID != cfg.ClientID || strings.TrimSuffix(prev.Issuer, "/") == strings.TrimSuffix(issuer, "/") {
		return nil
	}
	l.log.Warn("the server names another authorization server than the pre-registered client's; not sending it the client secret",
		"client_issuer", prev.Issuer, "named", issuer)
	return fmt.Errorf("%s now names the authorization server %s, but its pre-registered client %q signed in at %s: "+
		"Keyport does not send the client's secret to another authorization server. If %s really moved, "+
		"run keyport logout %s, check auth.client_id, then keyport login %s",
		cfg.Server, sanitize(issuer, 200), cfg.ClientID, prev.Issuer, cfg.Server, cfg.Server, cfg.Server)
}

// usableRegistration reports whether a cached registration can be reused.
func usableRegistration(c clientInfo, now time.Time) bool {
	return c.SecretExpiresAt.IsZero() || now.Before(c.SecretExpiresAt.Add(-time.Minute))
}

// redirectPort is the port of a loopback redirect URI, 0 if none.
func redirectPort(redirectURI string) int {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// secretAuthMethod picks the token endpoint auth method of a
// pre-registered client: none without a secret, else client_secret_basic
// (which every server must support, RFC 6749 2.3.1) unless the server
// lists only client_secret_post.
func secretAuthMethod(secret string, supported []string) string {
	switch {
	case secret == "":
		return "none"
	case len(supported) == 0 || slices.Contains(supported, "client_secret_basic"):
		return "client_secret_basic"
	case slices.Contains(supported, "client_secret_post"):
		return "client_secret_post"
	}
	return "client_secret_basic"
}

// register performs dynamic client registration (RFC 7591) as a native
// public client when the server allows it.
func (l *login) register(ctx context.Context, d *discovered, redirectURI string) (*clientInfo, error) {
	supported := d.asm.TokenEndpointAuthMethodsSupported
	method := "none"
	switch {
	case len(supported) == 0 || slices.Contains(supported, "none"):
	case slices.Contains(supported, "client_secret_post"):
		method = "client_secret_post"
	default:
		method = "client_secret_basic"
	}
	meta := &oauthex.ClientRegistrationMetadata{
		RedirectURIs:            []string{redirectURI},
		TokenEndpointAuthMethod: method,
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		ClientName:              l.cfg.ClientName,
		ApplicationType:         "native",
	}
	resp, err := oauthex.RegisterClient(ctx, d.asm.RegistrationEndpoint, meta, l.cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("register Keyport as a client of %s's authorization server (%s): %w",
			l.cfg.Server, d.asm.RegistrationEndpoint, err)
	}
	got := resp.TokenEndpointAuthMethod
	if got == "" {
		got = method
		if method == "none" && resp.ClientSecret != "" {
			got = "client_secret_basic" // RFC 7591's default
		}
	}
	switch got {
	case "none", "client_secret_post", "client_secret_basic":
	default:
		return nil, fmt.Errorf("the authorization server of %s registered Keyport with token endpoint auth method %q, which Keyport does not support",
			l.cfg.Server, sanitize(got, 40))
	}
	if got != "none" && resp.ClientSecret == "" {
		return nil, fmt.Errorf("the authorization server of %s registered Keyport for %s without a client secret", l.cfg.Server, got)
	}
	l.log.Info("registered a client dynamically", "auth_method", got)
	return &clientInfo{
		ID:              resp.ClientID,
		Secret:          resp.ClientSecret,
		AuthMethod:      got,
		Registration:    regDynamic,
		RedirectURI:     redirectURI,
		SecretExpiresAt: resp.ClientSecretExpiresAt,
	}, nil
}

// dropCachedClient forgets the cached registration at issuer after the
// authorization server rejected it.
func (l *login) dropCachedClient(st *loginState, issuer string) {
	unlock, err := serverLock(context.Background(), l.cfg.LockDir, l.cfg.Server)
	if err != nil {
		l.log.Warn("could not drop a rejected client registration", "err", err)
		return
	}
	defer unlock()
	var cur clientsRecord
	if found, err := loadJSON(l.cfg.Store, l.cfg.Server, KindClients, &cur); err != nil || !found {
		return
	}
	delete(cur.Clients, issuer)
	if err := saveJSON(l.cfg.Store, l.cfg.Server, KindClients, cur); err != nil {
		l.log.Warn("could not drop a rejected client registration", "err", err)
	}
}

// save writes the sign-in under the server's lock: the new registration
// (if any), then the tokens, then clears the step-up request. A failure
// restores what was there before.
func (l *login) save(ctx context.Context, st *loginState, rec *tokenRecord, newRegistration bool) error {
	cfg := l.cfg
	unlock, err := serverLock(ctx, cfg.LockDir, cfg.Server)
	if err != nil {
		return err
	}
	defer unlock()
	// Re-read the registrations: another process may have added one.
	var clients clientsRecord
	oldClients, clientsErr := cfg.Store.Get(cfg.Server, KindClients)
	hadClients := clientsErr == nil
	if clientsErr != nil && !errors.Is(clientsErr, ErrNotFound) {
		return fmt.Errorf("read %s/%s from the keychain: %w", cfg.Server, KindClients, clientsErr)
	}
	if newRegistration {
		if _, err := loadJSON(cfg.Store, cfg.Server, KindClients, &clients); err != nil && !errors.Is(err, errCorrupt) {
			return err
		}
		if clients.Clients == nil {
			clients.Clients = map[string]clientInfo{}
		}
		clients.Version = recordVersion
		clients.Clients[rec.Issuer] = rec.Client
		if err := saveJSON(cfg.Store, cfg.Server, KindClients, clients); err != nil {
			return err
		}
	}
	if err := saveJSON(cfg.Store, cfg.Server, KindToken, rec); err != nil {
		if newRegistration {
			var rerr error
			if hadClients {
				rerr = cfg.Store.Set(cfg.Server, KindClients, oldClients)
			} else {
				rerr = deleteKind(cfg.Store, cfg.Server, KindClients)
			}
			if rerr != nil {
				l.log.Error("could not undo a partial sign-in; run keyport logout", "err", rerr)
			}
		}
		return err
	}
	if st.stepUp != nil {
		if err := deleteKind(cfg.Store, cfg.Server, KindStepUp); err != nil {
			// Harmless: the next sign-in asks for scopes already granted.
			l.log.Warn("could not clear the step-up request", "err", err)
		}
	}
	return nil
}

// newPKCE returns a PKCE code verifier (RFC 7636: 43 characters from 32
// random bytes) and its S256 challenge.
func newPKCE() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return pkceChallenge(base64.RawURLEncoding.EncodeToString(b))
}

// pkceChallenge returns verifier and its S256 code challenge.
func pkceChallenge(verifier string) (string, string) {
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// validState compares states in constant time.
func validState(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// checkIssuer applies RFC 9207: when the server advertises the iss
// parameter it must be present; when present it must equal the issuer
// (simple string comparison, no normalization).
func checkIssuer(q url.Values, issuer string, advertised bool) error {
	iss := q.Get("iss")
	if iss == "" {
		if advertised {
			return errors.New("the authorization server advertises the RFC 9207 iss parameter but the sign-in response has none: refusing it")
		}
		return nil
	}
	if iss != issuer {
		return fmt.Errorf("the sign-in response comes from issuer %q, not %q: refusing it (RFC 9207 mix-up protection)",
			sanitize(iss, 200), issuer)
	}
	return nil
}

// authorizationURL adds params (and scope) to the authorization endpoint,
// keeping any query it already has.
func authorizationURL(endpoint string, params url.Values, scopes []string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("authorization_endpoint %q: %w", endpoint, err)
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if len(scopes) > 0 {
		q.Set("scope", strings.Join(scopes, " "))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// The unauthenticated requests Login sends to get the server's 401 and its
// WWW-Authenticate challenge: an initialize, and when the server lets that
// through (many do: the session is public, its methods are not), what a
// client sends next, up to a tools/list.
const (
	probeVersion = "2025-11-25"
	probeBody    = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + probeVersion + `",` +
		`"capabilities":{},"clientInfo":{"name":"keyport","version":"sign-in probe"}}}`
	probeInitialized = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	probeListTools   = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
)

// probe sends unauthenticated requests until one is answered 401 or 403
// and returns that answer's challenge (zero when none was) and the status
// of the last answer. The challenge's scope is what the MCP spec says a
// client should ask for first.
func probe(ctx context.Context, hc *http.Client, server, serverURL string) (Challenge, int, error) {
	var sid string
	defer func() {
		if sid == "" {
			return
		}
		// The server opened a session for the probe: close it.
		if del, err := http.NewRequestWithContext(ctx, http.MethodDelete, serverURL, nil); err == nil {
			del.Header.Set("Mcp-Session-Id", sid)
			del.Header.Set("Mcp-Protocol-Version", probeVersion)
			if r, err := hc.Do(del); err == nil {
				r.Body.Close()
			}
		}
	}()
	status := 0
	for i, body := range []string{probeBody, probeInitialized, probeListTools} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, serverURL, strings.NewReader(body))
		if err != nil {
			return Challenge{}, 0, fmt.Errorf("the URL of %s: %w", server, err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", probeVersion)
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := hc.Do(req)
		if err != nil {
			if i > 0 {
				break // the initialize's answer stands
			}
			return Challenge{}, 0, fmt.Errorf("reach %s at %s: %w", server, serverURL, scrubURLError(err))
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if i == 0 {
			sid = resp.Header.Get("Mcp-Session-Id")
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			ch, err := ParseChallenge(resp.Header)
			if err != nil {
				return Challenge{}, resp.StatusCode, fmt.Errorf("%s: %w", server, err)
			}
			return ch, resp.StatusCode, nil
		}
		if i == 0 {
			status = resp.StatusCode
		}
		if resp.StatusCode/100 != 2 {
			break // not an MCP session Keyport can go on with
		}
	}
	return Challenge{}, status, nil
}
