package oauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// CredentialsConfig configures a [Credentials] source.
type CredentialsConfig struct {
	// Server is the server's name (the keychain key). Required.
	Server string
	// ResourceURL is the server's MCP URL. When set, a sign-in made for
	// another URL is not used (the user must sign in again), so a token
	// never reaches a server it was not issued for.
	ResourceURL string
	// Store is the keychain. Required.
	Store TokenStore
	// HTTPClient talks to the token endpoint; nil: [DefaultHTTPClient].
	HTTPClient *http.Client
	// LockDir holds the per-server lock files; "": DefaultLockDir().
	LockDir string
	// Logger receives logs (never a secret); nil: slog.Default().
	Logger *slog.Logger
	// RefreshBefore is how long before expiry a token is refreshed (at most
	// half its lifetime); 0: one minute.
	RefreshBefore time.Duration
	// RecheckEvery is how often a signed-out source looks in the keychain
	// again (a sign-in from another process shows up within it); 0: 2 s.
	RecheckEvery time.Duration
	// MaxStepUps bounds the sign-ins asked for one scope set after 403
	// insufficient_scope answers; 0: 2 (with the first sign-in, at most
	// three authorizations, as the MCP spec's "a few times" suggests).
	MaxStepUps int
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// OnStateChange, when set, is called (never concurrently) whenever the
	// sign-in state changes: the tray's "Sign in needed" hangs off it. It
	// runs while the source is busy: it must not block, and must call no
	// method of the source but State (hand the state to another goroutine).
	OnStateChange func(State)
}

// State is a snapshot of a server's sign-in, without secrets.
type State struct {
	Server   string
	SignedIn bool
	Issuer   string
	Scopes   []string
	Expiry   time.Time
	// NeedsSignIn is set when requests fail until the user signs in again.
	NeedsSignIn *SignInNeededError
	// StepUpScopes, when set, are scopes some requests need that the
	// current sign-in lacks: other requests still work, but the user should
	// sign in again ("Sign in needed" in the tray).
	StepUpScopes []string
	// Err is a transient failure (the token endpoint is unreachable).
	Err error
	// Registration is how the signed-in client was obtained:
	// "preregistered", "metadata-document" or "dynamic" ("" when not
	// signed in).
	Registration string
}

// Credentials is the per-request credentials source of a server's proxies
// and bridges. Its Header method is a proxymgr CredentialsFunc. It is safe
// for concurrent use; several Credentials for one server, in one process or
// many, coordinate through the server's lock file.
type Credentials struct {
	cfg CredentialsConfig
	log *slog.Logger

	// refreshMu makes refreshes (and reloads) single-flight in-process.
	refreshMu sync.Mutex

	mu          sync.Mutex
	rec         *tokenRecord
	needs       *SignInNeededError
	transient   error
	checkedAt   time.Time
	deadRefresh [32]byte // hash of the refresh token the server rejected
	stepUp      []string
	stepUps     map[string]int
	published   string
}

