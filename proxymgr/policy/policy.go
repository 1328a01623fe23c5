// Package policy decides which MCP tools a client may see and call through a
// Keyport proxy.
//
// A policy is an allow list and a deny list of patterns. Each pattern is one
// of:
//
//   - a literal tool name ("search");
//   - a glob, when it contains *, ? or [ ("github_*", "read_?", "[a-c]*"):
//   - matches any run of characters (including none), ? one character,
//     [abc] / [a-z] / [!abc] one character of (or not of) a class;
//   - a regular expression when it starts with ^ and ends with $
//     ("^(get|list)_.*$"), in Go's RE2 syntax, matched against the whole name.
//
// Deny wins over allow; an empty allow list allows every tool that is not
// denied. Allow patterns match case-sensitively, as MCP tool names are
// compared; deny patterns ignore case (Unicode simple folding), because a
// server that looks tools up ignoring case would run delete_repo for a call
// of DELETE_REPO.
package policy

import (
	"fmt"
	"regexp"
	"strings"
)

// Policy is a compiled tool policy. The zero value and nil allow every tool.
type Policy struct {
	allow, deny []matcher
	allowSrc    []string
	denySrc     []string
}

type matcher struct {
	literal string
	re      *regexp.Regexp // nil for a literal
	fold    bool           // a literal matches ignoring case (regexps carry (?i))
}

func (m matcher) match(name string) bool {
	switch {
	case m.re != nil:
		return m.re.MatchString(name)
	case m.fold:
		return strings.EqualFold(name, m.literal)
	default:
		return name == m.literal
	}
}

// Compile validates and compiles allow and deny patterns. An error names the
// list and the pattern to fix.
func Compile(allow, deny []string) (*Policy, error) {
	p := &Policy{allowSrc: append([]string(nil), allow...), denySrc: append([]string(nil), deny...)}
	var err error
	if p.allow, err = compileList("allow", allow, false); err != nil {
		return nil, err
	}
	if p.deny, err = compileList("deny", deny, true); err != nil {
		return nil, err
	}
	return p, nil
}

// MustCompile is Compile for patterns known to be valid (tests, constants);
// it panics on error.
func MustCompile(allow, deny []string) *Policy {
	p, err := Compile(allow, deny)
	if err != nil {
		panic(err)
	}
	return p
}

func compileList(list string, patterns []string, fold bool) ([]matcher, error) {
	out := make([]matcher, 0, len(patterns))
	for i, pat := range patterns {
		m, err := compilePattern(pat, fold)
		if err != nil {
			return nil, fmt.Errorf("tool policy: %s pattern %d %q: %w", list, i+1, pat, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// compilePattern compiles one pattern; fold makes it ignore case.
func compilePattern(pat string, fold bool) (matcher, error) {
	flags := ""
	if fold {
		flags = "(?i)"
	}
	switch {
	case strings.TrimSpace(pat) == "":
		return matcher{}, fmt.Errorf("empty pattern; give a tool name, a glob such as \"github_*\" or a regexp such as \"^get_.*$\"")
	case strings.HasPrefix(pat, "^") && strings.HasSuffix(pat, "$") && len(pat) >= 2:
		if _, err := regexp.Compile(pat); err != nil {
			return matcher{}, fmt.Errorf("invalid regular expression: %w", err)
		}
		re := regexp.MustCompile(flags + pat)
		return matcher{re: re}, nil
	case strings.ContainsAny(pat, "*?["):
		expr, err := globToRegexp(pat)
		if err != nil {
			return matcher{}, err
		}
		re, err := regexp.Compile(flags + expr)
		if err != nil {
			return matcher{}, fmt.Errorf("invalid glob: %w", err)
		}
		return matcher{re: re}, nil
	default:
		return matcher{literal: pat, fold: fold}, nil
	}
}

// globToRegexp translates a glob into an anchored regular expression.
func globToRegexp(glob string) (string, error) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	rs := []rune(glob)
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(rs) && (rs[j] == '!' || rs[j] == '^') {
				j++
			}
			if j < len(rs) && rs[j] == ']' { // a leading ] is a literal member
				j++
			}
			for j < len(rs) && rs[j] != ']' {
				j++
			}
			if j >= len(rs) {
				return "", fmt.Errorf("unclosed [ in glob; close the character class with ]")
			}
			class := rs[i+1 : j]
			b.WriteByte('[')
			if len(class) > 0 && (class[0] == '!' || class[0] == '^') {
				b.WriteByte('^')
				class = class[1:]
			}
			if len(class) == 0 {
				return "", fmt.Errorf("empty character class [] in glob")
			}
			for k, r := range class {
				switch {
				case r == '-' && k > 0 && k < len(class)-1:
					b.WriteRune('-') // a range
				case r == '\\' || r == '[' || r == ']' || r == '^' || r == '-':
					b.WriteByte('\\')
					b.WriteRune(r)
				default:
					b.WriteRune(r)
				}
			}
			b.WriteByte(']')
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)$`)
	return b.String(), nil
}

// Allowed reports whether the tool may be listed and called.
func (p *Policy) Allowed(tool string) bool {
	if p == nil {
		return true
	}
	for _, m := range p.deny {
		if m.match(tool) {
			return false
		}
	}
	if len(p.allow) == 0 {
		return true
	}
	for _, m := range p.allow {
		if m.match(tool) {
			return true
		}
	}
	return false
}

// Empty reports whether the policy allows every tool (no patterns at all), so
// callers can skip inspection work.
func (p *Policy) Empty() bool { return p == nil || (len(p.allow) == 0 && len(p.deny) == 0) }

// Allow returns the allow patterns as given.
func (p *Policy) Allow() []string {
	if p == nil {
		return nil
	}
	return append([]string(nil), p.allowSrc...)
}

// Deny returns the deny patterns as given.
func (p *Policy) Deny() []string {
	if p == nil {
		return nil
	}
	return append([]string(nil), p.denySrc...)
}

// String summarizes the policy for messages, e.g. `allow [github_*], deny [delete_*]`.
func (p *Policy) String() string {
	if p.Empty() {
		return "all tools allowed"
	}
	var parts []string
	if len(p.allowSrc) > 0 {
		parts = append(parts, fmt.Sprintf("allow %q", p.allowSrc))
	}
	if len(p.denySrc) > 0 {
		parts = append(parts, fmt.Sprintf("deny %q", p.denySrc))
	}
	return strings.Join(parts, ", ")
}
