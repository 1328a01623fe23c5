// Package redact removes known secret values from a byte stream as it
// passes, without buffering it: the proxy runs every answer it sends a
// client through a Writer, so the credentials it injected towards the
// server never reach the client (an AI model) — not in the server's JSON,
// not in its event stream, not in an error page the proxy quotes.
//
// A secret is matched in every spelling a server's ordinary echo produces:
// as is; JSON-escaped, each byte independently (`\/`, `\"`, `\\`, and
// `\u00XX` in either hex case for any byte, as Go, PHP, Python, Gson or
// Jackson may write them; non-ASCII runes as `\uXXXX`, surrogate pairs
// included); and percent-encoded (`%XX`, either case, any byte; `+` for
// a space). An
// occurrence may mix spellings and may be split across writes anywhere. A
// secret that a server encodes otherwise (base64, HTML entities, split into
// pieces) is not recognised: a server that wants its token misused has it
// anyway; redaction guards against the honest server that echoes what it
// received (debug pages, gateways quoting request headers, tools returning
// headers).
//
// Each occurrence becomes [Marker], "[REDACTED]", which keeps a JSON string
// valid: it has no quote or backslash, and when the occurrence starts
// right after an escaping backslash (the text is `\` + `u0041…`, say) the
// marker is preceded by one more backslash, so the escape stays complete.
// A secret that itself contains `"` or `\` and occurs unescaped across the
// edge of a JSON string can still leave invalid JSON — it never leaks.
//
// Matching is leftmost; at one position the longest secret wins. The
// result is the same however the input is split across writes: a Writer
// passes bytes through at once, except the shortest tail that could still
// be the beginning of a secret (in any spelling), which it holds until the
// next write decides it, or Close. No spelling of a secret contains a line
// break, so after the blank line that ends a server-sent event nothing is
// held: events are never delayed.
package redact

import (
	"bytes"
	"slices"
	"unicode/utf8"
)

// Marker replaces every occurrence of a secret.
const Marker = "[REDACTED]"

// MinLen is the shortest secret a Matcher accepts: shorter values would
// match ordinary text and corrupt answers, and carry little secret anyway.
const MinLen = 8

// Matcher finds a fixed set of secrets. It is immutable and safe for
// concurrent use; the zero of *Matcher (nil) matches nothing.
type Matcher struct {
	secrets [][]byte     // longest first, then in byte order
	first   [256][]int32 // indexes into secrets, by first byte (ascending)
	start   [256]bool    // bytes that may begin an occurrence
	// pairs has bit a<<8|b set when a secret begins with a then b, or a
	// form-encoded space then b: a candidate whose next byte is neither
	// that nor an escape is dismissed at once.
	pairs [1 << 16 / 64]uint64
}

// Compile returns a Matcher for secrets, ignoring those shorter than
// MinLen or holding a line break (no HTTP header value does). It returns
// nil when none is left.
func Compile(secrets ...string) *Matcher {
	m := &Matcher{}
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) < MinLen || seen[s] || containsLineBreak(s) {
			continue
		}
		seen[s] = true
		m.secrets = append(m.secrets, []byte(s))
	}
	if len(m.secrets) == 0 {
		return nil
	}
	slices.SortFunc(m.secrets, func(a, b []byte) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return bytes.Compare(a, b)
	})
	for i, s := range m.secrets {
		m.first[s[0]] = append(m.first[s[0]], int32(i))
		m.start[s[0]] = true
		m.setPair(s[0], s[1])
		if s[0] == ' ' { // a form-encoded space
			m.first['+'] = append(m.first['+'], int32(i))
			m.start['+'] = true
			m.setPair('+', s[1])
		}
		if s[1] == ' ' {
			m.setPair(s[0], '+')
		}
	}
	// Any byte can be written as a JSON or a percent escape.
	m.start['\\'] = true
	m.start['%'] = true
	return m
}

func (m *Matcher) setPair(a, b byte) {
	k := int(a)<<8 | int(b)
	m.pairs[k>>6] |= 1 << (k & 63)
}

// maybe reports whether a secret may begin at data[i], a start byte,
// judging by the byte after it.
func (m *Matcher) maybe(data []byte, i int) bool {
	c := data[i]
	if i+1 >= len(data) {
		return true
	}
	d := data[i+1]
	if c == '\\' {
		switch d { // a short escape: is its byte the start of a secret?
		case '"', '/':
			return len(m.first[d]) > 0 || len(m.first['\\']) > 0
		case 'u', '\\': // \\ may begin an escape held in a JSON string
			return true
		case 'b':
			return len(m.first['\b']) > 0 || len(m.first['\\']) > 0
		case 'f':
			return len(m.first['\f']) > 0 || len(m.first['\\']) > 0
		case 't':
			return len(m.first['\t']) > 0 || len(m.first['\\']) > 0
		}
		return len(m.first['\\']) > 0
	}
	if c == '%' {
		return true
	}
	if d == '\\' || d == '%' {
		return true
	}
	k := int(c)<<8 | int(d)
	return m.pairs[k>>6]&(1<<(k&63)) != 0
}

