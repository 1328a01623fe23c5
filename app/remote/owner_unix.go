//go:build unix

package remote

import (
	"fmt"
	"os"
	"syscall"
)

// checkOwner refuses a socket file that is not a socket or that another
// user owns: the client would send it the user's secrets.
func checkOwner(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("check Keyport's socket: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s is not a socket: remove it and launch Keyport again", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to another user (uid %d), not to you: refusing to talk to it; "+
			"remove it and launch Keyport again", path, st.Uid)
	}
	return nil
}
