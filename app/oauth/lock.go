package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// ConfigDir is Keyport's configuration directory: $KEYPORT_CONFIG_DIR, or
// os.UserConfigDir()/keyport.
func ConfigDir() (string, error) {
	if d := os.Getenv("KEYPORT_CONFIG_DIR"); d != "" {
		// Absolute, so processes started in other directories share locks.
		abs, err := filepath.Abs(d)
		if err != nil {
			return "", fmt.Errorf("KEYPORT_CONFIG_DIR=%q: %w", d, err)
		}
		return abs, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory (set KEYPORT_CONFIG_DIR): %w", err)
	}
	return filepath.Join(base, "keyport"), nil
}

// DefaultLockDir is where the per-server sign-in locks live:
// ConfigDir()/locks.
func DefaultLockDir() (string, error) {
	d, err := ConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "locks"), nil
}

// lockFileName is the lock file of server: readable, and unique even for
// names that differ only in characters a file name cannot hold.
func lockFileName(server string) string {
	var b strings.Builder
	for _, r := range server {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 64 {
		name = name[:64]
	}
	sum := sha256.Sum256([]byte(server))
	return "oauth-" + name + "-" + hex.EncodeToString(sum[:4]) + ".lock"
}

// lockRetry is how often a waiting process retries the lock.
const lockRetry = 20 * time.Millisecond

// serverLock takes the cross-process lock of server's sign-in. Every writer
// of server's tokens (a refresh in any proxy or bridge process, a login, a
// logout) holds it, so a rotating refresh token is used exactly once.
// The returned func releases it.
func serverLock(ctx context.Context, dir, server string) (func(), error) {
	return lockFile(ctx, dir, lockFileName(server), server)
}

// PromptLock takes the cross-process lock that makes the sign-ins proxies
// start on their own (step-up, a dead refresh token) single-flight: every
// process's proxies ask for at most one sign-in per server at a time; the
// others wait (bounded by ctx), then find the new sign-in in the keychain.
// It sits beside the refresh lock (same directory and mechanism) but is
// another file: a sign-in holds it for as long as the person takes in the
// browser, and refreshes in other processes must not wait that long (the
// sign-in takes the refresh lock only to store its tokens).
func PromptLock(ctx context.Context, dir, server string) (func(), error) {
	return lockFile(ctx, dir, strings.TrimSuffix(lockFileName(server), ".lock")+".prompt.lock", server)
}

// BrowserOpenedAt is when a proxy of any process last opened the browser
// to sign in to server (MarkBrowserOpened); zero if never.
func BrowserOpenedAt(dir, server string) time.Time {
	fi, err := os.Stat(browserStamp(dir, server))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// MarkBrowserOpened records that a proxy opened the browser for server now
// (the modification time of a stamp file beside the locks; it holds nothing).
func MarkBrowserOpened(dir, server string, now time.Time) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the lock directory %s: %w", dir, err)
	}
	p := browserStamp(dir, server)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("record the sign-in prompt of %s: %w", server, err)
	}
	f.Close()
	return os.Chtimes(p, now, now)
}

func browserStamp(dir, server string) string {
	return filepath.Join(dir, strings.TrimSuffix(lockFileName(server), ".lock")+".browser")
}

// lockFile takes the lock file name in dir, for server's messages.
func lockFile(ctx context.Context, dir, name, server string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the lock directory %s: %w", dir, err)
	}
	fl := flock.New(filepath.Join(dir, name), flock.SetPermissions(0o600))
	ok, err := fl.TryLockContext(ctx, lockRetry)
	if err != nil || !ok {
		_ = fl.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("wait for the sign-in lock of %s (%s): %w", server, fl.Path(), err)
	}
	return func() { _ = fl.Unlock(); _ = fl.Close() }, nil
}
