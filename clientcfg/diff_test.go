package clientcfg

import (
	"fmt"
	"math/rand"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var hunkRE = regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@$`)

// applyUnified applies a unified diff to a, checking every context and
// removed line against a at the hunk's line numbers.
func applyUnified(t *testing.T, a string, diff string) string {
	t.Helper()
	al := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	if a == "" {
		al = nil
	}
	lines := strings.Split(strings.TrimSuffix(diff, "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "--- ") || !strings.HasPrefix(lines[1], "+++ ") {
		t.Fatalf("no header:\n%s", diff)
	}
	var out []string
	pos := 0 // next line of a to copy
	for i := 2; i < len(lines); {
		m := hunkRE.FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("bad hunk header %q", lines[i])
		}
		start, _ := strconv.Atoi(m[1])
		n := 1
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
		if n > 0 {
			start-- // 1-based
		}
		if start < pos {
			t.Fatalf("hunks overlap at %q", lines[i])
		}
		out = append(out, al[pos:start]...)
		pos = start
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "@@"); i++ {
			l := lines[i]
			switch l[0] {
			case ' ', '-':
				if pos >= len(al) || al[pos] != l[1:] {
					t.Fatalf("line %d of a is %q, diff says %q", pos+1, al[min(pos, len(al)-1)], l)
				}
				if l[0] == ' ' {
					out = append(out, al[pos])
				}
				pos++
			case '+':
				out = append(out, l[1:])
			}
		}
	}
	out = append(out, al[pos:]...)
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}

func TestUnifiedDiffApplies(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 300; iter++ {
		n := rng.Intn(60)
		var a []string
		for i := 0; i < n; i++ {
			a = append(a, fmt.Sprintf("line %d %d", i, rng.Intn(3)))
		}
		b := append([]string(nil), a...)
		for e := rng.Intn(6); e >= 0; e-- {
			switch k := rng.Intn(3); {
			case k == 0 && len(b) > 0:
				i := rng.Intn(len(b))
				b = append(b[:i], b[i+1:]...)
			case k == 1:
				i := rng.Intn(len(b) + 1)
				b = append(b[:i], append([]string{fmt.Sprintf("new %d", rng.Intn(100))}, b[i:]...)...)
			case len(b) > 0:
				b[rng.Intn(len(b))] += " changed"
			}
		}
		as, bs := strings.Join(a, "\n"), strings.Join(b, "\n")
		if len(a) > 0 {
			as += "\n"
		}
		if len(b) > 0 {
			bs += "\n"
		}
		d := unifiedDiff("f", []byte(as), []byte(bs), nil)
		if as == bs {
			if d != "" {
				t.Fatalf("diff of equal texts: %q", d)
			}
			continue
		}
		if got := applyUnified(t, as, d); got != bs {
			t.Fatalf("iteration %d: applying the diff gives\n%q\nwant\n%q\ndiff:\n%s", iter, got, bs, d)
		}
	}
}

func TestUnifiedDiffRedactsAndNumbers(t *testing.T) {
	t.Parallel()
	var a strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&a, "line %d\n", i)
	}
	before := a.String()
	after := strings.Replace(before, "line 50\n", "line 50 \"token\": \"s3cr3t-value\"\n", 1)
	d := unifiedDiff("x.json", []byte(before), []byte(after), []string{"s3cr3t-value"})
	want := "--- x.json\n+++ x.json\n@@ -47,7 +47,7 @@\n line 47\n line 48\n line 49\n-line 50\n+line 50 \"token\": \"[redacted]\"\n line 51\n line 52\n line 53\n"
	if d != want {
		t.Errorf("diff:\n%s\nwant\n%s", d, want)
	}
}

func TestDiffRedactsNeighbourSecrets(t *testing.T) {
	t.Parallel()
	before := []byte(`{
  "mcpServers": {
    "github": {
      "command": "npx",
      "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_abcdefghijklmnop", "OPENAI_API_KEY": "sk-1234567890"},
      "headers": {"X-Custom": "Bearer eyJhbGciOi.payload.sig", "Authorization": "Basic dXNlcjpwYXNz"}
    }
  },
  "theme": "dark"
}
`)
	after := []byte(strings.Replace(string(before), `"command": "npx"`, `"command": "npx2"`, 1))
	d := unifiedDiff("x.json", before, after, nil)
	for _, leak := range []string{"ghp_abcdefghijklmnop", "sk-1234567890", "eyJhbGciOi", "dXNlcjpwYXNz"} {
		if strings.Contains(d, leak) {
			t.Errorf("diff leaks %q:\n%s", leak, d)
		}
	}
	for _, keep := range []string{`-      "command": "npx",`, `+      "command": "npx2",`, `"GITHUB_PERSONAL_ACCESS_TOKEN": "[redacted]"`, `"X-Custom": "Bearer [redacted]"`} {
		if !strings.Contains(d, keep) {
			t.Errorf("diff lacks %q:\n%s", keep, d)
		}
	}
}
