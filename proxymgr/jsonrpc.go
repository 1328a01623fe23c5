package proxymgr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file is the proxy's JSON-RPC inspection: a small scanner that splits
// messages into their members without decoding (or re-encoding) values, so
// ids, params and results are forwarded as their original bytes.
//
// Keys are matched case-insensitively (as Go's encoding/json does), and an
// object with two keys that are equal ignoring case ("method" and "Method",
// or "name" twice) is rejected: the proxy and the server must never read a
// request differently.

var (
	errNotObject    = errors.New("not a JSON object")
	errNotArray     = errors.New("not a JSON array")
	errTruncated    = errors.New("truncated JSON")
	errInvalidJSON  = errors.New("invalid JSON")
	errDuplicateKey = errors.New("duplicate key")
)

// member is one member of a JSON object: its decoded key and raw value.
type member struct {
	key    string
	keyRaw []byte // the key as written, with its quotes
	val    []byte // the raw value, without surrounding whitespace
}

// dupKeyError names the keys that collide.
type dupKeyError struct{ a, b string }

func (e *dupKeyError) Error() string {
	if e.a == e.b {
		return fmt.Sprintf("key %q appears twice", e.a)
	}
	return fmt.Sprintf("keys %q and %q differ only in case", e.a, e.b)
}

func (e *dupKeyError) Is(target error) bool { return target == errDuplicateKey }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i] == '"'.
func stringEnd(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errInvalidJSON
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errTruncated
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errTruncated
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := stringEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errTruncated
	default:
		j := i
		for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ':' {
			j++
		}
		if j == i {
			return 0, errInvalidJSON
		}
		return j, nil
	}
}

// unquote decodes a JSON string token (with its quotes).
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// foldKey is the one canonical form of an object key: two keys have the
// same foldKey exactly when strings.EqualFold reports them equal (they are
// equal rune by rune up to Unicode simple case folding, which is also how
// Go's encoding/json matches keys to fields). Every key comparison of the
// proxy goes through it: the duplicate check, lookups and the spelling rule.
//
// Each rune maps to one representative of its fold orbit: the lower-case
// ASCII letter when the orbit holds one ("ſ" U+017F and "S" fold to "s",
// the Kelvin sign U+212A to "k"), else the orbit's smallest rune. A key of
// lower-case ASCII is its own foldKey, without allocating.
func foldKey(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			break
		}
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune is the representative of r's case-fold orbit (see foldKey).
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	if least < utf8.RuneSelf { // an orbit with an ASCII letter: its lower case
		return foldRune(least)
	}
	return least
}

// scanObject splits the JSON object in b into its members. It rejects keys
// that are equal ignoring case. b must be a complete value (callers check
// json.Valid first; scanObject still never panics on bad input).
func scanObject(b []byte) ([]member, error) {
	ms, err := scanMembers(b)
	if err != nil {
		return nil, err
	}
	if err := checkDuplicates(ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// scanMembers splits the JSON object in b into its members, duplicates and
// all (scanObject is the checked form).
func scanMembers(b []byte) ([]member, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errNotObject
	}
	i = skipSpace(b, i+1)
	ms := make([]member, 0, 8)
	if i < len(b) && b[i] == '}' {
		return ms, nil
	}
	for {
		kend, err := stringEnd(b, i)
		if err != nil {
			return nil, err
		}
		keyRaw := b[i:kend]
		key, ok := unquote(keyRaw)
		if !ok {
			return nil, errInvalidJSON
		}
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return nil, errInvalidJSON
		}
		i = skipSpace(b, i+1)
		vend, err := valueEnd(b, i)
		if err != nil {
			return nil, err
		}
		ms = append(ms, member{key: key, keyRaw: keyRaw, val: b[i:vend]})
		i = skipSpace(b, vend)
		if i >= len(b) {
			return nil, errTruncated
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return nil, errInvalidJSON
		}
		i = skipSpace(b, i+1)
	}
	return ms, nil
}

// checkDuplicates rejects two keys with the same foldKey. Small objects
// (every JSON-RPC message and its params) compare their folded keys pairwise
// without a map; larger ones use a map of the same folded keys.
func checkDuplicates(ms []member) error {
	if len(ms) <= 8 {
		var folded [8]string
		for i := range ms {
			folded[i] = foldKey(ms[i].key)
			for j := range i {
				if folded[j] == folded[i] {
					return &dupKeyError{ms[j].key, ms[i].key}
				}
			}
		}
		return nil
	}
	seen := make(map[string]string, len(ms))
	for _, m := range ms {
		k := foldKey(m.key)
		if prev, ok := seen[k]; ok {
			return &dupKeyError{prev, m.key}
		}
		seen[k] = m.key
	}
	return nil
}

