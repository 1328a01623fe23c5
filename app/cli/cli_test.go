package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// TestOAuthClientMetadata: keyport oauth client-metadata prints the Client
// ID Metadata Document for the URL it will be hosted at, with the fixed
// loopback redirect; without a URL it says where to give one.
func TestOAuthClientMetadata(t *testing.T) {
	t.Parallel()
	code, out, errOut := run(t, "oauth", "client-metadata", "--url", "https://corp.example/keyport/client.json", "--redirect-port", "40000")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if doc["client_id"] != "https://corp.example/keyport/client.json" || doc["client_name"] != "Keyport" ||
		doc["token_endpoint_auth_method"] != "none" || fmt.Sprint(doc["redirect_uris"]) != "[http://127.0.0.1:40000/callback]" {
		t.Errorf("document %v", doc)
	}
	code, _, errOut = run(t, "oauth", "client-metadata")
	if code != ExitFailure || !strings.Contains(errOut, "--url") || !strings.Contains(errOut, "oauth.client_metadata_url") {
		t.Errorf("without a URL: exit %d, %q", code, errOut)
	}
	code, _, errOut = run(t, "oauth", "client-metadata", "--url", "http://corp.example/c.json")
	if code != ExitFailure || !strings.Contains(errOut, "https URL with a path") {
		t.Errorf("an http URL: exit %d, %q", code, errOut)
	}
}

// TestUsageHintsAreExact: the hint after a usage error is a command the
// user can paste as it is, for keyport and keyport-cli alike (it read
// "Run 'keyport  --help' for usage." for an unknown verb).
func TestUsageHintsAreExact(t *testing.T) {
	t.Parallel()
	for _, prog := range []string{"keyport", "keyport-cli"} {
		for _, tt := range []struct {
			argv []string
			want string
		}{
			{[]string{"bogus"}, "Run '" + prog + " --help' for usage.\n"},
			{[]string{"--bogus"}, "Run '" + prog + " --help' for usage.\n"},
			{[]string{"ls", "--bogus"}, "Run '" + prog + " ls --help' for usage.\n"},
			{[]string{"ls", "extra"}, "Run '" + prog + " ls --help' for usage.\n"},
			{[]string{"secret", "bogus"}, "Run '" + prog + " secret --help' for usage.\n"},
			{[]string{"secret", "set"}, "Run '" + prog + " secret set --help' for usage.\n"},
			{[]string{"registry", "import"}, "Run '" + prog + " registry import --help' for usage.\n"},
		} {
			var out, errb bytes.Buffer
			code := mainWith(context.Background(), prog, tt.argv, IO{In: strings.NewReader(""), Out: &out, Err: &errb}, newCLIEnv(t).opts)
			lines := strings.SplitAfter(errb.String(), "\n")
			if code != ExitUsage || len(lines) < 2 || lines[len(lines)-2] != tt.want {
				t.Errorf("%s %q: exit %d, stderr %q; want the last line %q", prog, tt.argv, code, errb.String(), tt.want)
			}
		}
	}
	var out, errb bytes.Buffer
	mainWith(context.Background(), "keyport-cli", []string{"bogus"}, IO{In: strings.NewReader(""), Out: &out, Err: &errb}, newCLIEnv(t).opts)
	if !strings.Contains(errb.String(), `unknown command "bogus" for "keyport-cli"`) {
		t.Errorf("keyport-cli bogus: %q", errb.String())
	}
}
