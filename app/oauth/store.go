package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// TokenStore is the keychain as this package needs it: one secret string
// per (server, kind). Production wires app/secrets (service "keyport",
// account "<server>/<kind>", large values chunked); tests use [MemoryStore]
// or go-keyring directly.
//
// Get must read through to the keychain, never from a cache: after taking
// a server's lock, a refresher re-reads the token another process may just
// have rotated, and a cached (stale) refresh token would be spent twice
// and rejected. [Credentials] already keeps the token in memory, so a
// cache below it buys nothing.
type TokenStore interface {
	// Get returns the value, or an error matching ErrNotFound when there is none.
	Get(server, kind string) (string, error)
	// Set creates or replaces the value.
	Set(server, kind, value string) error
	// Delete removes the value; deleting a missing value is not an error
	// (an error matching ErrNotFound is tolerated too).
	Delete(server, kind string) error
}

// ErrNotFound is what a TokenStore's Get returns (errors.Is) for a missing
// value. Adapters map their own not-found error to it.
var ErrNotFound = errors.New("not in the keychain")

// errCorrupt marks a keychain entry that exists but cannot be used; a new
// sign-in replaces it.
var errCorrupt = errors.New("unusable keychain entry")

// Keychain kinds this package reads and writes, under the server's name.
const (
	// KindToken holds the sign-in: tokens, expiry, issuer, the client used.
	KindToken = "oauth/token"
	// KindClients holds dynamic client registrations, one per issuer, so a
	// new sign-in reuses them (RFC 7591 registrations are per authorization
	// server, never shared between them).
	KindClients = "oauth/clients"
	// KindStepUp holds the scopes the next sign-in must add after a 403
	// insufficient_scope.
	KindStepUp = "oauth/step-up"
	// KindClientSecret is where the application keeps the secret of a
	// pre-registered client (servers.yaml auth.client_id); this package only
	// reads it when asked to (see ClientSecretFromStore).
	KindClientSecret = "oauth/client-secret"
)

// recordVersion is the version of the JSON records below.
const recordVersion = 1

// tokenRecord is the value under KindToken. It binds the tokens to the
// issuer that minted them and the resource they are for: a token is never
// sent to another server, nor refreshed at another authorization server.
type tokenRecord struct {
	Version            int        `json:"v"`
	Issuer             string     `json:"issuer"`
	Resource           string     `json:"resource"`
	ServerURL          string     `json:"server_url"`
	TokenEndpoint      string     `json:"token_endpoint"`
	RevocationEndpoint string     `json:"revocation_endpoint,omitempty"`
	Client             clientInfo `json:"client"`
	AccessToken        string     `json:"access_token"`
	TokenType          string     `json:"token_type,omitempty"`
	RefreshToken       string     `json:"refresh_token,omitempty"`
	Expiry             time.Time  `json:"expiry,omitzero"`
	// Scopes are the granted scopes (or the requested ones when the
	// authorization server did not say).
	Scopes     []string  `json:"scopes,omitempty"`
	ObtainedAt time.Time `json:"obtained_at"`
	// SignedInAt is when the browser sign-in that started this record
	// happened (a refresh keeps it): a proxy waiting for a new sign-in
	// watches it.
	SignedInAt time.Time `json:"signed_in_at,omitzero"`

	// authz is "Bearer <access token>", built once when the record is
	// adopted so each request does not allocate it (never stored).
	authz string
}

// clientInfo is an OAuth client as registered with one issuer.
type clientInfo struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret,omitempty"`
	// AuthMethod is the token endpoint auth method: "none",
	// "client_secret_post" or "client_secret_basic".
	AuthMethod string `json:"auth_method"`
	// Registration is how the client was obtained: "preregistered",
	// "metadata-document" or "dynamic".
	Registration string `json:"registration"`
	// RedirectURI is the redirect URI registered (dynamic registration).
	RedirectURI     string    `json:"redirect_uri,omitempty"`
	SecretExpiresAt time.Time `json:"secret_expires_at,omitzero"`
}

