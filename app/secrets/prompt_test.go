package secrets

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrompterFromStdin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		reads []string // values, or "error: ..." for an expected error
	}{
		{"one per line", "tok-1\nkey-2\r\n", []string{"tok-1", "key-2"}},
		{"last line without newline", "tok-1\nkey-2", []string{"tok-1", "key-2"}},
		{"inner spaces kept", "  a b  \n", []string{"  a b  "}},
		{"empty line", "\nnext\n", []string{"error: empty value for bearer token", "next"}},
		{"no input", "", []string{"error: read bearer token from stdin: no input (pipe the value in, one per line, or run in a terminal)"}},
		{"too few lines", "one\n", []string{"one", "error: read bearer token from stdin: no input (pipe the value in, one per line, or run in a terminal)"}},
		{"too long", strings.Repeat("x", MaxSecretLen+10) + "\n", []string{"error: read bearer token from stdin: value longer than 65536 bytes"}},
		{"long but fine", strings.Repeat("y", MaxSecretLen) + "\n", []string{strings.Repeat("y", MaxSecretLen)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var prompts bytes.Buffer
			p := NewPrompter(strings.NewReader(tt.input), &prompts)
			if p.IsTerminal() {
				t.Fatal("a strings.Reader is not a terminal")
			}
			for i, want := range tt.reads {
				got, err := p.Read("bearer token")
				if msg, isErr := strings.CutPrefix(want, "error: "); isErr {
					if err == nil || err.Error() != msg {
						t.Fatalf("read %d: err = %v, want %q", i, err, msg)
					}
					continue
				}
				if err != nil || got != want {
					t.Fatalf("read %d = %.20q, %v; want %.20q", i, got, err, want)
				}
			}
			if prompts.Len() != 0 {
				t.Fatalf("prompted %q on a non-terminal", prompts.String())
			}
		})
	}
}
