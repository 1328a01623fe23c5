package secrets

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

// requireRealKeychain skips unless the test runs inside scripts/session.sh
// (private D-Bus + gnome-keyring), and fails in CI where it always should.
func requireRealKeychain(t *testing.T) {
	t.Helper()
	if os.Getenv("KEYPORT_TEST_KEYRING") == "1" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI must run keychain tests under scripts/session.sh (make test)")
	}
	t.Skip("real keychain tests run under scripts/session.sh; use make test")
}

// TestRealSecretServiceRoundTrip proves the test session reaches a real
// Secret Service: set, get and delete a secret through go-keyring.
func TestRealSecretServiceRoundTrip(t *testing.T) {
	requireRealKeychain(t)
	const service, account = "keyport-test", "roundtrip/bearer"
	if err := keyring.Set(service, account, "s3cret value"); err != nil {
		t.Fatalf("set: %v", err)
	}
	got, err := keyring.Get(service, account)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got != "s3cret value" {
		t.Fatalf("get = %q, want the value set", got)
	}
	if err := keyring.Delete(service, account); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := keyring.Get(service, account); err != keyring.ErrNotFound {
		t.Fatalf("get after delete: err = %v, want ErrNotFound", err)
	}
}

// realStore is a Store on the real keychain under a service of its own, so
// tests never touch a user's "keyport" items; its items are removed at the end.
func realStore(t *testing.T, servers ...string) *Store {
	t.Helper()
	s := New(Options{Service: "keyport-test-" + strings.ReplaceAll(t.Name(), "/", "-")})
	t.Cleanup(func() {
		for _, srv := range servers {
			if err := s.DeleteServer(srv); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return s
}

// TestRealKeychainChunking stores a 10 kB value in the real Secret Service,
// checks it is spread over chunk items no larger than ChunkSize, reads it
// back, shrinks it, and deletes everything with DeleteServer.
func TestRealKeychainChunking(t *testing.T) {
	requireRealKeychain(t)
	s := realStore(t, "big")
	if err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	value := strings.Repeat("0123456789abcdef", 640) // 10,240 bytes
	if err := s.Set("big", OAuthKind("token"), value); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := s.Set("big", HeaderKind("X-API-Key"), "header-value-1"); err != nil {
		t.Fatalf("Set header: %v", err)
	}
	got, err := s.Get("big", OAuthKind("token"))
	if err != nil || got != value {
		t.Fatalf("Get = %d bytes, %v; want the 10,240 set", len(got), err)
	}
	// Look at the raw items through go-keyring itself.
	head, err := keyring.Get(s.service, "big/oauth/token")
	if err != nil || !strings.HasPrefix(head, chunkMarker+"4:") {
		t.Fatalf("raw header item = %q, %v; want a 4-chunk header", head, err)
	}
	for i := 1; i <= 4; i++ {
		part, err := keyring.Get(s.service, fmt.Sprintf("big/oauth/token#%d", i))
		if err != nil || len(part) == 0 || len(part) > ChunkSize {
			t.Fatalf("chunk %d: %d bytes, %v", i, len(part), err)
		}
	}
	// Overwrite with fewer chunks: the extra ones go.
	if err := s.Set("big", OAuthKind("token"), value[:3000]); err != nil {
		t.Fatalf("Set shorter: %v", err)
	}
	for i := 3; i <= 4; i++ {
		if _, err := keyring.Get(s.service, fmt.Sprintf("big/oauth/token#%d", i)); err != keyring.ErrNotFound {
			t.Fatalf("chunk %d after shrinking: err = %v, want ErrNotFound", i, err)
		}
	}
	if got, err := s.Get("big", OAuthKind("token")); err != nil || got != value[:3000] {
		t.Fatalf("Get after shrinking = %d bytes, %v", len(got), err)
	}
	if kinds, err := s.Kinds("big"); err != nil || !slices.Equal(kinds, []string{"header/X-Api-Key", "oauth/token"}) {
		t.Fatalf("Kinds = %q, %v", kinds, err)
	}
	if err := s.DeleteServer("big"); err != nil {
		t.Fatalf("DeleteServer: %v", err)
	}
	for _, a := range []string{"big/oauth/token", "big/oauth/token#1", "big/oauth/token#2", "big/header/X-Api-Key", "big/.index"} {
		if _, err := keyring.Get(s.service, a); err != keyring.ErrNotFound {
			t.Errorf("%s after DeleteServer: err = %v, want ErrNotFound", a, err)
		}
	}
}

// TestRealKeychainErrors provokes the two ways a real keychain is missing, in
// child processes (go-keyring keeps one D-Bus connection per process):
// a session bus that does not exist, and a gnome-keyring whose login
// keyring was never unlocked (no prompter can appear: there is no display).
func TestRealKeychainErrors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("provoking a missing keychain is Linux-specific")
	}
	t.Run("no session bus", func(t *testing.T) {
		t.Parallel()
		env := append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(t.TempDir(), "nobus"))
		out := runHelper(t, exec.Command(os.Args[0], "-test.run=^TestKeychainHelperProcess$"), env)
		checkUnavailable(t, out)
	})
	t.Run("locked keyring", func(t *testing.T) {
		t.Parallel()
		for _, tool := range []string{"dbus-run-session", "gnome-keyring-daemon"} {
			if _, err := exec.LookPath(tool); err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s is missing; run make deps", tool)
				}
				t.Skipf("%s is missing; run make deps", tool)
			}
		}
		home, run := t.TempDir(), t.TempDir()
		if err := os.Chmod(run, 0o700); err != nil {
			t.Fatal(err)
		}
		env := append(os.Environ(), "HOME="+home, "XDG_RUNTIME_DIR="+run, "XDG_DATA_HOME="+filepath.Join(home, "data"), "DISPLAY=", "WAYLAND_DISPLAY=")
		cmd := exec.Command("dbus-run-session", "--", "sh", "-c",
			`eval "$(gnome-keyring-daemon --start --components=secrets)" && exec "$0" -test.run='^TestKeychainHelperProcess$'`, os.Args[0])
		checkUnavailable(t, runHelper(t, cmd, env))
	})
}

func runHelper(t *testing.T, cmd *exec.Cmd, env []string) string {
	t.Helper()
	cmd.Env = append(env, "KEYPORT_KEYCHAIN_HELPER=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}
	return string(out)
}

func checkUnavailable(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, helperSecret) {
		t.Fatalf("the secret value leaked into the output:\n%s", out)
	}
	for _, want := range []string{
		"set: unavailable=true: no OS keychain available: store \"x/bearer\": ",
		"Keyport keeps secrets only in the OS keychain; start or unlock your keyring",
		"get: unavailable=true: ",
		"check: unavailable=true: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("helper output lacks %q:\n%s", want, out)
		}
	}
}

const helperSecret = "helper-secret-0123456789"

// TestKeychainHelperProcess runs only as the child of TestRealKeychainErrors.
func TestKeychainHelperProcess(t *testing.T) {
	if os.Getenv("KEYPORT_KEYCHAIN_HELPER") != "1" {
		t.Skip("helper process for TestRealKeychainErrors")
	}
	s := New(Options{Service: "keyport-test-helper", Timeout: 20 * time.Second})
	report := func(op string, err error) {
		fmt.Printf("%s: unavailable=%v: %v\n", op, errors.Is(err, ErrUnavailable), err)
	}
	report("set", s.Set("x", KindBearer, helperSecret))
	_, err := s.Get("x", KindBearer)
	report("get", err)
	report("check", s.Check())
}
