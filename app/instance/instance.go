// Package instance keeps Keyport to one running window per user and config
// directory. The first launch takes a lock file and listens on a local
// socket in the config directory; a later launch finds the lock taken, asks
// the running one over the socket to bring its window forward, and exits.
//
// The lock (gofrs/flock: flock on Unix, LockFileEx on Windows) decides who
// is first, so two launches racing each other never both win, and a crashed
// instance never blocks the next one (the OS drops its lock). The socket is
// a Unix domain socket on every OS (Windows 10 and later have AF_UNIX), so
// no named-pipe dependency is needed. It is created 0600 in a 0700
// directory; it carries one word and no secret.
package instance

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// ErrRunning is returned by Acquire when another instance runs and was asked
// to show its window.
var ErrRunning = errors.New("Keyport is already running: its window was brought forward")

// EnvConfigDir names the config dir override Keyport honours everywhere.
const EnvConfigDir = "KEYPORT_CONFIG_DIR"

// answerTimeout bounds one exchange with the running instance.
const answerTimeout = 3 * time.Second

// DefaultDir is Keyport's config dir: $KEYPORT_CONFIG_DIR, else
// os.UserConfigDir()/keyport (the same rule as app/catalog.ConfigDir).
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvConfigDir); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config dir (set %s): %w", EnvConfigDir, err)
	}
	return filepath.Join(d, "keyport"), nil
}

// Instance is the running primary instance. Close it on exit.
type Instance struct {
	lock *flock.Flock
	ln   net.Listener
	sock string
	wg   sync.WaitGroup
	once sync.Once
}

// Acquire makes this process the primary instance for dir, calling onShow
// (from a goroutine of its own) whenever a later launch asks for the window.
// When another instance holds dir, Acquire asks it to show its window and
// returns ErrRunning; if that instance does not answer, the error says so.
func Acquire(dir string, onShow func()) (*Instance, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("single instance: create %s: %w", dir, err)
	}
	lockPath := filepath.Join(dir, "keyport.lock")
	lock := flock.New(lockPath)
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("single instance: lock %s: %w", lockPath, err)
	}
	sock := SocketPath(dir)
	if !ok {
		// Another instance holds the lock; it may still be starting, so
		// give its socket a moment to appear.
		if err := signalWithRetry(sock, answerTimeout); err != nil {
			return nil, fmt.Errorf("another Keyport holds %s but does not answer on %s (%v): "+
				"quit it, or end its process if it hangs", lockPath, sock, err)
		}
		return nil, ErrRunning
	}
	// We hold the lock: a socket file left there is stale.
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		_ = lock.Unlock()
		return nil, fmt.Errorf("single instance: listen on %s: %w", sock, err)
	}
	_ = os.Chmod(sock, 0o600)
	in := &Instance{lock: lock, ln: ln, sock: sock}
	in.wg.Add(1)
	go in.serve(onShow)
	return in, nil
}

// SocketPath is where the primary instance of dir listens:
// SocketPathFor(dir, "keyport.sock").
func SocketPath(dir string) string { return SocketPathFor(dir, "keyport.sock") }

// maxSocketPath is the longest socket path SocketPathFor returns as is: the
// OS limit is 104 bytes (macOS) to 108 (Linux), less the terminating NUL.
const maxSocketPath = 100

// SocketPathFor is where a Unix socket named base lives for the config dir
// dir: dir/base. Unix socket paths are limited to about 100 bytes, so a
// longer one becomes base's stem plus a hash of dir in the OS temp dir
// (dir/keyport.sock becomes $TMPDIR/keyport-<hash>.sock), distinct per dir
// and per base. Whoever listens there must make sure no other user can reach
// that socket (see app/remote.Listen).
func SocketPathFor(dir, base string) string {
	p := filepath.Join(dir, base)
	if len(p) < maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(dir))
	stem := strings.TrimSuffix(base, ".sock")
	return filepath.Join(os.TempDir(), stem+"-"+hex.EncodeToString(sum[:6])+".sock")
}

func (in *Instance) serve(onShow func()) {
	defer in.wg.Done()
	for {
		c, err := in.ln.Accept()
		if err != nil {
			return // closed
		}
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(answerTimeout))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "show" {
				_, _ = c.Write([]byte("error: unknown request\n"))
				return
			}
			if onShow != nil {
				onShow()
			}
			_, _ = c.Write([]byte("ok\n"))
		}()
	}
}

// Signal asks the instance listening on sock to show its window.
func Signal(sock string) error {
	c, err := net.DialTimeout("unix", sock, answerTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(answerTimeout))
	if _, err := c.Write([]byte("show\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	if strings.TrimSpace(line) != "ok" {
		return fmt.Errorf("unexpected answer %q", strings.TrimSpace(line))
	}
	return nil
}

func signalWithRetry(sock string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := Signal(sock)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops listening, removes the socket and releases the lock. It is
// safe to call more than once.
func (in *Instance) Close() error {
	var err error
	in.once.Do(func() {
		err = in.ln.Close()
		in.wg.Wait()
		_ = os.Remove(in.sock)
		if uerr := in.lock.Unlock(); err == nil {
			err = uerr
		}
	})
	return err
}
