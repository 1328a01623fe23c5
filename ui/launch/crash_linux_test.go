package launch

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWindowOutlivesATrayCrash: when the tray process dies without a word
// (SIGKILL), the window process does not vanish with it: it stays to tell
// the user (ui.BackendLost) and offer to start Keyport again. (A Quit,
// which says goodbye, closes it: TestTrayOverDBus.)
func TestWindowOutlivesATrayCrash(t *testing.T) {
	bin := os.Getenv("KEYPORT_BIN")
	need(t, "KEYPORT_BIN is not set (the keyport binary to launch)", bin != "")
	_, errX := exec.LookPath("Xvfb")
	need(t, "Xvfb is not installed", errX == nil)
	home := t.TempDir()
	ready := filepath.Join(home, "ready")
	// An X server of the test's own (xvfb-run would take it down with the
	// tray process, and the window with it).
	display := startXvfb(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"DISPLAY="+display,
		"DBUS_SESSION_BUS_ADDRESS=", // no tray icon needed
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"),
		"KEYPORT_CONFIG_DIR="+filepath.Join(home, "kp"),
		"KEYPORT_SCREENSHOTS=",
		"KEYPORT_READY_FILE="+ready,
	)
	if err := os.Mkdir(filepath.Join(home, "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("app output:\n%s", logs.String())
		}
	})

	var window int
	waitUntil(t, 60*time.Second, exited, "the window process", func() bool {
		b, err := os.ReadFile(ready)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		window, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return window > 0
	})
	tray := parentOf(t, window)
	if cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(tray) + "/cmdline"); !strings.HasPrefix(string(cmdline), bin+"\x00") && string(cmdline) != bin+"\x00" {
		t.Fatalf("the window's parent %d is %q, not the tray process", tray, cmdline)
	}
	if err := syscall.Kill(tray, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The window learns at once (its socket closes); give it time to exit if
	// it wrongly would.
	time.Sleep(3 * time.Second)
	if !alive(window) {
		t.Fatalf("the window process %d vanished with the tray process instead of telling the user", window)
	}
}

// startXvfb starts an X server on a free display until the test ends and
// returns its DISPLAY.
func startXvfb(t *testing.T) string { return startXvfbSized(t, "1280x800") }

// startXvfbSized is startXvfb with a screen of the given size (WxH).
func startXvfbSized(t *testing.T, size string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	x := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", size+"x24", "-nolisten", "tcp")
	x.ExtraFiles = []*os.File{w}
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { x.Process.Kill(); x.Wait() })
	line := make(chan string, 1)
	go func() {
		b := make([]byte, 16)
		n, _ := r.Read(b)
		line <- strings.TrimSpace(string(b[:n]))
	}()
	select {
	case d := <-line:
		if d == "" {
			t.Fatal("Xvfb did not say its display")
		}
		return ":" + d
	case <-time.After(30 * time.Second):
		t.Fatal("Xvfb did not start")
	}
	return ""
}

// parentOf is pid's parent process id.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...: comm may hold spaces, so cut after ')'.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return ppid
}

// alive reports whether pid runs (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}
