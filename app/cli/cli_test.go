package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"keyport/app"
)

func run(t *testing.T, argv ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = MainWith(context.Background(), argv, IO{In: strings.NewReader(""), Out: &out, Err: &errb}, newCLIEnv(t).opts)
	return code, out.String(), errb.String()
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, "version")
	if code != ExitOK || !strings.HasPrefix(out, "keyport "+app.Version+" ") {
		t.Fatalf("version: code %d, out %q", code, out)
	}
	code, out, _ = run(t, "--version")
	if code != ExitOK || out != "keyport "+app.Version+"\n" {
		t.Fatalf("--version: code %d, out %q", code, out)
	}
	code, out, _ = run(t, "--help")
	if code != ExitOK || !strings.Contains(out, "version") || !strings.Contains(out, "Usage:") {
		t.Fatalf("--help: code %d, out %q", code, out)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	for _, argv := range [][]string{{"nosuchverb"}, {"version", "extra"}, {"--nosuchflag"}} {
		code, out, errOut := run(t, argv...)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want %d (stderr %q)", argv, code, ExitUsage, errOut)
		}
		if out != "" {
			t.Errorf("%q: wrote %q to stdout; errors belong on stderr", argv, out)
		}
		if !strings.Contains(errOut, "--help") {
			t.Errorf("%q: stderr %q does not point at --help", argv, errOut)
		}
	}
}