func containsLineBreak(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			return true
		}
	}
	return false
}

// Len is the number of secrets m matches.
func (m *Matcher) Len() int {
	if m == nil {
		return 0
	}
	return len(m.secrets)
}

// status is what the bytes at a position say about a secret.
type status uint8

const (
	none       status = iota // no secret starts here
	matched                  // a secret starts here (end is known)
	incomplete               // more bytes are needed to decide
)

// Replace returns src with every secret replaced by Marker, as one
// complete input, and the number of replacements. With none it returns
// src itself.
func (m *Matcher) Replace(src []byte) ([]byte, int) {
	if m == nil {
		return src, 0
	}
	b := &sliceEmitter{}
	n, _ := m.scan(src, true, &b.st, b)
	if n == 0 {
		return src, 0
	}
	return b.out, n
}

// Matcher returns m: a Matcher is a Source of itself.
func (m *Matcher) Matcher() *Matcher { return m }

// emitter receives what a scan lets through.
type emitter interface {
	// emit passes seg on; with repl, a secret followed seg and was dropped
	// (the emitter writes the marker, see markerFor).
	emit(seg []byte, repl bool)
}

type sliceEmitter struct {
	out []byte
	st  scanState
}

func (e *sliceEmitter) emit(seg []byte, repl bool) {
	e.out = append(e.out, seg...)
	if repl {
		e.out = append(e.out, e.st.marker()...)
	}
}

// scanState is what a scan carries across writes: whether the output so
// far ends in an odd run of backslashes (inside a JSON escape).
type scanState struct {
	oddBackslashes bool
}

// note updates st for seg having been emitted.
func (st *scanState) note(seg []byte) {
	if len(seg) == 0 {
		return
	}
	j := len(seg)
	for j > 0 && seg[j-1] == '\\' {
		j--
	}
	run := len(seg) - j
	if j == 0 {
		st.oddBackslashes = st.oddBackslashes != (run%2 == 1)
	} else {
		st.oddBackslashes = run%2 == 1
	}
}

var (
	marker        = []byte(Marker)
	escapedMarker = []byte("\\" + Marker)
)

// marker is the replacement to emit now: one more backslash first when the
// output so far ends inside a JSON escape, so that escape is completed.
func (st *scanState) marker() []byte {
	odd := st.oddBackslashes
	st.oddBackslashes = false
	if odd {
		return escapedMarker
	}
	return marker
}

// scan walks data, handing e each run of bytes to pass through (with repl
// set when a secret, which is dropped, follows it). Unless final, it stops
// at the first position that needs more bytes to decide and returns how
// many bytes, from there to the end, it did not emit. It returns the
// number of secrets found.
func (m *Matcher) scan(data []byte, final bool, st *scanState, e emitter) (found, held int) {
	seg, i := 0, 0
	start := &m.start
	for {
		i = skip(start, data, i)
		for i < len(data) && (!start[data[i]] || !m.maybe(data, i)) {
			i++
			i = skip(start, data, i)
		}
		if i >= len(data) {
			break
		}
		end, s := m.at(data, i, final)
		switch s {
		case matched:
			// An escape the secret starts inside of goes with it.
			b := escapeStart(data, seg, i, st)
			st.note(data[seg:b])
			e.emit(data[seg:b], true)
			found++
			i, seg = end, end
		case incomplete:
			// Hold an escape the held bytes start inside of too, so a
			// secret found there later can take it along.
			b := escapeStart(data, seg, i, st)
			if seg < b {
				st.note(data[seg:b])
				e.emit(data[seg:b], false)
			}
			return found, len(data) - b
		default:
			i++
		}
	}
	if seg < len(data) {
		st.note(data[seg:])
		e.emit(data[seg:], false)
	}
	return found, 0
}

// escapeStart returns where the JSON escape (\X or \uXXXX) that data[i]
// lies inside of begins, or i when it lies inside none. It looks back no
// further than seg; st says whether the output before seg ends in an odd
// run of backslashes.
func escapeStart(data []byte, seg, i int, st *scanState) int {
	for b := i - 1; b >= seg && b >= i-5; b-- {
		if data[b] != '\\' {
			continue
		}
		r := b
		for r > seg && data[r-1] == '\\' {
			r--
		}
		escaping := (b-r)%2 == 0
		if r == seg && st.oddBackslashes {
			escaping = !escaping
		}
		if !escaping {
			return i // data[b] is the second half of \\
		}
		if i-b == 1 || data[b+1] == 'u' && allHex(data[b+2:i]) {
			return b
		}
		return i
	}
	return i
}