// Registration kinds.
const (
	regPreregistered    = "preregistered"
	regMetadataDocument = "metadata-document"
	regDynamic          = "dynamic"
)

// clientsRecord is the value under KindClients.
type clientsRecord struct {
	Version int `json:"v"`
	// Clients maps an issuer to the client registered there.
	Clients map[string]clientInfo `json:"clients"`
}

// stepUpRecord is the value under KindStepUp.
type stepUpRecord struct {
	Version int       `json:"v"`
	Scopes  []string  `json:"scopes"`
	At      time.Time `json:"at"`
}

// loadJSON reads kind for server into v. found is false when there is none.
func loadJSON(s TokenStore, server, kind string, v any) (found bool, err error) {
	raw, err := s.Get(server, kind)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s/%s from the keychain: %w", server, kind, err)
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		// Never quote the value: it holds secrets.
		return false, fmt.Errorf("keychain entry %s/%s is not valid JSON (%d bytes); remove it with keyport logout %s: %w",
			server, kind, len(raw), server, errCorrupt)
	}
	return true, nil
}

// saveJSON writes v as kind for server.
func saveJSON(s TokenStore, server, kind string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", server, kind, err)
	}
	if err := s.Set(server, kind, string(raw)); err != nil {
		return fmt.Errorf("write %s/%s to the keychain: %w", server, kind, err)
	}
	return nil
}

// deleteKind removes kind for server, tolerating a missing value.
func deleteKind(s TokenStore, server, kind string) error {
	if err := s.Delete(server, kind); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("remove %s/%s from the keychain: %w", server, kind, err)
	}
	return nil
}

// loadToken reads the sign-in of server; nil when there is none.
func loadToken(s TokenStore, server string) (*tokenRecord, error) {
	var rec tokenRecord
	found, err := loadJSON(s, server, KindToken, &rec)
	if err != nil || !found {
		return nil, err
	}
	if rec.AccessToken == "" || rec.Issuer == "" || rec.TokenEndpoint == "" {
		return nil, fmt.Errorf("keychain entry %s/%s is incomplete; remove it with keyport logout %s: %w",
			server, KindToken, server, errCorrupt)
	}
	return &rec, nil
}

// ClientSecretFromStore returns the pre-registered client secret kept under
// KindClientSecret for server, or "" when there is none.
func ClientSecretFromStore(s TokenStore, server string) (string, error) {
	v, err := s.Get(server, KindClientSecret)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the client secret of %s from the keychain: %w", server, err)
	}
	return v, nil
}

// MemoryStore is a TokenStore in memory, for tests and for callers that
// must not touch the keychain. It is safe for concurrent use.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]string
	// Fail, when set, is called before each operation ("get", "set",
	// "delete"); a non-nil result is returned instead of doing it. Tests
	// use it to simulate a failing keychain.
	Fail func(op, server, kind string) error
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string]string{}} }

func memKey(server, kind string) string { return server + "/" + kind }

// Get implements TokenStore.
func (m *MemoryStore) Get(server, kind string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		if err := m.Fail("get", server, kind); err != nil {
			return "", err
		}
	}
	v, ok := m.m[memKey(server, kind)]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

// Set implements TokenStore.
func (m *MemoryStore) Set(server, kind, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		if err := m.Fail("set", server, kind); err != nil {
			return err
		}
	}
	if m.m == nil {
		m.m = map[string]string{}
	}
	m.m[memKey(server, kind)] = value
	return nil
}

// Delete implements TokenStore.
func (m *MemoryStore) Delete(server, kind string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		if err := m.Fail("delete", server, kind); err != nil {
			return err
		}
	}
	delete(m.m, memKey(server, kind))
	return nil
}

// Snapshot returns a copy of every value, keyed "<server>/<kind>".
func (m *MemoryStore) Snapshot() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.m)
}

// Keys returns the sorted keys ("<server>/<kind>") present.
func (m *MemoryStore) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.m))
}

// unionScopes returns the scopes of a followed by those of b not in a,
// without duplicates or empty strings, in a stable order.
func unionScopes(a, b []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range slices.Concat(a, b) {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// containsAll reports whether have contains every scope of want.
func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
