package clientcfg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tailscale/hujson"
)

// ConfigError reports a config file Keyport will not edit, with the place
// to fix. The file was not written.
type ConfigError struct {
	Path         string
	Line, Column int // 1-based; 0 when unknown
	Msg          string
}

func (e *ConfigError) Error() string {
	where := e.Path
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d:%d", e.Path, e.Line, e.Column)
	}
	return fmt.Sprintf("%s: %s (Keyport left the file unchanged; fix it and retry)", where, e.Msg)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// doc is a parsed config file. All offsets are into src, the file without
// its BOM.
type doc struct {
	path     string
	bom      bool
	src      []byte
	blank    bool // missing, empty or only whitespace
	root     hujson.Value
	rootObj  *hujson.Object
	nl       string // the file's line break: "\n" or "\r\n"
	standard bool   // no comments, no trailing commas: keep it plain JSON
}

var hujsonErrRE = regexp.MustCompile(`^hujson: line (\d+), column (\d+): (.*)$`)

// parseDoc parses raw (the whole file) as a JSONC config whose root must be
// an object. A blank file parses as an empty document.
func parseDoc(path string, raw []byte) (*doc, error) {
	d := &doc{path: path, nl: "\n"}
	src := raw
	if bytes.HasPrefix(src, utf8BOM) {
		d.bom = true
		src = src[len(utf8BOM):]
	} else if bytes.HasPrefix(src, []byte{0xFF, 0xFE}) || bytes.HasPrefix(src, []byte{0xFE, 0xFF}) {
		return nil, &ConfigError{Path: path, Line: 1, Column: 1, Msg: "the file is UTF-16; save it as UTF-8"}
	}
	d.src = src
	if i := bytes.IndexByte(src, '\n'); i > 0 && src[i-1] == '\r' {
		d.nl = "\r\n"
	}
	if len(bytes.TrimSpace(src)) == 0 {
		d.blank = true
		d.standard = true
		return d, nil
	}
	v, err := hujson.Parse(src)
	if err != nil && !bytes.HasSuffix(src, []byte("\n")) {
		// hujson wants a line comment to end in a newline; editors do not.
		// Offsets stay valid for src: the newline is past its end.
		if v2, err2 := hujson.Parse(append(bytes.Clone(src), '\n')); err2 == nil {
			v, err = v2, nil
		}
	}
	if err != nil {
		return nil, parseError(path, src, err)
	}
	d.root = v
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		line, col := lineCol(src, v.StartOffset)
		return nil, &ConfigError{Path: path, Line: line, Column: col, Msg: "the top level is not a JSON object ({...})"}
	}
	d.rootObj = obj
	d.standard = v.IsStandard()
	return d, nil
}

func parseError(path string, src []byte, err error) error {
	m := hujsonErrRE.FindStringSubmatch(err.Error())
	if m == nil {
		return &ConfigError{Path: path, Msg: "not valid JSON: " + err.Error()}
	}
	line, _ := strconv.Atoi(m[1])
	bcol, _ := strconv.Atoi(m[2])
	// hujson counts bytes; people count characters.
	col := bcol
	if start := lineOffset(src, line); start >= 0 {
		end := min(start+bcol-1, len(src))
		if end >= start {
			col = utf8.RuneCount(src[start:end]) + 1
		}
	}
	msg := m[3]
	if strings.HasPrefix(msg, "invalid literal:") {
		// hujson quotes the whole literal, which may be a secret.
		msg = "invalid string, number or keyword (check escapes, control characters, quotes)"
	}
	return &ConfigError{Path: path, Line: line, Column: col, Msg: "not valid JSON (comments and trailing commas are fine): " + msg}
}

// lineOffset returns the offset where 1-based line starts, or -1.
func lineOffset(src []byte, line int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			return -1
		}
		off += i + 1
	}
	return off
}

// lineCol converts an offset to a 1-based line and character column.
func lineCol(src []byte, off int) (int, int) {
	off = min(max(off, 0), len(src))
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	return line, utf8.RuneCount(src[start:off]) + 1
}

