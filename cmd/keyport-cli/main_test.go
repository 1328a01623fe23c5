package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoGUI: the point of this binary is to stay free of the GUI
// toolkit; an import of fyne (or of anything cgo-only) anywhere below
// app/cli would silently double every bridge's memory.
func TestLinksNoGUI(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.CgoFiles}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, cgo, _ := strings.Cut(line, " ")
		if strings.HasPrefix(path, "fyne.io/fyne") || strings.Contains(path, "go-gl/") {
			t.Errorf("keyport-cli links %s (GUI toolkit)", path)
		}
		if cgo != "[]" && !strings.HasPrefix(path, "runtime") && !isStd(path) {
			t.Errorf("keyport-cli links %s, which needs cgo (%s)", path, cgo)
		}
	}
}

// isStd reports whether path is a standard library package (they may have
// cgo files used only when cgo is on, like net and os/user).
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// TestRunsAsTheCLI: built, it answers like keyport's CLI.
func TestRunsAsTheCLI(t *testing.T) {
	bin := t.TempDir() + "/keyport-cli"
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build without cgo: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "version")
	cmd.Env = append(os.Environ(), "LANG=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "keyport ") {
		t.Fatalf("keyport-cli version: %v %q", err, out)
	}
	cmd = exec.Command(bin, "connect")
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "name a server") {
		t.Errorf("keyport-cli connect without a server: exit %d, %q", cmd.ProcessState.ExitCode(), out)
	}
	// Its usage hints name it, not keyport (which may not be on PATH).
	cmd = exec.Command(bin, "bogus")
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.HasSuffix(string(out), "\nRun 'keyport-cli --help' for usage.\n") {
		t.Errorf("keyport-cli bogus: exit %d, %q", cmd.ProcessState.ExitCode(), out)
	}
}
