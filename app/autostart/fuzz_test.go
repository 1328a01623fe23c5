package autostart

import (
	"strings"
	"testing"
)

// FuzzDesktopEnabled: any desktop file content is read without panicking.
func FuzzDesktopEnabled(f *testing.F) {
	f.Add(desktopFile(New("/usr/bin/keyport")))
	f.Add("[Desktop Entry]\nHidden=true\n")
	f.Add("[x]\n=\n[Desktop Entry")
	f.Fuzz(func(t *testing.T, s string) { desktopEnabled([]byte(s)) })
}

// FuzzExecArg: a quoted Exec argument is one line and, once the string
// escapes and the field-code doubling are undone, quotes exactly the input.
func FuzzExecArg(f *testing.F) {
	for _, s := range []string{"/usr/bin/keyport", "/a b", `a"b$c` + "`d\\e", "50%", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := execArg(s)
		if strings.ContainsAny(q, "\n\r\t") {
			t.Fatalf("execArg(%q) = %q spans lines", s, q)
		}
		if got := unquoteExec(t, q); got != s {
			t.Fatalf("execArg(%q) = %q reads back as %q", s, q, got)
		}
	})
}

// unquoteExec undoes execArg per the Desktop Entry spec.
func unquoteExec(t *testing.T, q string) string {
	// 1. string escapes
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' && i+1 < len(q) {
			i++
			switch q[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(q[i])
			}
			continue
		}
		b.WriteByte(q[i])
	}
	s := b.String()
	// 2. quoting
	if strings.HasPrefix(s, `"`) {
		if len(s) < 2 || !strings.HasSuffix(s, `"`) {
			t.Fatalf("unbalanced quotes in %q", s)
		}
		inner := s[1 : len(s)-1]
		var u strings.Builder
		for i := 0; i < len(inner); i++ {
			if inner[i] == '\\' && i+1 < len(inner) {
				i++
			}
			u.WriteByte(inner[i])
		}
		s = u.String()
	}
	// 3. field codes
	return strings.ReplaceAll(s, "%%", "%")
}
