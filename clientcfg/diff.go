package clientcfg

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// unifiedDiff renders a unified diff (3 lines of context) of two versions
// of a file, with the given secret values replaced by "[redacted]". CRLF
// line ends are shown as plain lines.
func unifiedDiff(name string, a, b []byte, secrets []string) string {
	if bytes.Equal(a, b) {
		return ""
	}
	const ctx = 3
	// Only the lines around the bytes that differ are split and diffed, so a
	// small change to a large file stays cheap.
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	start := backLines(a, p, ctx)
	endA, endB := fwdLines(a, len(a)-s, ctx), fwdLines(b, len(b)-s, ctx)
	off := bytes.Count(a[:start], []byte("\n"))
	al, bl := splitLines(string(a[start:endA])), splitLines(string(b[start:endB]))
	ops := diffLines(al, bl)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", name, name)
	for i := 0; i < len(ops); {
		// Find the next change.
		for i < len(ops) && ops[i].kind == ' ' {
			i++
		}
		if i == len(ops) {
			break
		}
		start := max(i-ctx, 0)
		end := i
		// Extend the hunk while changes are within 2*ctx of each other.
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			j := end
			for j < len(ops) && ops[j].kind == ' ' {
				j++
			}
			if j == len(ops) || j-end > 2*ctx {
				end = min(end+ctx, len(ops))
				break
			}
			end = j
		}
		aStart, bStart, aN, bN := ops[start].a, ops[start].b, 0, 0
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				aN++
			}
			if o.kind != '-' {
				bN++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(off+aStart, aN), hunkRange(off+bStart, bN))
		for _, o := range ops[start:end] {
			line := ""
			if o.kind == '+' {
				line = bl[o.b]
			} else {
				line = al[o.a]
			}
			sb.WriteByte(o.kind)
			sb.WriteString(strings.TrimRight(line, "\r\n"))
			sb.WriteByte('\n')
		}
		i = end
	}
	out := sb.String()
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		q := quote(s)
		out = strings.ReplaceAll(out, q[1:len(q)-1], "[redacted]")
	}
	return redactJSONSecrets(out)
}

var (
	// "GITHUB_TOKEN": "…", "OPENAI_API_KEY": "…", "Authorization": "…"…
	secretFieldRE = regexp.MustCompile(`(?i)("[^"\\\n]*(?:token|secret|passw|authorization|api[-_]?key|apikey|credential|cookie|private[-_]?key)[^"\\\n]*"\s*:\s*")((?:[^"\\\n]|\\.)+)(")`)
	// a bare "Bearer x" / "Basic x" value under any key
	bearerRE = regexp.MustCompile(`(?i)("(?:bearer|basic)\s+)((?:[^"\\\n]|\\.)+)(")`)
)

// redactJSONSecrets hides the values of fields whose names look secret and
// of Bearer/Basic credentials, so a diff shown or logged leaks no
// neighbouring server's API key.
func redactJSONSecrets(s string) string {
	s = secretFieldRE.ReplaceAllString(s, "${1}[redacted]${3}")
	return bearerRE.ReplaceAllString(s, "${1}[redacted]${3}")
}

// backLines returns the start of the line n lines above the one holding pos.
func backLines(x []byte, pos, n int) int {
	i := bytes.LastIndexByte(x[:pos], '\n') + 1
	for ; n > 0 && i > 0; n-- {
		i = bytes.LastIndexByte(x[:i-1], '\n') + 1
	}
	return i
}

// fwdLines returns the end (past the line break) of the line n lines below
// the one holding pos.
func fwdLines(x []byte, pos, n int) int {
	i := pos
	for k := 0; k <= n; k++ {
		j := bytes.IndexByte(x[i:], '\n')
		if j < 0 {
			return len(x)
		}
		i += j + 1
	}
	return i
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprint(start + 1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

type diffOp struct {
	kind byte // ' ', '-', '+'
	a, b int  // line indexes (for '+', a is where it goes; for '-', b likewise)
}

// diffLines returns an edit script from a to b: the common prefix and
// suffix are trimmed, the middle is diffed with Myers' algorithm (or
// replaced whole if it differs too much).
func diffLines(a, b []string) []diffOp {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	var ops []diffOp
	for i := 0; i < p; i++ {
		ops = append(ops, diffOp{' ', i, i})
	}
	ops = append(ops, myers(a[p:len(a)-s], b[p:len(b)-s], p, p)...)
	for i := 0; i < s; i++ {
		ops = append(ops, diffOp{' ', len(a) - s + i, len(b) - s + i})
	}
	return ops
}

const maxDiffD = 500

func myers(a, b []string, ao, bo int) []diffOp {
	n, m := len(a), len(b)
	replaceAll := func() []diffOp {
		var ops []diffOp
		for i := range a {
			ops = append(ops, diffOp{'-', ao + i, bo})
		}
		for j := range b {
			ops = append(ops, diffOp{'+', ao + n, bo + j})
		}
		return ops
	}
	if n == 0 || m == 0 {
		return replaceAll()
	}
	limit := min(n+m, maxDiffD)
	off := limit + 1
	v := make([]int, 2*limit+3)
	var trace [][]int
	found := -1
	for d := 0; d <= limit && found < 0; d++ {
		trace = append(trace, append([]int(nil), v[off-d-1:off+d+2]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				found = d
				break
			}
		}
	}
	if found < 0 {
		return replaceAll()
	}
	var rev []diffOp
	x, y := n, m
	for d := found; d > 0; d-- {
		vd := trace[d]
		at := func(k int) int { return vd[k+d+1] }
		k := x - y
		var pk int
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := at(pk)
		py := px - pk
		for x > px && y > py {
			x--
			y--
			rev = append(rev, diffOp{' ', ao + x, bo + y})
		}
		if x == px {
			y--
			rev = append(rev, diffOp{'+', ao + x, bo + y})
		} else {
			x--
			rev = append(rev, diffOp{'-', ao + x, bo + y})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, diffOp{' ', ao + x, bo + y})
	}
	ops := make([]diffOp, len(rev))
	for i := range rev {
		ops[i] = rev[len(rev)-1-i]
	}
	return ops
}