// skip returns the first index from i on whose byte is in start (or
// len(data)), eight bytes a step.
func skip(start *[256]bool, data []byte, i int) int {
	for ; i+8 <= len(data); i += 8 {
		b := data[i : i+8 : i+8]
		if start[b[0]] || start[b[1]] || start[b[2]] || start[b[3]] || start[b[4]] || start[b[5]] || start[b[6]] || start[b[7]] {
			break
		}
	}
	for i < len(data) && !start[data[i]] {
		i++
	}
	return i
}

// at decides whether a secret starts at data[i]: the longest one that
// does, or incomplete when a secret tried before it (a longer one) needs
// more bytes.
func (m *Matcher) at(data []byte, i int, final bool) (int, status) {
	// The secrets that may start here, by the first byte of each reading
	// of data[i]: literal, an escape, an escape inside a JSON string held
	// in a JSON string.
	var cands [3][]int32
	cands[0] = m.first[data[i]]
	switch data[i] {
	case '\\', '%':
		for depth := 1; depth <= 2; depth++ {
			b, _, s := decodeUnit(data, i, depth)
			switch s {
			case incomplete:
				if !final {
					return 0, incomplete
				}
			case matched:
				cands[depth] = m.first[b]
			}
		}
	}
	// Try them in the global order: longest first.
	for {
		best := -1
		for c := range cands {
			if len(cands[c]) > 0 && (best < 0 || cands[c][0] < cands[best][0]) {
				best = c
			}
		}
		if best < 0 {
			return 0, none
		}
		k := cands[best][0]
		for c := range cands {
			if len(cands[c]) > 0 && cands[c][0] == k {
				cands[c] = cands[c][1:]
			}
		}
		var failed map[[2]int]bool
		end, s := matchFrom(data, i, m.secrets[k], 0, final, &failed)
		switch s {
		case matched:
			return end, matched
		case incomplete:
			return 0, incomplete
		}
	}
}

// matchFrom reports whether data from j spells secret[k:], reading each
// byte literally, as an escape (JSON, percent) or as a JSON escape held in
// a JSON string (\\/, \\u002f). Where several readings fit (a literal %
// or \ in the secret, a run of backslashes), they are tried in that order,
// and while an earlier one is undecided, so is the whole match. Readings
// that failed are remembered in *failed (made at the first fork), so a
// secret with many backslashes costs polynomial time, not exponential.
func matchFrom(data []byte, j int, secret []byte, k int, final bool, failed *map[[2]int]bool) (int, status) {
	// fork tries the match from (j2, k2) as one reading among others.
	fork := func(j2, k2 int) (int, status) {
		if *failed == nil {
			*failed = map[[2]int]bool{}
		}
		key := [2]int{j2, k2}
		if (*failed)[key] {
			return 0, none
		}
		end, s := matchFrom(data, j2, secret, k2, final, failed)
		if s == none {
			(*failed)[key] = true
		}
		return end, s
	}
	for k < len(secret) {
		if j >= len(data) {
			if final {
				return 0, none
			}
			return 0, incomplete
		}
		c := data[j]
		if c != '\\' && c != '%' {
			if c != secret[k] && (c != '+' || secret[k] != ' ') {
				return 0, none
			}
			j++
			k++
			continue
		}
		if c == secret[k] {
			if end, s := fork(j+1, k+1); s != none {
				return end, s
			}
		}
		depths := 1
		if c == '\\' && j+1 < len(data) && data[j+1] == '\\' {
			depths = 2
		}
		next := -1 // the last reading that fits, taken without a fork
		var nextK int
		for depth := 1; depth <= depths; depth++ {
			nj, nk, s := step(data, j, secret, k, depth)
			switch {
			case s == incomplete && !final:
				if next >= 0 {
					if end, s := fork(next, nextK); s != none {
						return end, s
					}
				}
				return 0, incomplete
			case s != matched:
				continue
			}
			if next >= 0 {
				if end, s := fork(next, nextK); s != none {
					return end, s
				}
			}
			next, nextK = nj, nk
		}
		if next < 0 {
			return 0, none
		}
		j, k = next, nextK
	}
	return j, matched
}

