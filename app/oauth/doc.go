// Package oauth signs Keyport in to remote MCP servers that require the MCP
// authorization flow (OAuth 2.1 with PKCE), keeps the tokens in the OS
// keychain and hands fresh access tokens to every proxy and bridge.
//
// Three entry points:
//
//   - [Login] runs the browser sign-in for one server: discovery from the
//     server's 401 (WWW-Authenticate resource_metadata) or the RFC 9728
//     well-known paths, authorization server metadata (RFC 8414, then OpenID
//     discovery) with the issuer check, client registration (pre-registered,
//     Client ID Metadata Document, or dynamic registration RFC 7591), PKCE
//     S256, the resource parameter (RFC 8707), the state and iss (RFC 9207)
//     checks and a loopback redirect on 127.0.0.1. It writes the keychain
//     only once everything succeeded.
//   - [Credentials] (from [NewCredentials]) is the per-request credentials
//     source of a proxy: it returns "Authorization: Bearer ..." and refreshes
//     the token before it expires, once across goroutines and processes (a
//     file lock in the config directory; refresh tokens rotate).
//   - [Logout] removes a server's tokens and registrations, revoking them
//     where the authorization server supports it.
//
// When a server needs a new sign-in, every call returns a
// [*SignInNeededError]: its text is exactly "sign in to NAME in Keyport
// (keyport login NAME)" and errors.Is(err, [ErrSignInNeeded]) holds, so the
// proxy shows it to the client and the tray shows "Sign in needed".
//
// The package depends on nothing of Keyport's: the keychain is a narrow
// [TokenStore] the application wires in (app/secrets in production).
package oauth