// lookup returns the value of the member whose key equals name up to case
// (foldKey). Objects that passed scanObject hold at most one such member.
func lookup(ms []member, name string) ([]byte, bool) {
	want := foldKey(name)
	for _, m := range ms {
		if foldKey(m.key) == want {
			return m.val, true
		}
	}
	return nil, false
}

// scanArray splits the JSON array in b into its raw elements.
func scanArray(b []byte) ([][]byte, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, errNotArray
	}
	i = skipSpace(b, i+1)
	var out [][]byte
	if i < len(b) && b[i] == ']' {
		return out, nil
	}
	for {
		end, err := valueEnd(b, i)
		if err != nil {
			return nil, err
		}
		out = append(out, b[i:end])
		i = skipSpace(b, end)
		if i >= len(b) {
			return nil, errTruncated
		}
		if b[i] == ']' {
			return out, nil
		}
		if b[i] != ',' {
			return nil, errInvalidJSON
		}
		i = skipSpace(b, i+1)
	}
}

// isBatch reports whether the JSON text b is an array.
func isBatch(b []byte) bool {
	i := skipSpace(b, 0)
	return i < len(b) && b[i] == '['
}

// message is one JSON-RPC message, split but not decoded.
type message struct {
	raw       []byte
	id        []byte // raw id; nil when absent
	method    string
	hasMethod bool
	params    []byte
	result    []byte
	errVal    []byte
}

func (m *message) isRequest() bool      { return m.hasMethod && m.id != nil }
func (m *message) isNotification() bool { return m.hasMethod && m.id == nil }
func (m *message) isResponse() bool {
	return !m.hasMethod && m.id != nil && (m.result != nil || m.errVal != nil)
}

// Keys the proxy acts on, by foldKey, in the spec's spelling. A message (or
// its params) that spells one of them any other way is refused: servers
// disagree on how to read it (the SDKs in Go, TypeScript and Python match
// keys exactly, Go's encoding/json ignores case), so the proxy could check
// one reading while the server runs another.
var (
	messageKeys = spellings("jsonrpc", "id", "method", "params", "result", "error")
	paramKeys   = spellings("name", "arguments", "uri", "cursor", "_meta", "protocolVersion", "clientInfo")
)

func spellings(keys ...string) map[string]string {
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		m[foldKey(k)] = k
	}
	return m
}

// spellingError is a key that equals one the proxy acts on only up to case.
type spellingError struct{ got, want string }

func (e *spellingError) Error() string {
	return fmt.Sprintf("key %q must be spelled %q", e.got, e.want)
}

func (e *spellingError) Is(target error) bool { return target == errDuplicateKey }

// checkSpelling refuses a member whose key folds to one of keys but is
// spelled differently.
func checkSpelling(ms []member, keys map[string]string) error {
	for _, m := range ms {
		if want, ok := keys[foldKey(m.key)]; ok && m.key != want {
			return &spellingError{m.key, want}
		}
	}
	return nil
}

// parseMessage splits one JSON-RPC message object. It refuses, as
// errDuplicateKey, any message a server could read differently from the
// proxy: two keys equal up to case, at the top or in params, or a key the
// proxy acts on in another spelling ("Method", "paramſ").
func parseMessage(raw []byte) (message, error) {
	ms, err := scanObject(raw)
	if err != nil {
		return message{raw: raw}, err
	}
	m := message{raw: raw}
	if err := checkSpelling(ms, messageKeys); err != nil {
		return m, err
	}
	for _, mb := range ms {
		switch mb.key {
		case "id":
			m.id = mb.val
		case "method":
			m.hasMethod = true
			if s, ok := unquote(mb.val); ok {
				m.method = s
			}
		case "params":
			m.params = mb.val
		case "result":
			m.result = mb.val
		case "error":
			m.errVal = mb.val
		}
	}
	if m.params != nil && m.params[0] == '{' {
		// The server must read params the same way too ("name" vs "Name").
		pms, err := scanObject(m.params)
		if err == nil {
			err = checkSpelling(pms, paramKeys)
		}
		if err != nil {
			return m, fmt.Errorf("params: %w", err)
		}
	}
	return m, nil
}

