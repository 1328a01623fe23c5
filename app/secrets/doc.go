// Package secrets keeps Keyport's secrets in the OS keychain (go-keyring:
// macOS Keychain, Windows Credential Manager, the Secret Service on Linux)
// and nowhere else.
//
// Every item lives under the service "keyport" with the account
// "<server>/<kind>", where kind is one of [KindBearer], [KindLocalToken],
// [HeaderKind] ("header/X-API-Key") or [OAuthKind] ("oauth/token"). A [Store]
// wraps a narrow [Backend] (go-keyring's Set/Get/Delete) and adds:
//
//   - chunking: values longer than [ChunkSize] bytes (Windows' limit, the
//     smallest of the three platforms) are split over "<account>#1..#N"
//     items behind a small header item, transparently;
//   - a per-server index, so [Store.DeleteServer] removes every item of a
//     server;
//   - actionable errors: a missing or locked keychain is reported as
//     [ErrUnavailable] ("no OS keychain available: ..."), never silently
//     replaced by a plaintext file, and no error text contains a secret;
//   - a [Redactor] that learns every value the store handles, for logs and
//     the audit log.
//
// [ReadSecret] reads a value from a no-echo terminal prompt, or from stdin
// when stdin is not a terminal, for `keyport add` and `keyport secret set`:
// secrets never travel through argv.
package secrets