// step reads the escape at data[j] at depth and reports whether it spells
// the secret's next bytes (and where the match goes on), or needs more
// bytes.
func step(data []byte, j int, secret []byte, k int, depth int) (int, int, status) {
	b, u, s := decodeUnit(data, j, depth)
	if s != matched {
		return 0, 0, s
	}
	if b != secret[k] {
		return 0, 0, none
	}
	if u.runeLen > 0 { // a \u escape of a non-ASCII rune: all its bytes
		var enc [utf8.UTFMax]byte
		w := utf8.EncodeRune(enc[:], u.r)
		if !bytes.HasPrefix(secret[k:], enc[:w]) {
			return 0, 0, none
		}
		return j + u.size, k + w, matched
	}
	return j + u.size, k + 1, matched
}

// unit is one escape read by decodeUnit.
type unit struct {
	size    int  // bytes of input
	r       rune // for a \u escape of a non-ASCII rune
	runeLen int  // its UTF-8 length, 0 when the escape stands for one byte
}

// decodeUnit reads the escape at data[i] ('\\' or '%'): a JSON escape (\"
// \\ \/ \b \f \t \uXXXX, a surrogate pair included) or a percent escape
// (%XX); at depth 2, a JSON escape as written inside a JSON string (\\/
// \\\" \\uXXXX). It returns the first byte it stands for and its size,
// none when the bytes are no such escape, or incomplete when data ends
// inside one.
func decodeUnit(data []byte, i int, depth int) (byte, unit, status) {
	rest := data[i:]
	if rest[0] == '%' {
		if depth > 1 {
			return 0, unit{}, none
		}
		if len(rest) < 3 {
			if !allHex(rest[1:]) {
				return 0, unit{}, none
			}
			return 0, unit{}, incomplete
		}
		h, ok1 := unhex(rest[1])
		l, ok2 := unhex(rest[2])
		if !ok1 || !ok2 {
			return 0, unit{}, none
		}
		return h<<4 | l, unit{size: 3}, matched
	}
	// intro is the backslashes that begin an escape at this depth.
	intro := depth
	for n := 1; n < intro; n++ {
		if n >= len(rest) {
			return 0, unit{}, incomplete
		}
		if rest[n] != '\\' {
			return 0, unit{}, none
		}
	}
	if len(rest) <= intro {
		return 0, unit{}, incomplete
	}
	switch e := rest[intro]; {
	case e == '/':
		return '/', unit{size: intro + 1}, matched
	case e == 'u':
	case depth == 1:
		switch e {
		case '"', '\\':
			return e, unit{size: 2}, matched
		case 'b':
			return '\b', unit{size: 2}, matched
		case 'f':
			return '\f', unit{size: 2}, matched
		case 't':
			return '\t', unit{size: 2}, matched
		}
		return 0, unit{}, none // \n \r: no secret holds a line break
	case e == '\\': // depth 2: \\\" is a quote
		if len(rest) <= intro+1 {
			return 0, unit{}, incomplete
		}
		if rest[intro+1] == '"' {
			return '"', unit{size: intro + 2}, matched
		}
		return 0, unit{}, none
	default:
		return 0, unit{}, none
	}
	r, s := hex4(rest[intro+1:])
	if s != matched {
		return 0, unit{}, s
	}
	size := intro + 5
	if r < utf8.RuneSelf {
		return byte(r), unit{size: size}, matched
	}
	if r >= 0xD800 && r < 0xDC00 { // a high surrogate: the low one follows
		lo := rest[size:]
		for n := 0; n < intro+1; n++ {
			want := byte('\\')
			if n == intro {
				want = 'u'
			}
			if n >= len(lo) {
				return 0, unit{}, incomplete
			}
			if lo[n] != want {
				return 0, unit{}, none
			}
		}
		r2, s := hex4(lo[intro+1:])
		if s != matched {
			return 0, unit{}, s
		}
		if r2 < 0xDC00 || r2 >= 0xE000 {
			return 0, unit{}, none
		}
		r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
		size *= 2
	} else if r >= 0xDC00 && r < 0xE000 {
		return 0, unit{}, none
	}
	var enc [utf8.UTFMax]byte
	w := utf8.EncodeRune(enc[:], r)
	return enc[0], unit{size: size, r: r, runeLen: w}, matched
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, status) {
	if len(b) < 4 {
		if !allHex(b) {
			return 0, none
		}
		return 0, incomplete
	}
	var r rune
	for _, c := range b[:4] {
		v, ok := unhex(c)
		if !ok {
			return 0, none
		}
		r = r<<4 | rune(v)
	}
	return r, matched
}

func allHex(b []byte) bool {
	for _, c := range b {
		if _, ok := unhex(c); !ok {
			return false
		}
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
