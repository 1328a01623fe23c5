package catalog

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"keyport/proxymgr/policy"
)

// CheckToolPattern validates one tools.allow/deny pattern: a literal tool
// name, a glob (`*`, `?`, `[...]`), or a regular expression anchored as
// `^...$`. It compiles the pattern with the proxy's own compiler
// (proxymgr/policy), so a pattern accepted here never fails when a proxy
// starts; before that it catches half-anchored regular expressions, which
// the compiler would silently take as globs.
func CheckToolPattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	if strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("%q contains spaces or control characters (tool names have none)", p)
	}
	if strings.HasPrefix(p, "^") != strings.HasSuffix(p, "$") || p == "^" || p == "$" {
		return fmt.Errorf("%q: write regular expressions as ^...$ (both anchors), or use a glob such as delete_*", p)
	}
	if _, err := policy.Compile([]string{p}, nil); err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // drop the compiler's "tool policy: allow pattern 1" context
		}
		return fmt.Errorf("%q: %v", p, err)
	}
	return nil
}
