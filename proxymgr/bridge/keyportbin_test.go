package bridge_test

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestKeyportBinary runs the real `keyport connect` (KEYPORT_BIN, which
// make test sets to the built bin/keyport) with a stripped environment: a
// go-sdk client reaches the upstream through it, and closing the client
// ends the session and the process.
func TestKeyportBinary(t *testing.T) {
	t.Parallel()
	bin := os.Getenv("KEYPORT_BIN")
	if bin == "" {
		t.Skip("KEYPORT_BIN is not set (make test sets it to bin/keyport): skipping the keyport connect smoke test")
	}
	for _, version := range []string{legacy, ""} {
		up := startUpstream(t, upstreamOptions{stateless: version == ""})
		cmd := exec.Command(bin, "connect", "upstream", "--url", up.url(), "--header", "X-Keyport-Test: ${KEYPORT_TEST_HEADER}")
		cmd.Env = []string{"HOME=" + t.TempDir(), "KEYPORT_TEST_HEADER=smoke"}
		cmd.Dir = t.TempDir()
		logs := &syncBuffer{}
		cmd.Stderr = logs
		cs := connect(t, cmd, version, nil)
		if got := callText(t, cs, "echo", map[string]any{"text": "through keyport"}); got != "echo: through keyport" {
			t.Errorf("echo = %q", got)
		}
		if err := cs.Close(); err != nil {
			t.Logf("close: %v", err)
		}
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 0 {
			t.Errorf("keyport connect did not exit cleanly: %v; stderr:\n%s", cmd.ProcessState, logs.String())
		}
		posts := up.seen(http.MethodPost)
		if len(posts) == 0 || posts[len(posts)-1].header.Get("X-Keyport-Test") != "smoke" {
			t.Errorf("the --header value did not reach the server")
		}
		if version == legacy && len(up.seen(http.MethodDelete)) != 1 {
			t.Errorf("keyport connect did not end the session with DELETE")
		}
		if strings.Contains(logs.String(), "panic") {
			t.Errorf("stderr:\n%s", logs.String())
		}
	}
}
