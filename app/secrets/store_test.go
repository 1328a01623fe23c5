package secrets

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

// memBackend is an in-memory keychain for unit tests of the Store's logic.
// Like Windows' Credential Manager, it refuses values above 2,560 bytes, so
// a chunking bug shows up here and not only on one platform.
type memBackend struct {
	mu    sync.Mutex
	items map[string]string // service + "\x00" + account
	gets  atomic.Int64
	fail  error         // returned by every call when set
	block chan struct{} // when set, calls wait on it
}

func newMem() *memBackend { return &memBackend{items: map[string]string{}} }

func (m *memBackend) Set(service, account, value string) error {
	if err := m.wait(); err != nil {
		return err
	}
	if len(value) > 2560 {
		return keyring.ErrSetDataTooBig
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[service+"\x00"+account] = value
	return nil
}

func (m *memBackend) Get(service, account string) (string, error) {
	m.gets.Add(1)
	if err := m.wait(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.items[service+"\x00"+account]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (m *memBackend) Delete(service, account string) error {
	if err := m.wait(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := service + "\x00" + account
	if _, ok := m.items[k]; !ok {
		return keyring.ErrNotFound
	}
	delete(m.items, k)
	return nil
}

func (m *memBackend) wait() error {
	if m.block != nil {
		<-m.block
	}
	return m.fail
}

// accounts lists the stored accounts of service, sorted.
func (m *memBackend) accounts(service string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range maps.Keys(m.items) {
		if s, a, _ := strings.Cut(k, "\x00"); s == service {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

func newTestStore(t *testing.T) (*Store, *memBackend) {
	t.Helper()
	m := newMem()
	return New(Options{Backend: m, Service: "keyport-test"}), m
}

func TestSetGetRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		value    string
		accounts []string // what the keychain holds afterwards
	}{
		{"short", "tok-123", []string{"gh/.index", "gh/bearer"}},
		{"exactly the limit", strings.Repeat("a", ChunkSize), []string{"gh/.index", "gh/bearer"}},
		{"one byte over", strings.Repeat("b", ChunkSize+1), []string{"gh/.index", "gh/bearer", "gh/bearer#1", "gh/bearer#2"}},
		{"10 kB", strings.Repeat("0123456789", 1000), []string{"gh/.index", "gh/bearer", "gh/bearer#1", "gh/bearer#2", "gh/bearer#3", "gh/bearer#4"}},
		// 'é' is 2 bytes: byte 2560 falls inside a rune, the chunk must not.
		{"utf-8 across the boundary", "x" + strings.Repeat("é", 2000), []string{"gh/.index", "gh/bearer", "gh/bearer#1", "gh/bearer#2"}},
		// A short value that looks like a chunk header is stored chunked, so it reads back as itself.
		{"looks like a chunk header", chunkMarker + "3:abc", []string{"gh/.index", "gh/bearer", "gh/bearer#1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, m := newTestStore(t)
			if err := s.Set("gh", KindBearer, tt.value); err != nil {
				t.Fatalf("Set: %v", err)
			}
			got, err := s.Get("gh", KindBearer)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got != tt.value {
				t.Fatalf("Get returned %d bytes, want the %d set", len(got), len(tt.value))
			}
			if acc := m.accounts("keyport-test"); !slices.Equal(acc, tt.accounts) {
				t.Fatalf("keychain accounts = %q, want %q", acc, tt.accounts)
			}
			for _, a := range m.accounts("keyport-test") {
				v, _ := m.Get("keyport-test", a)
				if !utf8Valid(v) {
					t.Errorf("item %s is not valid UTF-8", a)
				}
			}
		})
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestOverwriteRemovesUnusedChunks(t *testing.T) {
	t.Parallel()
	s, m := newTestStore(t)
	steps := []struct {
		value    string
		accounts []string
	}{
		{strings.Repeat("a", 10000), []string{"gh/.index", "gh/bearer", "gh/bearer#1", "gh/bearer#2", "gh/bearer#3", "gh/bearer#4"}},
		{strings.Repeat("b", 3000), []string{"gh/.index", "gh/bearer", "gh/bearer#1", "gh/bearer#2"}},
		{"small", []string{"gh/.index", "gh/bearer"}},
		{strings.Repeat("c", 6000), []string{"gh/.index", "gh/bearer", "gh/bearer#1", "gh/bearer#2", "gh/bearer#3"}},
	}
	for i, st := range steps {
		if err := s.Set("gh", KindBearer, st.value); err != nil {
			t.Fatalf("step %d: Set: %v", i, err)
		}
		if got, err := s.Get("gh", KindBearer); err != nil || got != st.value {
			t.Fatalf("step %d: Get = %d bytes, %v; want the %d bytes set", i, len(got), err, len(st.value))
		}
		if acc := m.accounts("keyport-test"); !slices.Equal(acc, st.accounts) {
			t.Fatalf("step %d: accounts = %q, want %q", i, acc, st.accounts)
		}
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	s, m := newTestStore(t)
	if err := s.Set("gh", HeaderKind("x-api-key"), strings.Repeat("k", 5000)); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("gh", KindBearer, "tok-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("gh", HeaderKind("X-API-KEY")); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if acc := m.accounts("keyport-test"); !slices.Equal(acc, []string{"gh/.index", "gh/bearer"}) {
		t.Fatalf("after Delete accounts = %q", acc)
	}
	if kinds, err := s.Kinds("gh"); err != nil || !slices.Equal(kinds, []string{"bearer"}) {
		t.Fatalf("Kinds = %q, %v; want [bearer]", kinds, err)
	}
	err := s.Delete("gh", HeaderKind("X-API-Key"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: err = %v, want ErrNotFound", err)
	}
	if want := `secret "gh/header/X-Api-Key": not found in the OS keychain`; err.Error() != want {
		t.Fatalf("second Delete: %q, want %q", err, want)
	}
	_, err = s.Get("gh", HeaderKind("X-API-Key"))
	if want := `secret "gh/header/X-Api-Key": not found in the OS keychain; set it with: keyport secret set gh header/X-Api-Key`; err == nil || err.Error() != want {
		t.Fatalf("Get after Delete: %v, want %q", err, want)
	}
	if err := s.Delete("gh", KindBearer); err != nil {
		t.Fatal(err)
	}
	if acc := m.accounts("keyport-test"); len(acc) != 0 {
		t.Fatalf("after deleting everything accounts = %q, want none (the empty index goes too)", acc)
	}
}

func TestDeleteServer(t *testing.T) {
	t.Parallel()
	s, m := newTestStore(t)
	for _, kv := range [][2]string{
		{KindBearer, "bearer-a"},
		{HeaderKind("X-API-Key"), strings.Repeat("h", 7000)},
		{KindLocalToken, "local-a"},
		{OAuthKind("token"), `{"access_token":"at"}`},
	} {
		if err := s.Set("a", kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set("b", KindBearer, "bearer-b"); err != nil {
		t.Fatal(err)
	}
	// Items the index does not list: a well-known kind and a header written
	// by another process whose index update was lost.
	for _, a := range []string{"a/oauth/client-secret", "a/header/X-Other"} {
		if err := m.Set("keyport-test", a, "stray"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteServer("a", HeaderKind("x-other")); err != nil {
		t.Fatalf("DeleteServer: %v", err)
	}
	if acc := m.accounts("keyport-test"); !slices.Equal(acc, []string{"b/.index", "b/bearer"}) {
		t.Fatalf("after DeleteServer(a) accounts = %q, want only b's", acc)
	}
	if v, err := s.Get("b", KindBearer); err != nil || v != "bearer-b" {
		t.Fatalf("b's bearer = %q, %v", v, err)
	}
	// Idempotent.
	if err := s.DeleteServer("a"); err != nil {
		t.Fatalf("second DeleteServer: %v", err)
	}
}

func TestNamesAreValidated(t *testing.T) {
	t.Parallel()
	s, m := newTestStore(t)
	tests := []struct {
		server, kind, value, want string
	}{
		{"", KindBearer, "v", "secret: empty server name"},
		{"a/b", KindBearer, "v", `secret: bad server name "a/b": use letters, digits and dashes`},
		{"a b", KindBearer, "v", `secret: bad server name "a b": use letters, digits and dashes`},
		{"gh", "", "v", `secret for "gh": empty kind (e.g. bearer, header/X-API-Key)`},
		{"gh", ".index", "v", `secret for "gh": bad kind ".index" (e.g. bearer, local-token, header/X-API-Key, oauth/token)`},
		{"gh", "bearer#1", "v", `secret for "gh": bad kind "bearer#1" (e.g. bearer, local-token, header/X-API-Key, oauth/token)`},
		{"gh", "header/", "v", `secret for "gh": bad kind "header/" (e.g. bearer, local-token, header/X-API-Key, oauth/token)`},
		{"gh", "a b", "v", `secret for "gh": bad kind "a b" (e.g. bearer, local-token, header/X-API-Key, oauth/token)`},
		{"gh", KindBearer, "", `secret "gh/bearer": empty value; give a non-empty secret`},
	}
	for _, tt := range tests {
		err := s.Set(tt.server, tt.kind, tt.value)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Set(%q, %q): %v, want %q", tt.server, tt.kind, err, tt.want)
		}
	}
	if acc := m.accounts("keyport-test"); len(acc) != 0 {
		t.Fatalf("rejected Sets wrote %q", acc)
	}
}

func TestUnavailableErrorIsActionableAndRedacted(t *testing.T) {
	t.Parallel()
	const secret = "sk-live-0123456789"
	m := newMem()
	// A backend whose error echoes the value (as a confused D-Bus service might).
	m.fail = fmt.Errorf("org.freedesktop.DBus.Error.ServiceUnknown: cannot store %q", secret)
	s := New(Options{Backend: m, Service: "keyport-test"})
	// Set first: from then on the store's redactor knows the value.
	for _, c := range []struct {
		name string
		op   func() error
	}{
		{"set", func() error { return s.Set("gh", KindBearer, secret) }},
		{"get", func() error { _, err := s.Get("gh", KindBearer); return err }},
		{"delete", func() error { return s.Delete("gh", KindBearer) }},
		{"server", func() error { return s.DeleteServer("gh") }},
		{"check", s.Check},
	} {
		name, err := c.name, c.op()
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: err = %v, want ErrUnavailable", name, err)
		}
		msg := err.Error()
		if strings.Contains(msg, secret) {
			t.Fatalf("%s: error contains the secret: %s", name, msg)
		}
		for _, want := range []string{"no OS keychain available: ", "ServiceUnknown", "Keyport keeps secrets only in the OS keychain; ", "unlock your"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q lacks %q", name, msg, want)
			}
		}
	}
}

func TestTimeoutIsUnavailable(t *testing.T) {
	t.Parallel()
	m := newMem()
	m.block = make(chan struct{})
	defer close(m.block)
	s := New(Options{Backend: m, Service: "keyport-test", Timeout: 20 * time.Millisecond})
	_, err := s.Get("gh", KindBearer)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	want := `no OS keychain available: read "gh/bearer": the keychain did not answer within 20ms (is it waiting for an unlock prompt?)`
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %q, want prefix %q", err, want)
	}
}

func TestInconsistentChunks(t *testing.T) {
	t.Parallel()
	s, m := newTestStore(t)
	if err := s.Set("gh", KindBearer, strings.Repeat("z", 6000)); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete("keyport-test", "gh/bearer#2"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get("gh", KindBearer)
	want := `secret "gh/bearer" is inconsistent in the OS keychain (chunks missing or changed); set it again`
	if err == nil || err.Error() != want {
		t.Fatalf("Get: %v, want %q", err, want)
	}
	// Setting it again repairs it.
	if err := s.Set("gh", KindBearer, "fresh"); err != nil {
		t.Fatal(err)
	}
	if acc := m.accounts("keyport-test"); !slices.Equal(acc, []string{"gh/.index", "gh/bearer"}) {
		t.Fatalf("accounts = %q", acc)
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	m := newMem()
	s := New(Options{Backend: m, Service: "keyport-test", CacheTTL: time.Hour})
	if err := s.Set("gh", KindBearer, "v1"); err != nil {
		t.Fatal(err)
	}
	before := m.gets.Load()
	for range 5 {
		if v, err := s.Get("gh", KindBearer); err != nil || v != "v1" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	if n := m.gets.Load() - before; n != 0 {
		t.Fatalf("cached Gets hit the keychain %d times", n)
	}
	if err := s.Set("gh", KindBearer, "v2"); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("gh", KindBearer); v != "v2" {
		t.Fatalf("Get after Set = %q, want v2", v)
	}
	// Kinds is cached as well, and kept right by this store's writes.
	before = m.gets.Load()
	for range 3 {
		if k, err := s.Kinds("gh"); err != nil || !slices.Equal(k, []string{"bearer"}) {
			t.Fatalf("Kinds = %q, %v", k, err)
		}
		if k, err := s.Kinds("none"); err != nil || len(k) != 0 {
			t.Fatalf("Kinds(none) = %q, %v", k, err)
		}
	}
	if n := m.gets.Load() - before; n > 1 {
		t.Fatalf("cached Kinds hit the keychain %d times (at most once, for the server without secrets)", n)
	}
	if err := s.Delete("gh", KindBearer); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("gh", KindBearer); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if k, err := s.Kinds("gh"); err != nil || len(k) != 0 {
		t.Fatalf("Kinds after Delete = %q, %v", k, err)
	}
	if err := s.Set("gh", HeaderKind("X-A"), "v-a"); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.Kinds("gh"); !slices.Equal(k, []string{"header/X-A"}) {
		t.Fatalf("Kinds after Set = %q", k)
	}
	if err := s.DeleteServer("gh"); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.Kinds("gh"); len(k) != 0 {
		t.Fatalf("Kinds after DeleteServer = %q", k)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s, m := newTestStore(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			server := fmt.Sprintf("s%d", i%3)
			kind := HeaderKind(fmt.Sprintf("X-H%d", i))
			v := strings.Repeat(string(rune('a'+i)), 3000+i)
			for range 10 {
				if err := s.Set(server, kind, v); err != nil {
					t.Error(err)
					return
				}
				if got, err := s.Get(server, kind); err != nil || got != v {
					t.Errorf("Get = %d bytes, %v", len(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range 3 {
		kinds, err := s.Kinds(fmt.Sprintf("s%d", i))
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for j := range 8 {
			if j%3 == i {
				want++
			}
		}
		if len(kinds) != want {
			t.Errorf("s%d kinds = %q, want %d", i, kinds, want)
		}
	}
	for i := range 3 {
		if err := s.DeleteServer(fmt.Sprintf("s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if acc := m.accounts("keyport-test"); len(acc) != 0 {
		t.Fatalf("left behind: %q", acc)
	}
}

func TestStoreTeachesRedactor(t *testing.T) {
	t.Parallel()
	s, m := newTestStore(t)
	if err := s.Set("gh", KindBearer, "ghp_written_here"); err != nil {
		t.Fatal(err)
	}
	if err := m.Set("keyport-test", "gh/header/X-Api-Key", "key-from-another-process"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("gh", HeaderKind("X-API-Key")); err != nil {
		t.Fatal(err)
	}
	got := s.Redactor().Redact("sent ghp_written_here and key-from-another-process")
	if want := "sent [REDACTED] and [REDACTED]"; got != want {
		t.Fatalf("Redact = %q, want %q", got, want)
	}
}
