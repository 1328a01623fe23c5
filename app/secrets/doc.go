// Package secrets keeps Keyport's secrets in the OS keychain (go-keyring:
// macOS Keychain, Windows Credential Manager, the Secret Service on Linux)
// and nowhere else.
package secrets
