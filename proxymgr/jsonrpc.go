package proxymgr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// foldKey maps s to a canonical case-folded form: two strings have the same
// foldKey exactly when strings.EqualFold reports them equal.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	var b strings.Builder
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}

// scanObject splits the JSON object in b into its members. It rejects keys
// that are equal ignoring case. b must be a complete value (callers check
// json.Valid first; scanObject still never panics on bad input).
func scanObject(b []byte) ([]member, error) {
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
	if err := checkDuplicates(ms); err != nil {
		return nil, err
	}
	return ms, nil
}

func checkDuplicates(ms []member) error {
	if len(ms) <= 8 {
		for i := range ms {
			for j := i + 1; j < len(ms); j++ {
				if ms[i].key == ms[j].key || strings.EqualFold(ms[i].key, ms[j].key) {
					return &dupKeyError{ms[i].key, ms[j].key}
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

// lookup returns the value of the member whose key equals name ignoring case.
func lookup(ms []member, name string) ([]byte, bool) {
	for _, m := range ms {
		if strings.EqualFold(m.key, name) {
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

// parseMessage splits one JSON-RPC message object.
func parseMessage(raw []byte) (message, error) {
	ms, err := scanObject(raw)
	if err != nil {
		return message{raw: raw}, err
	}
	m := message{raw: raw}
	for _, mb := range ms {
		switch {
		case strings.EqualFold(mb.key, "id"):
			m.id = mb.val
		case strings.EqualFold(mb.key, "method"):
			m.hasMethod = true
			if s, ok := unquote(mb.val); ok {
				m.method = s
			}
		case strings.EqualFold(mb.key, "params"):
			m.params = mb.val
		case strings.EqualFold(mb.key, "result"):
			m.result = mb.val
		case strings.EqualFold(mb.key, "error"):
			m.errVal = mb.val
		}
	}
	if m.params != nil && m.params[0] == '{' {
		// The server must read params the same way too ("name" vs "Name").
		if _, err := scanObject(m.params); err != nil {
			return m, fmt.Errorf("params: %w", err)
		}
	}
	return m, nil
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
// even when the server re-encodes the id (1 vs 1.0, "\u0061" vs "a").
func idKey(raw []byte) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if raw[0] == '"' {
		s, ok := unquote(raw)
		return "s" + s, ok
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return "n" + strconv.FormatInt(n, 10), true
	}
	if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
		if f == float64(int64(f)) {
			return "n" + strconv.FormatInt(int64(f), 10), true
		}
		return "n" + strconv.FormatFloat(f, 'g', -1, 64), true
	}
	return "", false
}