// NewCredentials returns the credentials source of one server.
func NewCredentials(cfg CredentialsConfig) (*Credentials, error) {
	if cfg.Server == "" {
		return nil, errors.New("oauth credentials: the server name is empty")
	}
	if cfg.Store == nil {
		return nil, errors.New("oauth credentials: no keychain store configured")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = DefaultHTTPClient()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RefreshBefore <= 0 {
		cfg.RefreshBefore = time.Minute
	}
	if cfg.RecheckEvery <= 0 {
		cfg.RecheckEvery = 2 * time.Second
	}
	if cfg.MaxStepUps <= 0 {
		cfg.MaxStepUps = 2
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LockDir == "" {
		d, err := DefaultLockDir()
		if err != nil {
			return nil, err
		}
		cfg.LockDir = d
	}
	return &Credentials{cfg: cfg, log: cfg.Logger.With("server", cfg.Server), stepUps: map[string]int{}}, nil
}

// Header returns the Authorization header for the next upstream request,
// refreshing the token first when it is about to expire. The error is a
// *SignInNeededError (errors.Is ErrSignInNeeded) when the user must sign
// in; other errors are transient (token endpoint unreachable) and say so.
func (c *Credentials) Header(ctx context.Context) (http.Header, error) {
	rec, err := c.token(ctx, "")
	if err != nil {
		return nil, err
	}
	v := rec.authz
	if v == "" {
		v = "Bearer " + rec.AccessToken
	}
	return http.Header{"Authorization": {v}}, nil
}

// Rejected tells the source that the server answered 401 to a request
// sent with the Authorization value authorization: the token was revoked
// or expired early. It refreshes (unless another process already did) and
// returns nil when a new token is ready (retry the request once), or the
// error to show.
func (c *Credentials) Rejected(ctx context.Context, authorization string) error {
	tok, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || tok == "" {
		tok = "\x00" // no usable token was sent: any stored one is newer
	}
	_, err := c.token(ctx, tok)
	return err
}

// Refused is Rejected with the 401's headers. When its challenge points
// at protected resource metadata whose authorization_servers no longer
// list the issuer of the current sign-in (the server moved to another
// authorization server), the token is not refreshed there: the error is a
// *SignInNeededError, and the next sign-in registers with the new one.
func (c *Credentials) Refused(ctx context.Context, authorization string, respHeader http.Header) error {
	if moved := c.movedIssuer(ctx, respHeader); moved != "" {
		c.refreshMu.Lock()
		defer c.refreshMu.Unlock()
		defer c.publish()
		c.log.Warn("the server names another authorization server; sign in needed", "authorization_server", moved)
		return c.setNeeds(c.cfg.Now(), signInNeeded(c.cfg.Server, "the server now uses another authorization server ("+moved+")", nil))
	}
	return c.Rejected(ctx, authorization)
}

// movedIssuer returns the authorization server the 401's resource metadata
// names when it is not the current sign-in's issuer, else "".
func (c *Credentials) movedIssuer(ctx context.Context, respHeader http.Header) string {
	ch, err := ParseChallenge(respHeader)
	if err != nil || ch.ResourceMetadata == "" || c.cfg.ResourceURL == "" {
		return ""
	}
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	if rec == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	prm, err := discoverResource(ctx, c.cfg.HTTPClient, c.cfg.Server, c.cfg.ResourceURL, ch)
	if err != nil || prm == nil {
		return ""
	}
	for _, as := range prm.AuthorizationServers {
		if strings.TrimSuffix(as, "/") == strings.TrimSuffix(rec.Issuer, "/") {
			return ""
		}
	}
	return sanitize(prm.AuthorizationServers[0], 200)
}

// AwaitSignIn waits until the keychain holds a usable sign-in made by a
// browser sign-in after since (in this process or another: keyport login,
// the tray's "Sign in to NAME"), adopts it and returns nil; or returns
// ctx's error. A proxy's request that needs a new sign-in waits on it.
func (c *Credentials) AwaitSignIn(ctx context.Context, since time.Time) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, err := loadToken(c.cfg.Store, c.cfg.Server)
		if err == nil && rec != nil && rec.SignedInAt.After(since) && c.check(rec) == nil && c.fresh(rec, c.cfg.Now()) {
			c.refreshMu.Lock()
			c.adopt(rec)
			c.publish()
			c.refreshMu.Unlock()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Reload drops what the source remembers, so the next request reads the
// keychain again. The app calls it after an in-process Login or Logout.
func (c *Credentials) Reload() {
	c.mu.Lock()
	c.rec, c.needs, c.transient, c.checkedAt = nil, nil, nil, time.Time{}
	c.mu.Unlock()
}

// Reread reads the keychain's record now (never the network) and makes it
// the current one. Unlike Reload followed by Status, there is no moment in
// which the source reads as signed out: a view or request looking while
// the app takes up a new sign-in sees the old state or the new one. It may
// block on the keychain: call it off the UI goroutine.
func (c *Credentials) Reread() State {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	c.mu.Lock()
	c.checkedAt = time.Time{}
	c.mu.Unlock()
	c.peek()
	c.publish()
	return c.State()
}

// Status returns the sign-in state, reading the keychain first (never the
// network) when the source has not looked yet, so a server shows as signed
// in before its first request. It may block on the keychain: call it off
// the UI goroutine.
func (c *Credentials) Status() State {
	c.mu.Lock()
	known := c.rec != nil || c.needs != nil || c.transient != nil
	c.mu.Unlock()
	if !known {
		c.refreshMu.Lock()
		c.peek()
		c.publish()
		c.refreshMu.Unlock()
	}
	return c.State()
}

// peek loads the keychain's record without refreshing. refreshMu is held.
func (c *Credentials) peek() {
	now := c.cfg.Now()
	rec, err := loadToken(c.cfg.Store, c.cfg.Server)
	switch {
	case err != nil && !errors.Is(err, errCorrupt):
		c.setTransient(now, fmt.Errorf("read the sign-in of %s: %w", c.cfg.Server, err))
	case err != nil:
		c.setNeeds(now, signInNeeded(c.cfg.Server, "the keychain entry is unusable", err))
	default:
		if e := c.check(rec); e != nil {
			c.setNeeds(now, e)
		} else if !c.fresh(rec, now) && c.unrefreshable(rec, "") != nil {
			c.setNeeds(now, c.unrefreshable(rec, ""))
		} else {
			c.adopt(rec) // an expired but refreshable token is refreshed on the next request
		}
	}
}

// State returns the current sign-in state (as last seen; it reads nothing).
func (c *Credentials) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stateLocked()
}

func (c *Credentials) stateLocked() State {
	s := State{Server: c.cfg.Server, NeedsSignIn: c.needs, Err: c.transient}
	if c.rec == nil || !containsAll(c.rec.Scopes, c.stepUp) {
		// A step-up is only pending while the current sign-in lacks it.
		s.StepUpScopes = slices.Clone(c.stepUp)
	}
	if c.rec != nil && c.needs == nil {
		s.SignedIn = true
		s.Issuer = c.rec.Issuer
		s.Scopes = slices.Clone(c.rec.Scopes)
		s.Expiry = c.rec.Expiry
		s.Registration = c.rec.Client.Registration
	}
	return s
}

// publish calls OnStateChange when the state differs from the last one
// published. Called with refreshMu held (so never concurrently).
func (c *Credentials) publish() {
	if c.cfg.OnStateChange == nil {
		return
	}
	c.mu.Lock()
	s := c.stateLocked()
	key := fmt.Sprintf("%t|%s|%v|%s|%v|%v", s.SignedIn, s.Issuer, s.Scopes, s.Expiry, s.StepUpScopes, s.Err != nil)
	if s.NeedsSignIn != nil {
		key += "|" + s.NeedsSignIn.Reason
	}
	changed := key != c.published
	c.published = key
	c.mu.Unlock()
	if changed {
		c.cfg.OnStateChange(s)
	}
}

// threshold is how long before expiry rec is refreshed: RefreshBefore, but
// at most half the token's lifetime.
func (c *Credentials) threshold(rec *tokenRecord) time.Duration {
	t := c.cfg.RefreshBefore
	if life := rec.Expiry.Sub(rec.ObtainedAt); life > 0 && life/2 < t {
		t = life / 2
	}
	return t
}

// fresh reports whether rec can be used as is at now.
func (c *Credentials) fresh(rec *tokenRecord, now time.Time) bool {
	return rec.Expiry.IsZero() || now.Before(rec.Expiry.Add(-c.threshold(rec)))
}

// token returns a usable token record. rejected, when set, is an access
// token the server refused: a record holding it is not usable.
func (c *Credentials) token(ctx context.Context, rejected string) (*tokenRecord, error) {
	if rejected == "" {
		if rec, err, ok := c.cached(c.cfg.Now()); ok {
			return rec, err
		}
	}
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	defer c.publish()
	if rejected == "" {
		// Another goroutine may have refreshed while this one waited.
		if rec, err, ok := c.cached(c.cfg.Now()); ok {
			return rec, err
		}
	}
	return c.load(ctx, rejected)
}

// cached answers from memory when it can: a fresh token, or a recent
// sign-in-needed or transient failure.
func (c *Credentials) cached(now time.Time) (*tokenRecord, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec != nil && c.needs == nil && c.transient == nil && c.fresh(c.rec, now) {
		return c.rec, nil, true
	}
	if (c.needs != nil || c.transient != nil) && now.Sub(c.checkedAt) < c.cfg.RecheckEvery && now.Sub(c.checkedAt) >= 0 {
		if c.needs != nil {
			return nil, c.needs, true
		}
		if c.rec != nil && c.rec.Expiry.After(now) {
			return c.rec, nil, true // still valid: use it while the endpoint is down
		}
		return nil, c.transient, true
	}
	return nil, nil, false
}

// usable reports whether rec may be sent now (fresh, and not the rejected token).
func (c *Credentials) usable(rec *tokenRecord, now time.Time, rejected string) bool {
	return c.fresh(rec, now) && (rejected == "" || rec.AccessToken != rejected)
}

// check returns why rec cannot be used for this source at all, or nil.
func (c *Credentials) check(rec *tokenRecord) *SignInNeededError {
	if rec == nil {
		return signInNeeded(c.cfg.Server, "not signed in", nil)
	}
	if c.cfg.ResourceURL != "" && rec.ServerURL != c.cfg.ResourceURL && !resourceCovers(rec.Resource, c.cfg.ResourceURL) {
		return signInNeeded(c.cfg.Server, fmt.Sprintf("the sign-in is for %s, not %s", rec.ServerURL, c.cfg.ResourceURL), nil)
	}
	return nil
}

// load reads the keychain and refreshes when needed. refreshMu is held.
func (c *Credentials) load(ctx context.Context, rejected string) (*tokenRecord, error) {
	now := c.cfg.Now()
	rec, err := loadToken(c.cfg.Store, c.cfg.Server)
	if err != nil && !errors.Is(err, errCorrupt) {
		return nil, c.setTransient(now, fmt.Errorf("read the sign-in of %s: %w", c.cfg.Server, err))
	}
	if err != nil {
		return nil, c.setNeeds(now, signInNeeded(c.cfg.Server, "the keychain entry is unusable", err))
	}
	if e := c.check(rec); e != nil {
		return nil, c.setNeeds(now, e)
	}
	if c.usable(rec, now, rejected) {
		return c.adopt(rec), nil
	}
	if e := c.unrefreshable(rec, rejected); e != nil {
		return nil, c.setNeeds(now, e)
	}

	// Refresh under the cross-process lock; re-read first: another process
	// may have refreshed (and rotated the refresh token) meanwhile.
	unlock, err := serverLock(ctx, c.cfg.LockDir, c.cfg.Server)
	if err != nil {
		return nil, c.setTransient(now, err)
	}
	defer unlock()
	now = c.cfg.Now()
	rec, err = loadToken(c.cfg.Store, c.cfg.Server)
	if err != nil {
		return nil, c.setTransient(now, fmt.Errorf("read the sign-in of %s: %w", c.cfg.Server, err))
	}
	if e := c.check(rec); e != nil {
		return nil, c.setNeeds(now, e)
	}
	if c.usable(rec, now, rejected) {
		return c.adopt(rec), nil
	}
	if e := c.unrefreshable(rec, rejected); e != nil {
		return nil, c.setNeeds(now, e)
	}
	return c.refresh(ctx, rec, now)
}

// unrefreshable returns why rec cannot be refreshed, or nil.
func (c *Credentials) unrefreshable(rec *tokenRecord, rejected string) *SignInNeededError {
	if rec.RefreshToken == "" {
		reason := "the access token expired and there is no refresh token"
		if rejected != "" {
			reason = "the server rejected the access token and there is no refresh token"
		}
		return signInNeeded(c.cfg.Server, reason, nil)
	}
	c.mu.Lock()
	dead := c.deadRefresh == sha256.Sum256([]byte(rec.RefreshToken))
	c.mu.Unlock()
	if dead {
		return signInNeeded(c.cfg.Server, "the refresh token was rejected", nil)
	}
	return nil
}

// refresh redeems rec's refresh token and stores the result. The server
// lock is held.
func (c *Credentials) refresh(ctx context.Context, rec *tokenRecord, now time.Time) (*tokenRecord, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {rec.RefreshToken},
	}
	if rec.Resource != "" {
		form.Set("resource", rec.Resource)
	}
	c.log.Debug("refreshing the access token", "issuer", rec.Issuer)
	tr, err := requestToken(ctx, c.cfg.HTTPClient, rec.TokenEndpoint, form, rec.Client)
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) && te.rejectsGrant() {
			c.mu.Lock()
			c.deadRefresh = sha256.Sum256([]byte(rec.RefreshToken))
			c.mu.Unlock()
			c.log.Warn("the refresh token was rejected; sign in needed", "err", err)
			reason := "the refresh token was rejected: " + te.Code
			if rec.Client.Registration == regPreregistered && te.clientRefused() {
				reason = fmt.Sprintf("the authorization server refused the pre-registered client %q (%s): check auth.client_id and "+
					"keyport secret set %s client-secret", rec.Client.ID, te.Code, c.cfg.Server)
			}
			return nil, c.setNeeds(now, signInNeeded(c.cfg.Server, reason, err))
		}
		c.log.Warn("refresh failed", "err", err)
		terr := fmt.Errorf("the sign-in to %s could not be refreshed (%w); Keyport retries on the next request", c.cfg.Server, err)
		c.setTransient(now, terr)
		if rec.Expiry.After(now) {
			return c.adoptKeepingError(rec), nil // still valid for a while
		}
		return nil, terr
	}
	next := *rec
	next.AccessToken = tr.AccessToken
	next.TokenType = "Bearer"
	if tr.RefreshToken != "" {
		next.RefreshToken = tr.RefreshToken
	}
	next.Expiry = expiryFrom(now, tr.ExpiresIn)
	if tr.Scope != "" {
		next.Scopes = strings.Fields(tr.Scope)
	}
	next.ObtainedAt = now
	if err := saveJSON(c.cfg.Store, c.cfg.Server, KindToken, &next); err != nil {
		// The old refresh token may be spent: this process keeps the new
		// one in memory; others will be asked to sign in again.
		c.log.Error("could not store the refreshed token", "err", err)
	}
	c.log.Info("refreshed the access token", "expiry", next.Expiry)
	return c.adopt(&next), nil
}

