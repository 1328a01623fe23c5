// Package remote carries the application core's API over a local socket, so
// Keyport's GUI can run as two processes: a light tray process that owns the
// real core (*app.App: catalog, keychain, proxies, client configs) and
// serves it with [Serve], and a window process, started only while the
// window is open, that talks to it through a [Client] and exits when the
// window closes. The Client implements ui.Core, so the window cannot tell it
// from the real App.
//
// # Protocol
//
// One connection carries newline-delimited JSON frames both ways (see
// frame). The client sends requests {"id","method","params"} and may cancel
// one with {"cancel":id}; the server answers each with {"id","result"} or
// {"id","error"}, in any order, and pushes {"snapshot","events"} frames:
// the catalog as Servers and CatalogError return it, then the events that
// changed it. The first server frame is a hello with the protocol version
// and the first snapshot. Events are pushed, never polled: an idle tray
// process costs no CPU.
//
// JSON over a plain socket keeps this small and dependency-free, lets the
// server cap a request's size before decoding it (net/rpc's gob offers no
// such cap), resynchronises after a garbled line, and maps every error to
// its message text, which is all the UI shows.
//
// # Security
//
// The socket grants full control of the user's Keyport (its secrets go
// through it), so [Listen] makes it reachable by its owner only: it lives
// in the 0700 config dir, or, when that path is too long for a socket, in
// the temp dir under a name bound in a private 0700 dir first; it is 0600
// from the moment it has its final name. [Dial] refuses a socket owned by
// another user. No frame content is ever logged.
package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"keyport/app"
	"keyport/app/instance"
	"keyport/app/telemetry"
)

// Backend is the application core's API as the window uses it (ui.Core is
// this interface): *app.App implements it, Serve serves it, and Client
// implements it over the socket. Serve never calls Close: the process that
// owns the Backend closes it.
//
// Every method may block (keychain, network, disk): the window calls them
// from goroutines, never from the fyne goroutine, except Servers, Clients
// and CatalogError, which only read memory (Client keeps them local).
type Backend interface {
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

	// ToolReview is a server's tool pinning: the tools held for review,
	// with side-by-side diffs and flags.
	ToolReview(name string) (app.ToolReview, error)
	// ApproveTools approves held tools (all of them with all).
	ApproveTools(name string, tools []string, all bool) ([]app.ToolDecision, error)
	// BlockTools keeps held tools blocked (all of them with all).
	BlockTools(name string, tools []string, all bool) ([]app.ToolDecision, error)
	// ResetPins forgets a server's approved tool definitions.
	ResetPins(name string) (int, error)

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

	// Profiles returns the profiles with their endpoints' status, sorted by
	// name (memory only: the Client keeps them with the servers).
	Profiles() []app.ProfileView
	// SetProfileEnabled turns a profile's endpoint on or off.
	SetProfileEnabled(ctx context.Context, name string, on bool) error
	// SetProfile writes a profile (create: a new one) into servers.yaml.
	SetProfile(p app.NewProfile, create bool) error
	// RemoveProfile removes a profile and its client entries.
	RemoveProfile(name string) error
	// ProfileTools lists the tools a server's policy allows, with the size
	// of each definition, for picking a profile's tools.
	ProfileTools(ctx context.Context, server string) ([]app.ProfileTool, error)
	// Telemetry is the OpenTelemetry export's status (per exporter:
	// connected, backlog, last error).
	Telemetry() telemetry.Status

	// Autostart reports and sets whether Keyport starts at login.
	Autostart() bool
	SetAutostart(on bool) error

	// WindowPrefs and SetWindowPrefs read and record the window's size and
	// divider position (state.json), so the window opens as it was left.
	WindowPrefs() app.WindowPrefs
	SetWindowPrefs(p app.WindowPrefs) error

	// Close releases the core: *app.App stops every proxy gracefully; a
	// Client only closes its connection (the tray keeps running).
	Close() error
}

// ErrBackendGone is what calls fail with once the server went away: the
// tray process quit or crashed.
var ErrBackendGone = errors.New("Keyport's background app stopped; launch Keyport again")

// ErrBackendQuit is why a connection ended when the server closed it on
// purpose: the user quit Keyport. ErrBackendGone means it vanished without
// a word (it crashed or was killed).
var ErrBackendQuit = errors.New("Keyport quit; launch it again to use it")

// ErrClosed is what calls fail with after Client.Close.
var ErrClosed = errors.New("the connection to Keyport's background app was closed")

// protocolVersion changes whenever a frame or method changes incompatibly.
// A window process of another version (Keyport was updated while its tray
// process ran) is refused with a clear error.
const protocolVersion = 1

// Size caps of one frame. Requests are small (the largest is an added
// server with its secrets); answers can be big (an audit tail), but are
// bounded so a broken peer cannot exhaust memory.
const (
	maxRequest  = 1 << 20
	maxResponse = 64 << 20
)

// socketBase is the core socket's name in the config dir.
const socketBase = "keyport-core.sock"

// SocketPath is where the core of config dir dir is served: dir/
// keyport-core.sock, or a hashed name in the temp dir when that path is too
// long for a Unix socket (see instance.SocketPathFor).
func SocketPath(dir string) string { return instance.SocketPathFor(dir, socketBase) }

