package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain lets tests run this binary as the real keyport command: with
// KEYPORT_AS_MAIN=1 it runs main with the arguments in KEYPORT_ARGS.
func TestMain(m *testing.M) {
	if os.Getenv("KEYPORT_AS_MAIN") == "1" {
		os.Args = append([]string{"keyport"}, strings.Fields(os.Getenv("KEYPORT_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runKeyport(t *testing.T, env []string, args string) (string, string, int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(env, "KEYPORT_AS_MAIN=1", "KEYPORT_ARGS="+args, "HOME="+t.TempDir())
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestNoDisplayIsAClearErrorNotAPanic(t *testing.T) {
	t.Parallel()
	out, errOut, code := runKeyport(t, []string{"PATH=" + os.Getenv("PATH")}, "")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errOut)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	for _, want := range []string{"graphical session", "keyport --help"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q does not mention %q", errOut, want)
		}
	}
	if strings.Contains(errOut, "panic") || strings.Contains(errOut, "goroutine") {
		t.Errorf("stderr shows a panic: %q", errOut)
	}
}

func TestBackgroundStartIsTheGUI(t *testing.T) {
	t.Parallel()
	_, errOut, code := runKeyport(t, []string{"PATH=" + os.Getenv("PATH")}, "--background")
	if code != 1 || !strings.Contains(errOut, "graphical session") {
		t.Fatalf("keyport --background without a display: exit %d, stderr %q; want the GUI's no-display error", code, errOut)
	}
}

func TestCLIRunsWithoutDisplay(t *testing.T) {
	t.Parallel()
	out, errOut, code := runKeyport(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "keyport ") {
		t.Fatalf("keyport version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestWindowWithoutTrayIsAClearError(t *testing.T) {
	t.Parallel()
	env := []string{"PATH=" + os.Getenv("PATH"), "DISPLAY=:99", "KEYPORT_CONFIG_DIR=" + t.TempDir()}
	_, errOut, code := runKeyport(t, env, "--window")
	if code != 1 || !strings.Contains(errOut, "Keyport is not running") || !strings.Contains(errOut, "start it with 'keyport'") {
		t.Fatalf("keyport --window with no tray process: exit %d, stderr %q; want a clear error", code, errOut)
	}
}

// TestQuietInTheCLocale: in the C locale of containers and minimal
// sessions (LANG=C.UTF-8) a command prints nothing on stderr; fyne used to
// log "Error parsing user locale C" at init for every one (see earlyinit).
func TestQuietInTheCLocale(t *testing.T) {
	env := []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	out, errOut, code := runKeyport(t, env, "version")
	if code != 0 || !strings.HasPrefix(out, "keyport ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
	if errOut != "" {
		t.Errorf("stderr in the C locale: %q", errOut)
	}
}
