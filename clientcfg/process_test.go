package clientcfg

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestHelperProcessInstall is not a test: TestCrossProcessInstall runs the
// test binary again with KEYPORT_CLIENTCFG_HELPER set, so several real
// processes edit one file at once.
func TestHelperProcessInstall(t *testing.T) {
	file := os.Getenv("KEYPORT_CLIENTCFG_HELPER")
	if file == "" {
		t.Skip("helper process only")
	}
	id := os.Getenv("KEYPORT_CLIENTCFG_ID")
	n, _ := strconv.Atoi(os.Getenv("KEYPORT_CLIENTCFG_N"))
	e, err := NewEditor(Options{StateDir: os.Getenv("KEYPORT_CLIENTCFG_STATE")})
	if err != nil {
		t.Fatal(err)
	}
	cc, _ := Lookup("claude-code")
	for i := 0; i < n; i++ {
		if _, err := e.Install(Target{Client: cc, Path: file}, remoteWant(fmt.Sprintf("p%s-%d", id, i), "4000")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCrossProcessInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, ".claude.json")
	writeFile(t, p, readInput(t, "claude-code.json"), 0o600)
	state := filepath.Join(dir, "state")
	const procs, each = 4, 5
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessInstall$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			"KEYPORT_CLIENTCFG_HELPER="+p,
			"KEYPORT_CLIENTCFG_STATE="+state,
			"KEYPORT_CLIENTCFG_ID="+strconv.Itoa(i),
			"KEYPORT_CLIENTCFG_N="+strconv.Itoa(each))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v", i, err)
		}
	}
	var wants []Want
	for i := 0; i < procs; i++ {
		for j := 0; j < each; j++ {
			wants = append(wants, remoteWant(fmt.Sprintf("p%d-%d", i, j), "4000"))
		}
	}
	cc, _ := Lookup("claude-code")
	st, err := newTestEditor(t).Status(Target{Client: cc, Path: p}, wants)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.State != StateOK {
			t.Errorf("%s: %s %s", s.Key, s.State, s.Detail)
		}
	}
	if len(st) != procs*each {
		t.Errorf("%d statuses, want %d", len(st), procs*each)
	}
	// Every other member survived the 20 concurrent edits.
	if !containsBytes(read(t, p), `"numStartups": 42`) || !containsBytes(read(t, p), `"sentry"`) {
		t.Error("a non-Keyport member was lost")
	}
}