// Listen listens on SocketPath(dir) for [Serve]. It creates dir 0700 and
// replaces a socket file left by a crashed process, so the caller must be
// the one primary instance of dir (hold instance.Acquire's lock).
//
// The socket grants full control of the user's Keyport, so no other user
// may ever reach it: on Unix it is bound in a fresh private 0700 dir,
// chmodded 0600 and only then renamed to its final path, so there is no
// moment at which another user could connect, even when the path is in a
// shared temp dir (where a file another user planted cannot be replaced:
// Listen then fails). On Windows the socket lives in the user's own
// profile, whose ACL keeps other users out. Closing the listener removes
// the socket file.
func Listen(dir string) (net.Listener, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the config dir %s: %w", dir, err)
	}
	path := SocketPath(dir)
	if runtime.GOOS == "windows" {
		_ = os.Remove(path)
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", path, err)
		}
		_ = os.Chmod(path, 0o600)
		return ln, nil
	}
	// The private dir sits next to the final path (same file system, so
	// the rename is atomic) and has a name no longer than the final one,
	// so the bind fits the socket path limit as well.
	private, err := os.MkdirTemp(filepath.Dir(path), ".kp")
	if err != nil {
		return nil, fmt.Errorf("listen on %s: make a private dir: %w", path, err)
	}
	defer os.RemoveAll(private)
	tmp := filepath.Join(private, "s")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // the file moves; listener.Close removes it
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: make the socket private: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s (another user's file there? remove it): %w", path, err)
	}
	return &listener{UnixListener: ul, path: path}, nil
}

// listener removes its socket file on Close.
type listener struct {
	*net.UnixListener
	path string
}

// Addr is the socket's final path, not where it was bound.
func (l *listener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *listener) Close() error {
	err := l.UnixListener.Close()
	if rerr := os.Remove(l.path); err == nil && !errors.Is(rerr, os.ErrNotExist) {
		err = rerr
	}
	return err
}

// frame is one line on the wire, in either direction. Which fields are set
// says what it is:
//
//	client → server  {"id":1,"method":"Tools","params":{...}}   a request
//	                 {"cancel":1}                                cancel request 1
//	server → client  {"id":1,"result":...} / {"id":1,"error":"..."}
//	                 (+ "snapshot" when the method changes Servers)
//	                 {"hello":{...},"snapshot":{...}}            first frame
//	                 {"snapshot":{...},"events":[...]}           a change
//	                 {"raise":true}                              show the window
type frame struct {
	ID       uint64          `json:"id,omitempty"`
	Method   string          `json:"method,omitempty"`
	Params   json.RawMessage `json:"params,omitempty"`
	Cancel   uint64          `json:"cancel,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Err      *string         `json:"error,omitempty"`
	Hello    *hello          `json:"hello,omitempty"`
	Snapshot *snapshot       `json:"snapshot,omitempty"`
	Events   []app.Event     `json:"events,omitempty"`
	Raise    bool            `json:"raise,omitempty"`
	Bye      bool            `json:"bye,omitempty"` // the server closes on purpose (Keyport quits)
}

// hello opens the server's side of a connection.
type hello struct {
	Protocol int `json:"protocol"`
}

// snapshot is what Servers and CatalogError return, as of the events sent
// with it.
//
// Seq orders snapshots: the server numbers them in the order it read the
// core, and the client keeps the newest, so a pushed snapshot that was
// overtaken by a reply's never rolls the window back.
type snapshot struct {
	Seq          uint64          `json:"seq"`
	Servers      json.RawMessage `json:"servers"` // []app.ServerView
	CatalogError string          `json:"catalog_error,omitempty"`
	Profiles     json.RawMessage `json:"profiles,omitempty"` // []app.ProfileView
}

// changesServers are the methods whose effect shows in Servers: their
// reply carries a snapshot taken after the call, so a window that re-reads
// Servers right after the call returns sees the change (as it would with
// the core in-process), without waiting for the event.
var changesServers = map[string]bool{
	"SetProxyEnabled": true, "SetSecret": true, "ClearSecrets": true, "SignIn": true,
	"SetToolPolicy": true, "AddServer": true, "RemoveServer": true,
	"ImportFromRegistry": true, "SetDemoHidden": true,
	"ApproveTools": true, "BlockTools": true, "ResetPins": true,
	"SetProfileEnabled": true, "SetProfile": true, "RemoveProfile": true,
}

// The parameters of the methods; both sides use these types.
type (
	nameArgs struct {
		Name string `json:"name"`
	}
	proxyArgs struct {
		Name string `json:"name"`
		On   bool   `json:"on"`
	}
	secretArgs struct {
		Name  string `json:"name"`
		Kind  string `json:"kind"`
		Value string `json:"value"`
	}
	policyArgs struct {
		Name  string   `json:"name"`
		Allow []string `json:"allow"`
		Deny  []string `json:"deny"`
	}
	checkArgs struct {
		Allow []string `json:"allow"`
		Deny  []string `json:"deny"`
		Tools []string `json:"tools"`
	}
	auditArgs struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	clientArgs struct {
		ClientID string `json:"client_id"`
		Server   string `json:"server"`
		On       bool   `json:"on"`
	}
	queryArgs struct {
		Query string `json:"query"`
	}
	importArgs struct {
		Result  app.RegistryResult `json:"result"`
		Secrets map[string]string  `json:"secrets"`
	}
	onArgs struct {
		On bool `json:"on"`
	}
	pinArgs struct {
		Name  string   `json:"name"`
		Tools []string `json:"tools"`
		All   bool     `json:"all"`
	}
	noArgs      struct{}
	profileArgs struct {
		Profile app.NewProfile `json:"profile"`
		Create  bool           `json:"create"`
	}
)