// adopt makes rec the current token and clears failures.
func (c *Credentials) adopt(rec *tokenRecord) *tokenRecord {
	rec.authz = "Bearer " + rec.AccessToken
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec, c.needs, c.transient = rec, nil, nil
	if len(c.stepUp) > 0 && containsAll(rec.Scopes, c.stepUp) {
		c.stepUp = nil
	}
	return rec
}

// adoptKeepingError adopts rec but keeps the transient error for State.
func (c *Credentials) adoptKeepingError(rec *tokenRecord) *tokenRecord {
	rec.authz = "Bearer " + rec.AccessToken
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec, c.needs = rec, nil
	return rec
}

func (c *Credentials) setNeeds(now time.Time, e *SignInNeededError) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.needs, c.transient, c.checkedAt = e, nil, now
	c.rec = nil
	return e
}

func (c *Credentials) setTransient(now time.Time, err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transient, c.checkedAt = err, now
	return err
}

// StepUpAction is what a proxy does with an upstream 403.
type StepUpAction int

const (
	// PassThrough: not an insufficient_scope challenge; forward the 403.
	PassThrough StepUpAction = iota
	// Retry: a newer sign-in with the needed scopes is in the keychain;
	// retry the request once with a fresh Header.
	Retry
	// SignIn: the user must sign in again with more scopes; the error is a
	// *SignInNeededError naming them. Other requests keep working.
	SignIn
	// GiveUp: signing in again did not help; the error is a
	// *ScopeDeniedError. Answer the request with it.
	GiveUp
)

