package apptest

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary runs the built keyport-cli as a person does: its own HOME and
// config dir, the session's real keychain (scripts/session.sh), no other
// state. make test builds it beside KEYPORT_BIN.
type Binary struct {
	Path      string // bin/keyport-cli
	Home      string
	ConfigDir string
	Env       []string
}

// NewBinary returns the built keyport-cli with a fresh home, or skips the
// test when there is none (outside make test; under CI it fails instead).
func NewBinary(t *testing.T) *Binary {
	t.Helper()
	app := os.Getenv("KEYPORT_BIN")
	if app == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("KEYPORT_BIN is not set; make test sets it to the built bin/keyport")
		}
		t.Skip("KEYPORT_BIN is not set (make test sets it to bin/keyport)")
	}
	b := &Binary{Path: filepath.Join(filepath.Dir(app), "keyport-cli"), Home: t.TempDir()}
	if _, err := os.Stat(b.Path); err != nil {
		t.Fatalf("keyport-cli is not beside %s: %v", app, err)
	}
	b.ConfigDir = filepath.Join(b.Home, ".config", "keyport")
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "HOME", "XDG_CONFIG_HOME", "KEYPORT_CONFIG_DIR", "BROWSER":
		default:
			b.Env = append(b.Env, kv)
		}
	}
	b.Env = append(b.Env, "HOME="+b.Home, "XDG_CONFIG_HOME="+filepath.Join(b.Home, ".config"))
	return b
}

// WriteServers writes servers.yaml as a person would edit it.
func (b *Binary) WriteServers(t *testing.T, yaml string) {
	t.Helper()
	if err := os.MkdirAll(b.ConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.ConfigDir, "servers.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Command is keyport-cli args, ready to run with the binary's environment.
func (b *Binary) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(b.Path, args...)
	cmd.Env = b.Env
	cmd.Dir = b.Home
	return cmd
}

// Run runs keyport-cli args with stdin and returns its exit code and output.
func (b *Binary) Run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := b.Command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run keyport-cli %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

var proxyAnnounce = regexp.MustCompile(`^Proxying connections to (.+) on 127\.0\.0\.1:(\d+)\n$`)

// StartProxy runs `keyport-cli proxy args...` until the test ends (then
// interrupts it, as Ctrl-C does) and returns the port it announced and its
// stderr so far, which the test may read after it stopped.
func (b *Binary) StartProxy(t *testing.T, args ...string) (port string, logs *SyncBuffer) {
	t.Helper()
	cmd := b.Command(append([]string{"proxy"}, args...)...)
	logs = &SyncBuffer{}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("keyport-cli proxy did not stop within 10 s of SIGINT")
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("keyport-cli proxy printed nothing: %v (stderr %s)", err, logs.String())
	}
	m := proxyAnnounce.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("keyport-cli proxy announced %q, want exactly \"Proxying connections to NAME on 127.0.0.1:PORT\"", line)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return m[2], logs
}

// SyncBuffer is a bytes.Buffer safe for a process writing while a test reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// String is what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
