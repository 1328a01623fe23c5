package pins

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Text is a definition as a person reviews it: its description, and the
// rest of what the model reads (title, schemas, annotations) as indented
// JSON, both through Printable (every character visible as itself or as
// an escape).
type Text struct {
	Description string
	Schema      string
}

// Present splits a canonical definition (or nil: none) into its review
// text.
func Present(canonical []byte) Text {
	if len(canonical) == 0 {
		return Text{}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(canonical, &m); err != nil {
		return Text{Schema: string(canonical)}
	}
	var t Text
	if d, ok := m["description"]; ok {
		if err := json.Unmarshal(d, &t.Description); err != nil {
			t.Description = string(d)
		}
	}
	delete(m, "description")
	delete(m, "name")
	if len(m) > 0 {
		// Marshal sorts the keys; Indent keeps every value's own bytes.
		b, _ := json.Marshal(m)
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			t.Schema = out.String()
		} else {
			t.Schema = string(b)
		}
	}
	t.Description, t.Schema = Printable(t.Description), Printable(t.Schema)
	return t
}

// Op says what a diff line is.
type Op byte

// Diff line kinds.
const (
	Same    Op = ' '
	Removed Op = '-'
	Added   Op = '+'
)

// Line is one line of a diff.
type Line struct {
	Op   Op
	Text string
}

// maxDiffLines bounds the quadratic diff; longer texts are shown as
// replaced whole.
const maxDiffLines = 2000

// Diff is the line diff from old to new (a longest common subsequence, so
// unchanged lines show as such).
func Diff(old, new string) []Line {
	a, b := splitLines(old), splitLines(new)
	if len(a)*len(b) > maxDiffLines*maxDiffLines/4 || len(a) > maxDiffLines || len(b) > maxDiffLines {
		var out []Line
		for _, l := range a {
			out = append(out, Line{Removed, l})
		}
		for _, l := range b {
			out = append(out, Line{Added, l})
		}
		return out
	}
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	lcs := make([][]int32, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []Line
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			out = append(out, Line{Same, a[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, Line{Removed, a[i]})
			i++
		default:
			out = append(out, Line{Added, b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		out = append(out, Line{Removed, a[i]})
	}
	for ; j < len(b); j++ {
		out = append(out, Line{Added, b[j]})
	}
	return out
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Row is one row of a side-by-side diff: the old line on the left, the new
// on the right. A missing side is Op Added (no old line) or Removed (no new
// line); a changed line has both and Op Modified.
type Row struct {
	Op       Op
	Old, New string
}

// Modified marks a row whose two sides differ.
const Modified Op = '~'

// SideBySide pairs the removed and added lines of each change of d into
// rows, as a side-by-side view shows them.
func SideBySide(d []Line) []Row {
	var rows []Row
	for i := 0; i < len(d); {
		if d[i].Op == Same {
			rows = append(rows, Row{Same, d[i].Text, d[i].Text})
			i++
			continue
		}
		var del, add []string
		for ; i < len(d) && d[i].Op != Same; i++ {
			if d[i].Op == Removed {
				del = append(del, d[i].Text)
			} else {
				add = append(add, d[i].Text)
			}
		}
		for k := 0; k < max(len(del), len(add)); k++ {
			switch {
			case k < len(del) && k < len(add):
				rows = append(rows, Row{Modified, del[k], add[k]})
			case k < len(del):
				rows = append(rows, Row{Removed, del[k], ""})
			default:
				rows = append(rows, Row{Added, "", add[k]})
			}
		}
	}
	return rows
}

// Unified writes d as unified-diff lines ("-old", "+new", " same").
func Unified(d []Line) string {
	var b strings.Builder
	for _, l := range d {
		b.WriteByte(byte(l.Op))
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}
