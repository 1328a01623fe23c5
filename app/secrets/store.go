package secrets

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/textproto"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zalando/go-keyring"
)

// Service is the keychain service every Keyport item is stored under.
const Service = "keyport"

// ChunkSize is the largest value stored in one keychain item: Windows'
// Credential Manager limit (2,560 bytes), the smallest of the platforms.
// Longer values are split into chunks of at most this many bytes.
const ChunkSize = 2560

// Kinds of secret a server can have. Header and OAuth kinds are built with
// [HeaderKind] and [OAuthKind].
const (
	// KindBearer is the server's bearer token (Authorization: Bearer ...).
	KindBearer = "bearer"
	// KindLocalToken is the access token clients present to the local proxy.
	KindLocalToken = "local-token"
)

// HeaderKind is the kind of a secret header's value, e.g. "header/X-Api-Key".
// The name is canonicalized (X-API-Key and x-api-key are the same header).
func HeaderKind(name string) string {
	return "header/" + textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name))
}

// OAuthKind is the kind of an OAuth item, e.g. OAuthKind("token").
func OAuthKind(name string) string { return "oauth/" + name }

// wellKnownKinds are swept by DeleteServer even when the index misses them
// (an index update lost to a concurrent process, an older version).
// The OAuth kinds are app/oauth's (token, clients, step-up, client-secret).
var wellKnownKinds = []string{KindBearer, KindLocalToken,
	OAuthKind("token"), OAuthKind("clients"), OAuthKind("step-up"), OAuthKind("client-secret")}

const (
	// chunkMarker starts the header item of a chunked value:
	// "keyport-chunked:v1:<chunks>:<first 16 hex digits of sha256>".
	chunkMarker = "keyport-chunked:v1:"
	// indexKind is the per-server item listing the server's kinds.
	indexKind = ".index"
	// DefaultTimeout bounds one keychain call (a locked keychain may wait on an
	// unlock prompt that never comes, e.g. over SSH).
	DefaultTimeout = 60 * time.Second
)

// ErrNotFound reports that the keychain holds no such secret.
var ErrNotFound = errors.New("not found in the OS keychain")

// ErrUnavailable reports that there is no usable OS keychain (none running,
// locked, or not answering). Errors of that kind are [*UnavailableError].
var ErrUnavailable = errors.New("no OS keychain available")

