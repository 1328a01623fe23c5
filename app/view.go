package app

import "time"

// This file holds the views the App hands to its callers (the CLI and the
// GUI): plain values, safe to copy, with no secret in them.

// ProxyState is the state of a server's local proxy as the user sees it.
type ProxyState string

// Proxy states, in the order the UI explains them.
const (
	ProxyStopped     ProxyState = "stopped"
	ProxyStarting    ProxyState = "starting"
	ProxyRunning     ProxyState = "running"
	ProxyUnreachable ProxyState = "unreachable" // the proxy runs; its upstream does not answer
	ProxyError       ProxyState = "error"       // the proxy cannot run (port taken, bad config...)
)

// Label is how the state reads to a person, in the window and the tray.
func (s ProxyState) Label() string {
	switch s {
	case ProxyStarting:
		return "Starting…"
	case ProxyRunning:
		return "Running"
	case ProxyUnreachable:
		return "Upstream unreachable"
	case ProxyError:
		return "Error"
	default:
		return "Stopped"
	}
}

// ServerView is one catalog server with its proxy and credential status.
type ServerView struct {
	Name        string
	Description string
	UpstreamURL string
	Labels      map[string]string
	AuthType    string // none, bearer, headers or oauth
	Demo        bool   // the built-in demo server

	Enabled   bool // the user turned the persistent proxy on
	State     ProxyState
	Port      int    // the proxy's port (recorded even while stopped)
	LocalURL  string // http://127.0.0.1:PORT/mcp, empty until a port is known
	LastError string // why State is error or unreachable; actionable

	Credential CredentialStatus
	Allow      []string // tool policy patterns
	Deny       []string
	Counters   Counters

	// Managed: the organization's managed settings set the whole server
	// (it cannot be edited or removed here).
	Managed bool
	// ManagedDeny are the deny patterns the organization forces (also in
	// Deny); ManagedPinning its tool-pinning mode ("" none). Every place
	// that shows them says "set by your organization".
	ManagedDeny    []string
	ManagedPinning string
}

// CredentialStatus says whether a server's credentials are in the keychain.
type CredentialStatus struct {
	Needed  bool     // the server's auth type needs a credential
	Set     bool     // every needed item is in the keychain
	Missing []string // kinds still missing, e.g. "bearer", "header/X-API-Key"
	// Kinds lists every credential kind the server uses ("bearer",
	// "header/X-API-Key"...), set or not, so the GUI can offer Replace for
	// each. Empty for auth none and oauth.
	Kinds        []string
	SignInNeeded bool // OAuth: signed out, or the refresh failed
}

// Counters are a proxy's traffic counters since it started.
type Counters struct {
	Requests, Errors, Denials int64
	BytesIn, BytesOut         int64
	Sessions, Streams         int64
	AuditDrops                int64
	Redactions                int64 // injected credentials removed from answers to clients
	LatencyP50                time.Duration
	// ForeignPeers counts requests refused because they came from another
	// OS user of this machine (or one that could not be identified).
	ForeignPeers int64
}

// ClientState is how a client's config relates to a server.
type ClientState string

// Client states.
const (
	ClientOK      ClientState = "ok"
	ClientMissing ClientState = "missing"
	ClientStale   ClientState = "stale"
	ClientForeign ClientState = "foreign" // the entry name is taken by an entry Keyport did not write
)

// ClientView is one MCP client's config file and its entry for one server.
type ClientView struct {
	ID           string // claude, cursor, claude-code, vscode, windsurf, gemini
	Name         string // Claude Desktop, Cursor...
	Path         string
	Detected     bool // the client seems installed (its config dir exists)
	State        ClientState
	Detail       string // what differs, for stale
	NeedsRestart string // e.g. "Restart Claude Desktop to load the change."
	CanUndo      bool
	// Default: the organization's managed settings list this client among
	// the ones Keyport offers first.
	Default bool
}

// ClientChange is a previewed or applied change to a client's config file.
type ClientChange struct {
	Path  string
	Diff  string // unified diff of the file
	Wrote bool
}

// AuditEntry is one line of a server's audit log.
type AuditEntry struct {
	Time     time.Time
	Event    string // request, notification, denial, session_start...
	Method   string
	Tool     string
	Outcome  string // ok, error, denied
	Duration time.Duration
	Raw      string // the JSON line as written
}

// Tool is a tool of a server as listed through its proxy.
type Tool struct {
	Name        string
	Description string
	Allowed     bool // under the current policy
}

// RegistryResult is a server found in an MCP registry.
type RegistryResult struct {
	ID            string // reverse-DNS registry name
	Name          string // the catalog name it would get
	Title         string
	Description   string
	URL           string // the remote's URL (may hold {variables})
	Version       string
	Registry      string // the registry's base URL
	RegistryName  string // how the registry is shown ("official")
	SecretHeaders []string
	// Questions are the values the user gives on import; answers are keyed
	// by Question.Key (a secret header may also be keyed by its name).
	Questions []RegistryQuestion
}

// RegistryQuestion is a value asked for when importing a registry server.
type RegistryQuestion struct {
	Key         string
	Name        string // the header or variable name
	Description string
	Required    bool
	Secret      bool // read without echo, stored in the keychain
	Default     string
	Choices     []string
}

// EventKind says what changed.
type EventKind int

// Event kinds.
const (
	EventServers      EventKind = iota // the catalog or a proxy's status changed
	EventClients                       // a client config file changed
	EventCatalogError                  // servers.yaml is invalid; Err says why
	EventNotice                        // something worth a desktop notification
	// EventAudit: new audit entries were written for Server. The GUI's audit
	// tab re-reads Audit on it (a live tail without polling); send at most a
	// few per second per server (coalesce bursts).
	EventAudit
)

// Event tells subscribers something changed; they re-read what they show.
type Event struct {
	Kind   EventKind
	Server string // the server concerned, if one
	Err    string // for EventCatalogError; empty when the error cleared
	Title  string // for EventNotice
	Body   string
}

// NewServer is what the Add server dialog and `keyport add` submit.
type NewServer struct {
	Name        string
	URL         string
	Description string
	Labels      map[string]string
	Headers     map[string]string // non-secret
	AuthType    string            // none, bearer, headers, oauth
	// Secrets are stored in the keychain, never in servers.yaml: for bearer
	// the key is "bearer", for headers "header/<Name>".
	Secrets map[string]string
}
