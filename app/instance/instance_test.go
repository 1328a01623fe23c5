package instance

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// shortDir returns a temp dir short enough for a Unix socket path.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "kp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestSecondLaunchShowsTheFirst(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	var shown atomic.Int32
	first, err := Acquire(dir, func() { shown.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if fi, err := os.Stat(SocketPath(dir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v, mode %v; want 0600", err, fi.Mode())
	}
	for i := 1; i <= 2; i++ {
		second, err := Acquire(dir, func() { t.Error("the second instance was asked to show") })
		if !errors.Is(err, ErrRunning) || second != nil {
			t.Fatalf("second Acquire = %v, %v; want ErrRunning", second, err)
		}
		if got := shown.Load(); got != int32(i) {
			t.Fatalf("first instance shown %d times, want %d", got, i)
		}
	}
}

func TestCloseReleasesForTheNext(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	first, err := Acquire(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(SocketPath(dir)); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}
	next, err := Acquire(dir, nil)
	if err != nil {
		t.Fatalf("Acquire after Close: %v", err)
	}
	next.Close()
}

func TestStaleSocketIsReplaced(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	// A crash leaves the socket file but no lock.
	if err := os.WriteFile(SocketPath(dir), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := Acquire(dir, nil)
	if err != nil {
		t.Fatalf("Acquire over a stale socket: %v", err)
	}
	defer in.Close()
	if err := Signal(SocketPath(dir)); err != nil {
		t.Errorf("Signal: %v", err)
	}
}

func TestLockHolderThatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	first, err := Acquire(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	first.ln.Close() // the holder hangs: lock held, nobody answers
	first.wg.Wait()
	start := time.Now()
	_, err = Acquire(dir, nil)
	if err == nil || errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("Acquire = %v, want a 'does not answer' error", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Error("gave up too late")
	}
}

func TestUnknownRequestIsRefused(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	var shown atomic.Int32
	in, err := Acquire(dir, func() { shown.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	conn, err := dialRaw(SocketPath(dir), "quit\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(conn, "error") || shown.Load() != 0 {
		t.Errorf("answer %q, shown %d; want an error and no show", conn, shown.Load())
	}
}

func TestLongDirGetsAShortSocket(t *testing.T) {
	t.Parallel()
	long := filepath.Join(shortDir(t), strings.Repeat("d", 120))
	if p := SocketPath(long); len(p) >= 100 || !strings.HasPrefix(filepath.Base(p), "keyport-") {
		t.Errorf("SocketPath(long) = %q", p)
	}
	in, err := Acquire(long, nil)
	if err != nil {
		t.Fatalf("Acquire with a long dir: %v", err)
	}
	defer in.Close()
	if _, err := Acquire(long, nil); !errors.Is(err, ErrRunning) {
		t.Errorf("second Acquire = %v", err)
	}
}

// TestAcrossProcesses runs the second launch as a real separate process.
func TestAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("KEYPORT_INSTANCE_CHILD"); dir != "" {
		_, err := Acquire(dir, nil)
		if errors.Is(err, ErrRunning) {
			os.Exit(3)
		}
		os.Exit(1)
	}
	t.Parallel()
	dir := shortDir(t)
	var shown atomic.Int32
	in, err := Acquire(dir, func() { shown.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcrossProcesses$")
	cmd.Env = append(os.Environ(), "KEYPORT_INSTANCE_CHILD="+dir)
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child: %v, want exit 3 (ErrRunning)", err)
	}
	if shown.Load() != 1 {
		t.Errorf("shown %d times, want 1", shown.Load())
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv(EnvConfigDir, "/tmp/kp-x")
	if d, err := DefaultDir(); err != nil || d != "/tmp/kp-x" {
		t.Errorf("DefaultDir = %q, %v", d, err)
	}
}

func TestSocketPathFor(t *testing.T) {
	t.Parallel()
	short := shortDir(t)
	long := filepath.Join(short, strings.Repeat("d", 120))
	longer := filepath.Join(short, strings.Repeat("e", 120))
	tests := []struct {
		name, dir, base string
		want            func(string) bool
	}{
		{"short dir keeps the socket inside", short, "keyport-core.sock",
			func(p string) bool { return p == filepath.Join(short, "keyport-core.sock") }},
		{"long dir moves to the temp dir", long, "keyport-core.sock", func(p string) bool {
			return len(p) < maxSocketPath && filepath.Dir(p) == filepath.Clean(os.TempDir()) &&
				strings.HasPrefix(filepath.Base(p), "keyport-core-") && strings.HasSuffix(p, ".sock")
		}},
		{"SocketPath is SocketPathFor keyport.sock", long, "keyport.sock",
			func(p string) bool { return p == SocketPath(long) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p := SocketPathFor(tt.dir, tt.base); !tt.want(p) {
				t.Errorf("SocketPathFor(%q, %q) = %q", tt.dir, tt.base, p)
			}
		})
	}
	// Distinct per dir and per base, so the one-word instance socket and
	// the core socket never collide.
	seen := map[string]bool{}
	for _, d := range []string{long, longer} {
		for _, b := range []string{"keyport.sock", "keyport-core.sock"} {
			p := SocketPathFor(d, b)
			if seen[p] {
				t.Errorf("SocketPathFor(%q, %q) = %q collides", d, b, p)
			}
			seen[p] = true
		}
	}
}
