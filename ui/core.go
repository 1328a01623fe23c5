package ui

import (
	"context"

	"keyport/app"
)

// Core is what the UI needs from the application core. *app.App implements
// it; UI tests may pass a fake for layout goldens, and pass the real App for
// behaviour (a tapped switch starts a real proxy).
//
// Every method may block (keychain, network, disk): the UI calls them from
// goroutines, never from the fyne goroutine, except Servers, Clients and
// CatalogError, which only read memory.
type Core interface {
	// Servers returns the catalog with status, sorted by name.
	Servers() []app.ServerView
	// CatalogError is the current servers.yaml error, or "".
	CatalogError() string
	// Subscribe delivers an Event whenever something shown may have changed.
	Subscribe() (events <-chan app.Event, cancel func())

	// SetProxyEnabled turns a server's persistent proxy on or off.
	SetProxyEnabled(ctx context.Context, name string, on bool) error

	// SetSecret stores a credential item (kind "bearer" or "header/NAME").
	SetSecret(name, kind, value string) error
	// ClearSecrets removes every credential of a server from the keychain.
	ClearSecrets(name string) error
	// SignIn runs the OAuth browser flow for a server; openURL opens the browser.
	SignIn(ctx context.Context, name string, openURL func(string) error) error

	// SetToolPolicy replaces a server's allow and deny patterns.
	SetToolPolicy(name string, allow, deny []string) error
	// Tools lists the server's tools through its proxy, marked allowed or not.
	Tools(ctx context.Context, name string) ([]app.Tool, error)
	// CheckPolicy returns the tools of list a policy would allow, or a pattern error.
	CheckPolicy(allow, deny []string, tools []string) (allowed []string, err error)

	// Audit returns the newest n audit entries of a server, oldest first.
	Audit(name string, n int) ([]app.AuditEntry, error)
	// AuditPath is the server's audit log file, for export.
	AuditPath(name string) string

	// Clients returns every known client's state for a server.
	Clients(server string) []app.ClientView
	// PreviewClient shows the change Install (on) or Remove (off) would make.
	PreviewClient(clientID, server string, on bool) (app.ClientChange, error)
	// ApplyClient installs (on) or removes (off) the server's entry.
	ApplyClient(clientID, server string, on bool) (app.ClientChange, error)
	// UndoClient restores the client's file to before Keyport's last change.
	UndoClient(clientID string) error

	// AddServer adds a server to servers.yaml and its secrets to the keychain.
	AddServer(s app.NewServer) error
	// RemoveServer removes a server, its secrets and its client entries.
	RemoveServer(name string) error
	// SearchRegistry searches the configured MCP registries.
	SearchRegistry(ctx context.Context, query string) ([]app.RegistryResult, error)
	// ImportFromRegistry imports a registry server with the given secrets.
	ImportFromRegistry(ctx context.Context, r app.RegistryResult, secrets map[string]string) error
	// SetDemoHidden hides or shows the built-in demo server.
	SetDemoHidden(hidden bool) error

	// Autostart reports and sets whether Keyport starts at login.
	Autostart() bool
	SetAutostart(on bool) error

	// Close stops every proxy gracefully.
	Close() error
}