// UnavailableError says the keychain could not be used and what to do.
type UnavailableError struct {
	Op    string // what Keyport was doing, e.g. `read "github/bearer"`
	Cause error  // the backend's error, already redacted
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("no OS keychain available: %s: %v — Keyport keeps secrets only in the OS keychain; %s",
		e.Op, e.Cause, unavailableHint())
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the backend's error.
func (e *UnavailableError) Unwrap() error { return e.Cause }

func unavailableHint() string {
	switch runtime.GOOS {
	case "darwin":
		return "unlock your login keychain (Keychain Access)"
	case "windows":
		return "make sure Windows Credential Manager is available for your account"
	default:
		return "start or unlock your keyring (e.g. gnome-keyring or KWallet's Secret Service)"
	}
}

// Backend is the keychain a Store uses: go-keyring's Set/Get/Delete. It must
// return keyring.ErrNotFound for a missing item.
type Backend interface {
	Set(service, account, value string) error
	Get(service, account string) (string, error)
	Delete(service, account string) error
}

// OSKeychain is the real OS keychain through go-keyring.
func OSKeychain() Backend { return osKeychain{} }

type osKeychain struct{}

func (osKeychain) Set(service, account, value string) error {
	return keyring.Set(service, account, value)
}
func (osKeychain) Get(service, account string) (string, error) {
	return keyring.Get(service, account)
}
func (osKeychain) Delete(service, account string) error { return keyring.Delete(service, account) }

// Options configure a Store.
type Options struct {
	// Backend is the keychain; nil means OSKeychain().
	Backend Backend
	// Service is the keychain service name; "" means Service ("keyport").
	// Tests use their own so they never touch a user's items.
	Service string
	// Timeout bounds each keychain call; 0 means DefaultTimeout.
	Timeout time.Duration
	// CacheTTL, when positive, keeps values read in memory that long, so a
	// proxy asking for credentials on every request does not hit the
	// keychain each time. Writes through this Store update the cache; writes
	// by another process are seen after at most CacheTTL.
	CacheTTL time.Duration
	// Redactor learns every value the store sets or gets; nil means a new one.
	Redactor *Redactor
}

// Store reads and writes Keyport's secrets in the keychain. It is safe for
// concurrent use.
type Store struct {
	b        Backend
	service  string
	timeout  time.Duration
	ttl      time.Duration
	redactor *Redactor

	mu    sync.Mutex // serializes writes (chunks + index) and guards cache
	cache map[string]cached
}

type cached struct {
	value   string
	expires time.Time
}

// New returns a Store over opts.Backend (the OS keychain by default).
func New(opts Options) *Store {
	s := &Store{
		b:        opts.Backend,
		service:  opts.Service,
		timeout:  opts.Timeout,
		ttl:      opts.CacheTTL,
		redactor: opts.Redactor,
		cache:    map[string]cached{},
	}
	if s.b == nil {
		s.b = OSKeychain()
	}
	if s.service == "" {
		s.service = Service
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.redactor == nil {
		s.redactor = NewRedactor()
	}
	return s
}

// Redactor returns the redactor that knows every value this store handled.
func (s *Store) Redactor() *Redactor { return s.redactor }

// Account is the keychain account of a server's secret: "<server>/<kind>".
func Account(server, kind string) string { return server + "/" + kind }

// Check probes the keychain and returns an [*UnavailableError] when it cannot
// be used, so the app can say so at start rather than at the first toggle.
func (s *Store) Check() error {
	_, err := s.call("probe the keychain", func() (string, error) {
		return s.b.Get(s.service, Account("keyport", ".probe"))
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// Set stores value as the server's secret of the given kind, replacing any
// previous value (and removing its now unused chunks).
func (s *Store) Set(server, kind, value string) error {
	if err := checkName(server, kind); err != nil {
		return err
	}
	if value == "" {
		return fmt.Errorf("secret %q: empty value; give a non-empty secret", Account(server, kind))
	}
	s.redactor.Add(value)
	s.mu.Lock()
	defer s.mu.Unlock()
	account := Account(server, kind)
	if err := s.writeLocked(account, value); err != nil {
		return withOp(err, fmt.Sprintf("store %q", account))
	}
	s.remember(account, value)
	return s.indexLocked(server, kind, true)
}

// Get returns the server's secret of the given kind. A missing secret is an
// error wrapping [ErrNotFound]; a missing or locked keychain one wrapping
// [ErrUnavailable].
func (s *Store) Get(server, kind string) (string, error) {
	if err := checkName(server, kind); err != nil {
		return "", err
	}
	account := Account(server, kind)
	if v, ok := s.recall(account); ok {
		return v, nil
	}
	v, err := s.read(account)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("secret %q: %w; set it with: keyport secret set %s %s", account, ErrNotFound, server, kind)
		}
		return "", err
	}
	s.redactor.Add(v)
	s.mu.Lock()
	s.remember(account, v)
	s.mu.Unlock()
	return v, nil
}

// Delete removes the server's secret of the given kind, with all its chunks.
// Deleting a missing secret returns an error wrapping [ErrNotFound].
func (s *Store) Delete(server, kind string) error {
	if err := checkName(server, kind); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	account := Account(server, kind)
	delete(s.cache, account)
	found, err := s.removeLocked(account)
	if err != nil {
		return withOp(err, fmt.Sprintf("delete %q", account))
	}
	if err := s.indexLocked(server, kind, false); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("secret %q: %w", account, ErrNotFound)
	}
	return nil
}

// Kinds lists the kinds of secret stored for server, sorted. With a
// CacheTTL it is answered from memory (including "none") within the TTL.
func (s *Store) Kinds(server string) ([]string, error) {
	if err := checkName(server, KindBearer); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kindsLocked(server)
}

// DeleteServer removes every item of server: the kinds in its index, the
// well-known kinds, and extraKinds (e.g. the secret headers named in the
// catalog), so nothing is left behind even if the index was incomplete.
func (s *Store) DeleteServer(server string, extraKinds ...string) error {
	if err := checkName(server, KindBearer); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kinds, err := s.kindsLocked(server)
	if err != nil {
		return err
	}
	kinds = append(kinds, wellKnownKinds...)
	for _, k := range extraKinds {
		if checkName(server, k) == nil {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	kinds = slices.Compact(kinds)
	for _, k := range kinds {
		account := Account(server, k)
		delete(s.cache, account)
		if _, err := s.removeLocked(account); err != nil {
			return fmt.Errorf("delete the secrets of %q: %w", server, err)
		}
	}
	delete(s.cache, Account(server, indexKind))
	if _, err := s.removeLocked(Account(server, indexKind)); err != nil {
		return fmt.Errorf("delete the secrets of %q: %w", server, err)
	}
	return nil
}

// writeLocked stores value at account, chunked when needed, and removes the
// chunks of a previous longer value.
func (s *Store) writeLocked(account, value string) error {
	oldChunks, err := s.chunkCount(account)
	if err != nil {
		return err
	}
	var newChunks int
	if len(value) <= ChunkSize && !strings.HasPrefix(value, chunkMarker) {
		if err := s.set(account, value); err != nil {
			return err
		}
	} else {
		parts := split(value, ChunkSize)
		for i, p := range parts {
			if err := s.set(chunkAccount(account, i+1), p); err != nil {
				return err
			}
		}
		newChunks = len(parts)
		if err := s.set(account, chunkHeader(value, newChunks)); err != nil {
			return err
		}
	}
	for i := newChunks + 1; i <= oldChunks; i++ {
		if err := s.del(chunkAccount(account, i)); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// removeLocked deletes account and its chunks; found reports whether it existed.
func (s *Store) removeLocked(account string) (found bool, err error) {
	n, err := s.chunkCount(account)
	if err != nil {
		return false, err
	}
	err = s.del(account)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return false, err
	default:
		found = true
	}
	for i := 1; i <= n; i++ {
		if err := s.del(chunkAccount(account, i)); err != nil && !errors.Is(err, ErrNotFound) {
			return found, err
		}
	}
	return found, nil
}

// read returns the value at account, joining chunks. A value that changes
// while it is read (another process writing) is retried once.
func (s *Store) read(account string) (string, error) {
	for attempt := 0; ; attempt++ {
		head, err := s.get(account)
		if err != nil {
			return "", err
		}
		n, sum, chunked := parseChunkHeader(head)
		if !chunked {
			return head, nil
		}
		var b strings.Builder
		for i := 1; i <= n; i++ {
			part, err := s.get(chunkAccount(account, i))
			if err != nil && !errors.Is(err, ErrNotFound) {
				return "", err
			}
			b.WriteString(part)
		}
		if v := b.String(); checksum(v) == sum {
			return v, nil
		}
		if attempt == 1 {
			return "", fmt.Errorf("secret %q is inconsistent in the OS keychain (chunks missing or changed); set it again", account)
		}
	}
}

// chunkCount is the number of chunks of the value at account (0 when it is
// stored whole or absent).
func (s *Store) chunkCount(account string) (int, error) {
	head, err := s.get(account)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, _, _ := parseChunkHeader(head)
	return n, nil
}

func (s *Store) kindsLocked(server string) ([]string, error) {
	account := Account(server, indexKind)
	v, ok := s.recallLocked(account)
	if !ok {
		var err error
		v, err = s.read(account)
		if errors.Is(err, ErrNotFound) {
			v, err = "", nil // cached too: servers without secrets are common
		}
		if err != nil {
			return nil, err
		}
		s.remember(account, v)
	}
	var kinds []string
	for _, k := range strings.Split(v, "\n") {
		if k != "" && checkName(server, k) == nil {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	return slices.Compact(kinds), nil
}

// indexLocked adds kind to (or removes it from) the server's index.
func (s *Store) indexLocked(server, kind string, add bool) error {
	kinds, err := s.kindsLocked(server)
	if err != nil {
		return err
	}
	i, present := slices.BinarySearch(kinds, kind)
	switch {
	case add && !present:
		kinds = slices.Insert(kinds, i, kind)
	case !add && present:
		kinds = slices.Delete(kinds, i, i+1)
	default:
		return nil
	}
	account := Account(server, indexKind)
	delete(s.cache, account)
	if len(kinds) == 0 {
		_, err := s.removeLocked(account)
		return err
	}
	v := strings.Join(kinds, "\n")
	if err := s.writeLocked(account, v); err != nil {
		return err
	}
	s.remember(account, v)
	return nil
}

func (s *Store) remember(account, value string) {
	if s.ttl > 0 {
		s.cache[account] = cached{value: value, expires: time.Now().Add(s.ttl)}
	}
}

func (s *Store) recall(account string) (string, bool) {
	if s.ttl <= 0 {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recallLocked(account)
}

func (s *Store) recallLocked(account string) (string, bool) {
	if s.ttl <= 0 {
		return "", false
	}
	c, ok := s.cache[account]
	if !ok || time.Now().After(c.expires) {
		delete(s.cache, account)
		return "", false
	}
	return c.value, true
}

func (s *Store) set(account, value string) error {
	_, err := s.call(fmt.Sprintf("write %q", account), func() (string, error) {
		return "", s.b.Set(s.service, account, value)
	}, value)
	return err
}

func (s *Store) get(account string) (string, error) {
	return s.call(fmt.Sprintf("read %q", account), func() (string, error) {
		return s.b.Get(s.service, account)
	})
}

func (s *Store) del(account string) error {
	_, err := s.call(fmt.Sprintf("delete %q", account), func() (string, error) {
		return "", s.b.Delete(s.service, account)
	})
	return err
}

// call runs one backend operation with the store's timeout and turns its
// error into ErrNotFound or an *UnavailableError with secrets redacted.
func (s *Store) call(op string, fn func() (string, error), values ...string) (string, error) {
	type result struct {
		v   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	var r result
	select {
	case r = <-done:
	case <-timer.C:
		return "", &UnavailableError{Op: op, Cause: fmt.Errorf("the keychain did not answer within %v (is it waiting for an unlock prompt?)", s.timeout)}
	}
	switch {
	case r.err == nil:
		return r.v, nil
	case errors.Is(r.err, keyring.ErrNotFound):
		return "", ErrNotFound
	case errors.Is(r.err, keyring.ErrSetDataTooBig):
		return "", fmt.Errorf("%s: the keychain refused the value as too big", op)
	}
	msg := s.redactor.Redact(r.err.Error())
	for _, v := range values {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, redacted)
		}
	}
	return "", &UnavailableError{Op: op, Cause: errors.New(msg)}
}

// withOp names the caller's operation in an *UnavailableError (a Set that
// fails on its first read is still "store x").
func withOp(err error, op string) error {
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return &UnavailableError{Op: op, Cause: ue.Cause}
	}
	return err
}

func chunkAccount(account string, i int) string { return account + "#" + strconv.Itoa(i) }

func chunkHeader(value string, n int) string {
	return chunkMarker + strconv.Itoa(n) + ":" + checksum(value)
}

func parseChunkHeader(head string) (n int, sum string, ok bool) {
	rest, ok := strings.CutPrefix(head, chunkMarker)
	if !ok {
		return 0, "", false
	}
	count, sum, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 || n > 10000 {
		return 0, "", false
	}
	return n, sum, true
}

func checksum(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:8])
}

// split cuts v into parts of at most size bytes, never inside a UTF-8
// sequence, so every chunk is valid text for keychains that expect it.
func split(v string, size int) []string {
	var parts []string
	for len(v) > size {
		cut := size
		for cut > size-utf8.UTFMax && cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		parts = append(parts, v[:cut])
		v = v[cut:]
	}
	return append(parts, v)
}

// checkName validates a server name and a kind, which together form an
// account. The errors name the bad part; they never contain a value.
func checkName(server, kind string) error {
	if server == "" {
		return errors.New("secret: empty server name")
	}
	if len(server) > 128 || strings.ContainsAny(server, "/#") || strings.IndexFunc(server, badRune) >= 0 {
		return fmt.Errorf("secret: bad server name %q: use letters, digits and dashes", server)
	}
	if kind == "" {
		return fmt.Errorf("secret for %q: empty kind (e.g. bearer, header/X-API-Key)", server)
	}
	if len(kind) > 200 || strings.Contains(kind, "#") || strings.HasPrefix(kind, ".") ||
		strings.HasPrefix(kind, "/") || strings.HasSuffix(kind, "/") || strings.Contains(kind, "//") ||
		strings.IndexFunc(kind, badRune) >= 0 {
		return fmt.Errorf("secret for %q: bad kind %q (e.g. bearer, local-token, header/X-API-Key, oauth/token)", server, kind)
	}
	return nil
}

func badRune(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError }
