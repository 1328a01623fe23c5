package catalog

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
)

// CheckToolPattern validates one tools.allow/deny pattern: a literal tool
// name, a glob (`*`, `?`, `[...]`), or a regular expression anchored as
// `^...$`. It mirrors the proxy's policy compiler (proxymgr/policy), so a
// pattern accepted here is never rejected when a proxy starts.
func CheckToolPattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	if strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("%q contains spaces or control characters (tool names have none)", p)
	}
	if strings.HasPrefix(p, "^") {
		if !strings.HasSuffix(p, "$") {
			return fmt.Errorf("%q starts with ^ but does not end with $: write regular expressions as ^...$", p)
		}
		if _, err := regexp.Compile(p); err != nil {
			var se *syntax.Error
			if errors.As(err, &se) {
				return fmt.Errorf("%q is not a valid regular expression: %s: %s", p, se.Code, se.Expr)
			}
			return fmt.Errorf("%q is not a valid regular expression: %v", p, err)
		}
		return nil
	}
	if strings.HasSuffix(p, "$") {
		return fmt.Errorf("%q ends with $ but does not start with ^: write regular expressions as ^...$", p)
	}
	if strings.ContainsAny(p, "*?[") {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("%q is not a valid glob: %v", p, err)
		}
	}
	return nil
}