// readings is what servers with different JSON libraries would take from an
// ambiguous message: exact is the reading of libraries that match keys
// exactly and let the last duplicate win (the MCP SDKs, Python, JavaScript),
// folded that of Go's encoding/json (keys matched ignoring case, the last
// match wins).
type readings struct {
	exact, folded reading
}

// reading is one way of reading a message's method and tool name.
type reading struct {
	method, tool string
	ids          [][]byte
}

// readAmbiguous reads raw both ways, for the audit log and for matching an
// ambiguous answer to its request. It never fails: what cannot be read
// stays empty.
func readAmbiguous(raw []byte) readings {
	var rs readings
	ms, err := scanMembers(raw)
	if err != nil {
		return rs
	}
	read := func(exact bool) reading {
		var r reading
		same := func(key, name string) bool {
			if exact {
				return key == name
			}
			return foldKey(key) == name
		}
		var params []byte
		for _, m := range ms {
			switch {
			case same(m.key, "id"):
				r.ids = append(r.ids, m.val)
			case same(m.key, "method"):
				r.method, _ = unquote(m.val)
			case same(m.key, "params"):
				params = m.val
			}
		}
		if pms, err := scanMembers(params); err == nil {
			for _, m := range pms {
				if same(m.key, "name") {
					r.tool, _ = unquote(m.val)
				}
			}
		}
		return r
	}
	rs.exact, rs.folded = read(true), read(false)
	return rs
}

// parseMessages splits a JSON-RPC body: one message or a batch. Elements that
// fail to parse are returned with their error.
func parseMessages(body []byte) (msgs []message, errs []error, batch bool, err error) {
	if !isBatch(body) {
		m, err := parseMessage(body)
		return []message{m}, []error{err}, false, nil
	}
	elems, err := scanArray(body)
	if err != nil {
		return nil, nil, true, err
	}
	msgs = make([]message, len(elems))
	errs = make([]error, len(elems))
	for i, e := range elems {
		msgs[i], errs[i] = parseMessage(e)
	}
	return msgs, errs, true, nil
}

// paramString returns params[name] when it is a JSON string.
func paramString(params []byte, name string) (string, bool) {
	ms, err := scanObject(params)
	if err != nil {
		return "", false
	}
	v, ok := lookup(ms, name)
	if !ok {
		return "", false
	}
	return unquote(v)
}

// idKey canonicalizes a raw JSON-RPC id so a request and its response match
// whenever a client would match them: when the server re-encodes the id (1
// vs 1.0, "\u0061" vs "a"), and when it spells a number as a string ("2"
// for 2, " 2", "0x2", "2e0"): the TypeScript SDK, which most MCP clients
// are built on, looks a response up by Number(response.id), so a string id
// that JavaScript reads as a number answers the request of that number. A
// tools/list answer the proxy did not recognise would pass without the
// tool policy and tool pinning.
func idKey(raw []byte) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if raw[0] == '"' {
		s, ok := unquote(raw)
		if !ok {
			return "", false
		}
		if f, ok := jsNumber(s); ok {
			return numKey(f), true
		}
		return "s" + s, true
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return "n" + strconv.FormatInt(n, 10), true
	}
	if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
		return numKey(f), true
	}
	return "", false
}

// numKey is the key of a numeric id.
func numKey(f float64) string {
	if f == float64(int64(f)) {
		return "n" + strconv.FormatInt(int64(f), 10)
	}
	return "n" + strconv.FormatFloat(f, 'g', -1, 64)
}

// jsNumber is JavaScript's Number(s) (ECMA-262 StringToNumber) for the
// strings it reads as a finite number: surrounding white space and line
// terminators are ignored, "" is 0, and decimal (with sign, fraction and
// exponent), 0x, 0o and 0b literals are numbers.
func jsNumber(s string) (float64, bool) {
	s = strings.TrimFunc(s, jsSpace)
	if s == "" {
		return 0, true
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			n, ok := new(big.Int).SetString(s[2:], base)
			if !ok || n.Sign() < 0 || strings.ContainsAny(s[2:], "+-_") {
				return 0, false
			}
			f, _ := new(big.Float).SetInt(n).Float64()
			return f, !math.IsInf(f, 0)
		}
	}
	if !jsDecimal.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// jsDecimal is ECMA-262's StrDecimalLiteral without Infinity.
var jsDecimal = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// jsSpace is ECMA-262's StrWhiteSpaceChar: white space and line terminators.
func jsSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', '\u00a0', '\u1680', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff':
		return true
	}
	return r >= '\u2000' && r <= '\u200a'
}
