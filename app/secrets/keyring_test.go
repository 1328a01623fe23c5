package secrets

import (
	"os"
	"testing"

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
