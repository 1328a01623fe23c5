package oauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// LogoutConfig configures [Logout].
type LogoutConfig struct {
	// Server is the server's name. Required.
	Server string
	// Store is the keychain. Required.
	Store TokenStore
	// Revoke asks the authorization server to revoke the tokens (RFC 7009)
	// when it has a revocation endpoint. Best effort: a failure is logged.
	Revoke bool
	// HTTPClient talks to the revocation endpoint; nil: DefaultHTTPClient().
	HTTPClient *http.Client
	// LockDir holds the per-server lock files; "": DefaultLockDir().
	LockDir string
	// Logger receives logs; nil: slog.Default().
	Logger *slog.Logger
}

// LogoutResult says what Logout did.
type LogoutResult struct {
	// WasSignedIn is true when there were tokens to remove.
	WasSignedIn bool
	// Revoked is true when the authorization server confirmed revocation.
	Revoked bool
}

// revokeTimeout bounds the revocation requests.
const revokeTimeout = 10 * time.Second

// Logout removes the server's tokens, registrations and step-up request
// from the keychain (a pre-registered client's secret stays: it is
// configuration). With Revoke, it first revokes the refresh and access
// tokens where the authorization server supports it.
func Logout(ctx context.Context, cfg LogoutConfig) (*LogoutResult, error) {
	if cfg.Server == "" {
		return nil, errors.New("logout: the server name is empty")
	}
	if cfg.Store == nil {
		return nil, errors.New("logout: no keychain store configured")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = DefaultHTTPClient()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("server", cfg.Server)
	if cfg.LockDir == "" {
		d, err := DefaultLockDir()
		if err != nil {
			return nil, err
		}
		cfg.LockDir = d
	}
	unlock, err := serverLock(ctx, cfg.LockDir, cfg.Server)
	if err != nil {
		return nil, err
	}
	defer unlock()

	res := &LogoutResult{}
	rec, err := loadToken(cfg.Store, cfg.Server)
	if err != nil && !errors.Is(err, errCorrupt) {
		return nil, err
	}
	if err != nil || rec != nil {
		res.WasSignedIn = true
	}
	if rec != nil && cfg.Revoke && rec.RevocationEndpoint != "" {
		rctx, cancel := context.WithTimeout(ctx, revokeTimeout)
		res.Revoked = true
		if rec.RefreshToken != "" {
			if err := revoke(rctx, cfg.HTTPClient, rec.RevocationEndpoint, rec.RefreshToken, "refresh_token", rec.Client); err != nil {
				log.Warn("could not revoke the refresh token", "err", err)
				res.Revoked = false
			}
		}
		if err := revoke(rctx, cfg.HTTPClient, rec.RevocationEndpoint, rec.AccessToken, "access_token", rec.Client); err != nil {
			log.Warn("could not revoke the access token", "err", err)
			res.Revoked = false
		}
		cancel()
	}
	var errs []error
	for _, kind := range []string{KindToken, KindStepUp, KindClients} {
		if err := deleteKind(cfg.Store, cfg.Server, kind); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	log.Info("signed out", "revoked", res.Revoked)
	return res, nil
}
