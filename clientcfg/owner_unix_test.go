//go:build unix

package clientcfg

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOwnerKeptAsRoot: run as root (sudo keyport config …), Keyport must not
// hand the user's config file over to root.
func TestOwnerKeptAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	t.Parallel()
	p := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, p, []byte("{}"), 0o640)
	if err := os.Chown(p, 12345, 23456); err != nil {
		t.Skip("chown not permitted here: ", err)
	}
	if _, err := newTestEditor(t).Install(cursorTarget(p), remoteWant("x", "4000")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 12345 || st.Gid != 23456 || fi.Mode().Perm() != 0o640 {
		t.Errorf("owner %d:%d mode %v, want 12345:23456 0640", st.Uid, st.Gid, fi.Mode().Perm())
	}
}