func (d *doc) errAt(off int, format string, args ...any) error {
	line, col := lineCol(d.src, off)
	return &ConfigError{Path: d.path, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

func memberName(m *hujson.ObjectMember) string {
	lit, _ := m.Name.Value.(hujson.Literal)
	if len(lit) >= 2 && bytes.IndexByte(lit, '\\') < 0 {
		return string(lit[1 : len(lit)-1]) // the common case: no escapes
	}
	return lit.String()
}

// section is the servers object of a document.
type section struct {
	idx int            // index of the root-key member; -1 when missing
	val *hujson.Value  // the member's value
	obj *hujson.Object // nil when missing or null
}

// section finds the object under rootKey. A duplicate root key, or a value
// that is neither an object nor null, is an error naming its place.
func (d *doc) section(rootKey string) (section, error) {
	s := section{idx: -1}
	if d.blank {
		return s, nil
	}
	for i := range d.rootObj.Members {
		m := &d.rootObj.Members[i]
		if memberName(m) != rootKey {
			continue
		}
		if s.idx >= 0 {
			return s, d.errAt(m.Name.StartOffset, "%q appears twice at the top level; merge the two into one", rootKey)
		}
		s.idx, s.val = i, &m.Value
	}
	if s.val == nil {
		return s, nil
	}
	switch x := s.val.Value.(type) {
	case *hujson.Object:
		s.obj = x
	case hujson.Literal:
		if x.Kind() != 'n' {
			return s, d.errAt(s.val.StartOffset, "%q must be an object ({...}) of servers", rootKey)
		}
	default:
		return s, d.errAt(s.val.StartOffset, "%q must be an object ({...}) of servers", rootKey)
	}
	return s, nil
}

// indexes maps each member name of obj to its indexes, in file order.
func indexes(obj *hujson.Object) map[string][]int {
	out := map[string][]int{}
	if obj == nil {
		return out
	}
	for i := range obj.Members {
		n := memberName(&obj.Members[i])
		out[n] = append(out[n], i)
	}
	return out
}

// valueBytes is the exact text of a value (without surrounding extras).
func (d *doc) valueBytes(v *hujson.Value) []byte { return d.src[v.StartOffset:v.EndOffset] }

// decode returns a value as encoding/json would decode it (numbers as
// json.Number).
func (d *doc) decode(v *hujson.Value) (any, error) {
	std, err := hujson.Standardize(bytes.Clone(d.valueBytes(v)))
	if err != nil {
		return nil, err
	}
	var out any
	if err := decodeJSON(std, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// unit guesses the file's indentation unit from the first indented line,
// defaulting to two spaces.
func (d *doc) unit() string {
	if d.rootObj != nil {
		for i := range d.rootObj.Members {
			if ls, ok := lineStart(d.src, d.rootObj.Members[i].Name.StartOffset); ok {
				if ind := string(d.src[ls:d.rootObj.Members[i].Name.StartOffset]); ind != "" {
					return ind
				}
			}
		}
	}
	return "  "
}

// colon returns how the file separates names from values (": " or ":").
func (d *doc) colon() string {
	if d.rootObj == nil || len(d.rootObj.Members) == 0 {
		return ": "
	}
	m := d.rootObj.Members[0]
	s := string(d.src[m.Name.EndOffset:m.Value.StartOffset])
	if i := strings.IndexByte(s, ':'); i >= 0 && isHSpace([]byte(s[:i])) && isHSpace([]byte(s[i+1:])) {
		if s[i:] == ":" {
			return ":"
		}
		return ": "
	}
	return ": "
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

func isHSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// lineStart reports whether only spaces and tabs stand between the start of
// pos's line and pos, and where the line starts.
func lineStart(src []byte, pos int) (int, bool) {
	i := pos
	for i > 0 && (src[i-1] == ' ' || src[i-1] == '\t') {
		i--
	}
	return i, i == 0 || src[i-1] == '\n'
}

// lineEnd reports whether only whitespace stands between pos and the end of
// its line, and returns the offset just past the line break.
func lineEnd(src []byte, pos int) (int, bool) {
	i := pos
	for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\r') {
		i++
	}
	if i < len(src) && src[i] == '\n' {
		return i + 1, true
	}
	return pos, false
}

// lineIndent returns the leading whitespace of the line containing pos.
func lineIndent(src []byte, pos int) string {
	start := bytes.LastIndexByte(src[:pos], '\n') + 1
	end := start
	for end < len(src) && (src[end] == ' ' || src[end] == '\t') {
		end++
	}
	return string(src[start:end])
}

// lastBreak returns the offset just past the last line break in extra x
// that is not inside a block comment (a line comment's own terminating
// newline counts), or -1.
func lastBreak(x []byte) int {
	last := -1
	for i := 0; i < len(x); {
		switch {
		case bytes.HasPrefix(x[i:], []byte("/*")):
			j := bytes.Index(x[i+2:], []byte("*/"))
			if j < 0 {
				return last
			}
			i += 2 + j + 2
		case bytes.HasPrefix(x[i:], []byte("//")):
			j := bytes.IndexByte(x[i:], '\n')
			if j < 0 {
				return last
			}
			i += j + 1
			last = i
		case x[i] == '\n':
			i++
			last = i
		default:
			i++
		}
	}
	return last
}

// hasComment reports whether JSONC text b has a comment outside strings.
func hasComment(b []byte) bool {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '/':
			if i+1 < len(b) && (b[i+1] == '/' || b[i+1] == '*') {
				return true
			}
		}
	}
	return false
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// splice applies edits to src. Insertions at the same offset keep their
// order; overlapping deletions are merged; any other overlap is refused.
func splice(src []byte, edits []edit) ([]byte, error) {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	merged := edits[:0:0]
	for _, e := range edits {
		if e.start < 0 || e.end < e.start || e.end > len(src) {
			return nil, fmt.Errorf("internal error: edit out of range at offset %d", e.start)
		}
		if n := len(merged); n > 0 && e.start < merged[n-1].end {
			if e.text != "" || merged[n-1].text != "" {
				return nil, fmt.Errorf("internal error: overlapping edits at offset %d", e.start)
			}
			merged[n-1].end = max(merged[n-1].end, e.end)
			continue
		}
		merged = append(merged, e)
	}
	size := len(src)
	for _, e := range merged {
		size += len(e.text) - (e.end - e.start)
	}
	out := make([]byte, 0, size)
	pos := 0
	for _, e := range merged {
		out = append(out, src[pos:e.start]...)
		out = append(out, e.text...)
		pos = e.end
	}
	return append(out, src[pos:]...), nil
}

// style is how new text is laid out.
type style struct {
	nl     string
	unit   string
	colon  string
	format JSONFormat
}

func (d *doc) style(f JSONFormat) style {
	return style{nl: d.nl, unit: d.unit(), colon: d.colon(), format: f}
}

func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// render lays out v. Pretty output starts at the current position and
// indents continuation lines with ind.
func render(v any, ind string, st style, pretty bool) string {
	var b strings.Builder
	renderTo(&b, v, ind, st, pretty)
	return b.String()
}

func renderTo(b *strings.Builder, v any, ind string, st style, pretty bool) {
	comma := ","
	if st.colon != ":" {
		comma = ", "
	}
	switch x := v.(type) {
	case string:
		b.WriteString(quote(x))
	case []string:
		inline := !pretty
		if pretty {
			n := 2
			for _, s := range x {
				n += len(s) + 4
			}
			inline = n+len(ind) < 80
		}
		if len(x) == 0 {
			b.WriteString("[]")
			return
		}
		if inline {
			b.WriteByte('[')
			for i, s := range x {
				if i > 0 {
					b.WriteString(comma)
				}
				b.WriteString(quote(s))
			}
			b.WriteByte(']')
			return
		}
		b.WriteByte('[')
		for i, s := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(st.nl + ind + st.unit + quote(s))
		}
		b.WriteString(st.nl + ind + "]")
	case object:
		if len(x) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteByte('{')
		for i, f := range x {
			if pretty {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(st.nl + ind + st.unit)
			} else if i > 0 {
				b.WriteString(comma)
			}
			if f.rawKey != "" {
				b.WriteString(f.rawKey)
			} else {
				b.WriteString(quote(f.key))
			}
			if pretty {
				b.WriteString(": ")
			} else {
				b.WriteString(st.colon)
			}
			renderTo(b, f.val, ind+st.unit, st, pretty)
		}
		if pretty {
			b.WriteString(st.nl + ind)
		}
		b.WriteByte('}')
	case rawJSON:
		if !pretty {
			var c bytes.Buffer
			if json.Compact(&c, x) == nil {
				b.Write(c.Bytes())
				return
			}
			b.Write(x)
			return
		}
		var c bytes.Buffer
		if json.Indent(&c, x, ind, st.unit) != nil {
			b.Write(x)
			return
		}
		s := c.String()
		if st.nl != "\n" {
			s = strings.ReplaceAll(s, "\n", st.nl)
		}
		b.WriteString(s)
	}
}

// layout is how members are placed in an object.
type layout struct {
	pretty bool
	indent string // member indentation (pretty)
	sep    string // text after a comma between members (compact)
}

func objLayout(d *doc, objVal *hujson.Value, obj *hujson.Object, parentPretty bool, st style) layout {
	if n := len(obj.Members); n > 0 {
		last := &obj.Members[n-1]
		if ls, ok := lineStart(d.src, last.Name.StartOffset); ok {
			return layout{pretty: true, indent: string(d.src[ls:last.Name.StartOffset])}
		}
		sep := ""
		if e := last.Name.BeforeExtra; isHSpace(e) && n > 1 {
			sep = string(e)
		} else if st.colon != ":" {
			sep = " "
		}
		return layout{sep: sep}
	}
	if parentPretty {
		return layout{pretty: true, indent: lineIndent(d.src, objVal.StartOffset) + st.unit}
	}
	sep := ""
	if st.colon != ":" {
		sep = " "
	}
	return layout{sep: sep}
}

// insertMembers returns the edits that append members (each rendered as
// `"key": value`) at the end of obj, matching its layout, keeping its
// trailing-comma style and every comment where it was.
func insertMembers(d *doc, objVal *hujson.Value, obj *hujson.Object, lay layout, members []string, st style) []edit {
	closePos := objVal.EndOffset - 1
	x := obj.AfterExtra
	xStart := closePos - len(x)
	n := len(obj.Members)
	trailing := n > 0 && obj.Members[n-1].Value.AfterExtra != nil
	if !lay.pretty {
		joined := strings.Join(members, ","+lay.sep)
		switch {
		case n == 0:
			return []edit{{objVal.StartOffset + 1, objVal.StartOffset + 1, joined}}
		case !trailing:
			end := obj.Members[n-1].Value.EndOffset
			return []edit{{end, end, "," + lay.sep + joined}}
		default:
			return []edit{{xStart, xStart, lay.sep + joined + ","}}
		}
	}
	lines := make([]string, len(members))
	for i, m := range members {
		lines[i] = lay.indent + m
	}
	joined := strings.Join(lines, ","+st.nl)
	p := lastBreak(x)
	switch {
	case n == 0:
		if p >= 0 {
			return []edit{{xStart + p, xStart + p, joined + st.nl}}
		}
		closeIndent := lineIndent(d.src, objVal.StartOffset)
		if isSpace(x) {
			return []edit{{xStart, closePos, st.nl + joined + st.nl + closeIndent}}
		}
		return []edit{{closePos, closePos, st.nl + joined + st.nl + closeIndent}}
	case !trailing:
		end := obj.Members[n-1].Value.EndOffset
		if p >= 0 {
			return []edit{{end, end, ","}, {xStart + p, xStart + p, joined + st.nl}}
		}
		return []edit{{end, end, "," + st.nl + joined}}
	default:
		if p >= 0 {
			return []edit{{xStart + p, xStart + p, joined + "," + st.nl}}
		}
		return []edit{{xStart, xStart, st.nl + joined + ","}}
	}
}

// deleteMembers returns the edits that remove the members of obj for which
// del is true. Whole lines go when a member sits on lines of its own;
// comments around a member always stay. The comma before a removed last
// member goes too, so a plain-JSON file stays plain JSON.
func deleteMembers(d *doc, objVal *hujson.Value, obj *hujson.Object, del func(i int) bool) []edit {
	n := len(obj.Members)
	lastKept := -1
	anyDel := false
	for i := 0; i < n; i++ {
		if del(i) {
			anyDel = true
		} else {
			lastKept = i
		}
	}
	if !anyDel {
		return nil
	}
	if lastKept < 0 && !hasComment(d.valueBytes(objVal)) {
		return []edit{{objVal.StartOffset, objVal.EndOffset, "{}"}}
	}
	trailing := obj.Members[n-1].Value.AfterExtra != nil
	var edits []edit
	for i := 0; i < n; i++ {
		if !del(i) {
			continue
		}
		m := &obj.Members[i]
		nameStart := m.Name.StartOffset
		e := m.Name.BeforeExtra
		lastNoComma := i == n-1 && !trailing
		end := m.Value.EndOffset
		if !lastNoComma {
			end += len(m.Value.AfterExtra) + 1 // through the comma
		}
		start := nameStart
		if ls, ok := lineStart(d.src, nameStart); ok && ls >= nameStart-len(e) {
			start = ls
			if le, ok := lineEnd(d.src, end); ok {
				end = le
			}
		} else if isHSpace(e) {
			start = nameStart - len(e)
			if len(e) == 0 && !lastNoComma {
				for end < len(d.src) && (d.src[end] == ' ' || d.src[end] == '\t') {
					end++
				}
			}
		}
		edits = append(edits, edit{start, end, ""})
	}
	if lastKept >= 0 && lastKept < n-1 && !trailing {
		// Every member after lastKept goes: its comma now ends the object.
		k := &obj.Members[lastKept]
		c := k.Value.EndOffset + len(k.Value.AfterExtra)
		edits = append(edits, edit{c, c + 1, ""})
	}
	return edits
}
