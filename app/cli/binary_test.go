package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// keyportBinary is the built keyport binary the tests drive as a person
// would: KEYPORT_BIN (make test sets it to bin/keyport); without it, the
// CLI is built from this checkout into a temporary directory
// (keyport-cli: the same verbs, without the GUI toolkit).
func keyportBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("KEYPORT_BIN"); bin != "" {
		return bin
	}
	if os.Getenv("CI") != "" {
		t.Fatal("KEYPORT_BIN must be set in CI (make test sets it)")
	}
	bin := filepath.Join(t.TempDir(), "keyport")
	cmd := exec.Command("go", "build", "-o", bin, "keyport/cmd/keyport-cli")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build keyport-cli: %v\n%s", err, out)
	}
	return bin
}

// cliBinary is the keyport-cli beside keyportBinary (what Keyport writes
// into stdio clients' entries), else keyportBinary itself.
func cliBinary(t *testing.T, keyport string) string {
	t.Helper()
	if p := filepath.Join(filepath.Dir(keyport), "keyport-cli"); p != keyport {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return keyport
}
