package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
)

// ErrSignInNeeded is matched (errors.Is) by every error that means the user
// must sign in to the server again: never signed in, signed out, the refresh
// token expired or was revoked, more scopes are needed. The tray shows
// "Sign in needed" for it.
var ErrSignInNeeded = errors.New("sign in needed")

// SignInNeededError says that a server needs a (new) sign-in. Its Error text
// is exactly what a proxy shows to the AI client; Reason is for logs and the
// UI's detail view.
type SignInNeededError struct {
	// Server is the server's name in the catalog.
	Server string
	// Reason says why, in a few words ("not signed in", "the refresh token
	// was rejected: invalid_grant", ...). It never contains a secret.
	Reason string
	// Scopes, when set, are the scopes the next sign-in must request
	// (step-up after a 403 insufficient_scope).
	Scopes []string
	// Err is the underlying cause, if any.
	Err error
}

// Error returns "sign in to NAME in Keyport (keyport login NAME)".
func (e *SignInNeededError) Error() string {
	return fmt.Sprintf("sign in to %s in Keyport (keyport login %s)", e.Server, e.Server)
}

// Is makes errors.Is(err, ErrSignInNeeded) true.
func (e *SignInNeededError) Is(target error) bool { return target == ErrSignInNeeded }

// Unwrap returns the cause.
func (e *SignInNeededError) Unwrap() error { return e.Err }

// signInNeeded builds a SignInNeededError.
func signInNeeded(server, reason string, cause error) *SignInNeededError {
	return &SignInNeededError{Server: server, Reason: reason, Err: cause}
}

// ErrScopeDenied is matched by the error [Credentials.StepUp] returns once
// the retry bound for a scope set is exhausted: signing in again did not
// give the server the scopes it asks for, so Keyport stops asking.
var ErrScopeDenied = errors.New("scope denied")

// ScopeDeniedError is returned when a server keeps answering 403
// insufficient_scope although the user signed in for the scopes it named.
type ScopeDeniedError struct {
	Server   string
	Scopes   []string
	Attempts int
}

func (e *ScopeDeniedError) Error() string {
	return fmt.Sprintf("%s still refuses the request after %d sign-ins for the scopes %q: "+
		"the authorization server does not grant them to you; ask the server's administrator",
		e.Server, e.Attempts, strings.Join(e.Scopes, " "))
}

// Is makes errors.Is(err, ErrScopeDenied) true.
func (e *ScopeDeniedError) Is(target error) bool { return target == ErrScopeDenied }

// TokenError is an error answer of a token, registration or revocation
// endpoint (RFC 6749 section 5.2).
type TokenError struct {
	// Endpoint is the URL that answered.
	Endpoint string
	// Status is the HTTP status code.
	Status int
	// Code is the OAuth error code ("invalid_grant", ...), if the body had one.
	Code string
	// Description is the server's error_description, sanitized and shortened.
	Description string
}

func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s answered %d", e.Endpoint, e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, " (%s)", e.Description)
	}
	return b.String()
}

// clientRefused reports whether the token endpoint refused the client's
// own credentials (RFC 6749 section 5.2: invalid_client, or a 401).
func (e *TokenError) clientRefused() bool {
	return e.Code == "invalid_client" || e.Code == "unauthorized_client" || (e.Code == "" && e.Status == http.StatusUnauthorized)
}

// ClientRefusedError is a sign-in a server's authorization server refused
// because of the pre-registered client's ID or secret. Its text names the
// server and the fix; it never holds the secret.
type ClientRefusedError struct {
	Server    string
	ClientID  string
	HasSecret bool
	Err       error
}

func (e *ClientRefusedError) Error() string {
	secret := "no client secret is set: if the client has one, store it with keyport secret set " + e.Server + " client-secret"
	if e.HasSecret {
		secret = "if its secret changed, store the new one with keyport secret set " + e.Server + " client-secret"
	}
	return fmt.Sprintf("the authorization server of %s refused Keyport's pre-registered client %q (%v): check auth.client_id; %s. "+
		"The previous sign-in, if any, is kept", e.Server, e.ClientID, e.Err, secret)
}

// Unwrap returns the token endpoint's error.
func (e *ClientRefusedError) Unwrap() error { return e.Err }

// rejectsGrant reports whether the token endpoint refused the grant or the
// client for good (a new sign-in is the fix), as opposed to a transient
// failure (5xx, 429) worth retrying later.
func (e *TokenError) rejectsGrant() bool {
	switch e.Code {
	case "invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type":
		return true
	}
	return e.Status == 400 || e.Status == 401 || e.Status == 403
}

// sanitize makes server-provided text safe to show: printable characters
// only, at most n runes.
func sanitize(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range s {
		if count == n {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			r = ' '
		}
		b.WriteRune(r)
		count++
	}
	return strings.TrimSpace(b.String())
}
