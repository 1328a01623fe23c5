package secrets

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the controller and the terminal side of a new pseudo-terminal.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open tty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptmx, tty
}

// TestPrompterTerminalDoesNotEcho types a secret into a real pseudo-terminal
// and checks the prompt was shown, the value read, and nothing echoed.
func TestPrompterTerminalDoesNotEcho(t *testing.T) {
	t.Parallel()
	const secret = "typed-secret-42"
	ptmx, tty := openPTY(t)
	p := NewPrompter(tty, tty)
	if !p.IsTerminal() {
		t.Fatal("a pty is a terminal")
	}
	type result struct {
		v   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := p.Read("bearer token")
		done <- result{v, err}
	}()
	// Collect what the terminal shows.
	var screen bytes.Buffer
	shown := make(chan struct{})
	go func() {
		defer close(shown)
		_, _ = io.Copy(&screen, ptmx)
	}()
	// Type only once echo is off, as a person would after seeing the prompt.
	for {
		tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatalf("tcgetattr: %v", err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := ptmx.WriteString(secret + "\n"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.v != secret {
		t.Fatalf("Read = %q, %v; want %q", r.v, r.err, secret)
	}
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil || tio.Lflag&unix.ECHO == 0 {
		t.Fatalf("echo not restored after the prompt (err %v)", err)
	}
	tty.Close() // the reader sees EIO/EOF once no side holds the terminal
	<-shown
	out := screen.String()
	if !strings.Contains(out, "bearer token: ") {
		t.Fatalf("terminal showed %q, want the prompt", out)
	}
	if strings.Contains(out, secret) {
		t.Fatalf("the secret was echoed: %q", out)
	}
}