func (a StepUpAction) String() string {
	switch a {
	case PassThrough:
		return "pass-through"
	case Retry:
		return "retry"
	case SignIn:
		return "sign-in"
	case GiveUp:
		return "give-up"
	}
	return fmt.Sprintf("StepUpAction(%d)", int(a))
}

// StepUp handles a 403 from the server for a request sent with the
// Authorization value authorization (MCP "step-up authorization"). For an
// insufficient_scope challenge it records the scopes the next sign-in must
// request (in the keychain, so `keyport login` in any process asks for
// them) and bounds how often one scope set is asked for.
func (c *Credentials) StepUp(ctx context.Context, h http.Header, authorization string) (StepUpAction, error) {
	ch, err := ParseChallenge(h)
	if err != nil || ch.Error != "insufficient_scope" {
		return PassThrough, nil
	}
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	defer c.publish()

	now := c.cfg.Now()
	rec, err := loadToken(c.cfg.Store, c.cfg.Server)
	if err != nil && !errors.Is(err, errCorrupt) {
		return SignIn, c.setTransient(now, fmt.Errorf("read the sign-in of %s: %w", c.cfg.Server, err))
	}
	if e := c.check(rec); e != nil {
		return SignIn, c.setNeeds(now, e)
	}
	sent, _ := strings.CutPrefix(authorization, "Bearer ")
	var have []string
	if rec != nil {
		have = rec.Scopes
	}
	want := unionScopes(have, ch.Scopes)
	key := strings.Join(slices.Sorted(slices.Values(want)), " ")

	c.mu.Lock()
	c.stepUps[key]++
	attempts := c.stepUps[key]
	c.mu.Unlock()
	if attempts > c.cfg.MaxStepUps {
		c.log.Warn("step-up retry bound reached", "scopes", key, "attempts", attempts-1)
		return GiveUp, &ScopeDeniedError{Server: c.cfg.Server, Scopes: want, Attempts: attempts - 1}
	}
	if rec != nil && rec.AccessToken != sent && containsAll(rec.Scopes, ch.Scopes) && c.fresh(rec, now) {
		// A newer sign-in (another process) already has the scopes.
		c.adopt(rec)
		return Retry, nil
	}
	if err := saveJSON(c.cfg.Store, c.cfg.Server, KindStepUp, stepUpRecord{Version: recordVersion, Scopes: want, At: now}); err != nil {
		c.log.Warn("could not record the step-up scopes", "err", err)
	}
	c.mu.Lock()
	c.stepUp = want
	c.mu.Unlock()
	e := signInNeeded(c.cfg.Server, "the server needs more permissions: "+strings.Join(ch.Scopes, " "), nil)
	e.Scopes = want
	return SignIn, e
}
