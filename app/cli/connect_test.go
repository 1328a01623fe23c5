package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseHeaders(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TOKEN": "s3cret", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	cases := []struct {
		in      []string
		want    map[string]string
		errHas  string
		errNot  string
		comment string
	}{
		{in: []string{"Authorization: Bearer ${TOKEN}", "X-A:b", "x-a: c"}, want: map[string]string{"Authorization": "Bearer s3cret", "X-A": "b"}},
		{in: []string{"X-Literal: $TOKEN and {TOKEN}"}, want: map[string]string{"X-Literal": "$TOKEN and {TOKEN}"}, comment: "only ${VAR} expands"},
		{in: []string{"no colon"}, errHas: "'Name: value'"},
		{in: []string{": value"}, errHas: "'Name: value'"},
		{in: []string{"Bad Name: v"}, errHas: "valid header name"},
		{in: []string{"X: ${MISSING}"}, errHas: "${MISSING} is not set"},
		{in: []string{"X: ${EMPTY}"}, errHas: "${EMPTY} is not set"},
		{in: []string{"X: a\nb"}, errHas: "line break"},
		{in: []string{"Authorization: Bearer ${TOKEN}\r\n"}, want: map[string]string{"Authorization": "Bearer s3cret"}},
	}
	for _, tc := range cases {
		h, err := parseHeaders(tc.in, getenv)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.errHas)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%q: the error reveals a secret: %v", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		for k, v := range tc.want {
			if h.Get(k) != v {
				t.Errorf("%q: %s = %q, want %q", tc.in, k, h.Get(k), v)
			}
		}
	}
}

// TestConnectCommand: usage errors exit 2 with a hint on stderr; a client
// that closes its input at once ends the bridge cleanly, with nothing but
// MCP (here: nothing) on stdout.
func TestConnectCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		argv   []string
		code   int
		errHas string
	}{
		{[]string{"connect"}, ExitUsage, "pass an endpoint with --url"},
		{[]string{"connect", "docs"}, ExitFailure, `no server "docs"`},
		{[]string{"connect", "--url", "mcp.example.com"}, ExitUsage, "absolute http:// or https://"},
		{[]string{"connect", "--url", "http://127.0.0.1:9/mcp", "--header", "nocolon"}, ExitUsage, "'Name: value'"},
		{[]string{"connect", "a", "b", "--url", "http://127.0.0.1:9/mcp"}, ExitUsage, "accepts at most 1 arg"},
		{[]string{"connect", "--url", "http://127.0.0.1:9/mcp"}, ExitOK, ""},
		{[]string{"connect", "--url", "http://127.0.0.1:9/mcp", "--log-file", filepath.Join(t.TempDir(), "bridge.log"), "-v"}, ExitOK, ""},
		{[]string{"connect", "--url", "http://127.0.0.1:9/mcp", "--log-file", filepath.Join(t.TempDir(), "no", "such", "dir.log")}, ExitFailure, "open the log file"},
	} {
		var out, errb bytes.Buffer
		code := MainWith(context.Background(), tc.argv, IO{In: strings.NewReader(""), Out: &out, Err: &errb}, newCLIEnv(t).opts)
		if code != tc.code || !strings.Contains(errb.String(), tc.errHas) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tc.argv, code, errb.String(), tc.code, tc.errHas)
		}
		if out.Len() != 0 {
			t.Errorf("%q: wrote %q to stdout, which belongs to the MCP stream", tc.argv, out.String())
		}
	}
}
