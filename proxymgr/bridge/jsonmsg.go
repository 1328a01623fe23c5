package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// message is one JSON-RPC message: its exact bytes plus the spans of the
// top-level fields the bridge routes on. The bridge forwards raw bytes and
// only looks inside, so ids, params and results reach the other side
// byte for byte.
type message struct {
	raw    []byte // the whole message (one JSON object)
	id     []byte // raw id value; nil when absent
	idOff  int    // offset of id within raw (valid when id != nil)
	method string // "" when absent
	params []byte // raw params value; nil when absent
	result []byte // raw result value; nil when absent
	errObj []byte // raw error value; nil when absent
}

// isRequest reports whether m is a request (a method and an id).
func (m *message) isRequest() bool { return m.method != "" && m.id != nil }

// isNotification reports whether m is a notification (a method, no id).
func (m *message) isNotification() bool { return m.method != "" && m.id == nil }

// isResponse reports whether m is a response (a result or an error, no method).
func (m *message) isResponse() bool {
	return m.method == "" && (m.result != nil || m.errObj != nil)
}

// maxDepth bounds nesting like encoding/json does, so hostile input cannot
// exhaust the stack.
const maxDepth = 10000

var (
	errNotObject    = errors.New("a JSON-RPC message must be a JSON object")
	errTrailingData = errors.New("unexpected data after the JSON value")
)

// syntaxError reports where a message stopped being valid JSON.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.off, e.msg) }

// parseMessage validates b as one JSON object and records the JSON-RPC fields.
// Keys match exactly (JSON-RPC is case-sensitive: "ID" is not "id"); a
// duplicated routing key is an error, so the bridge and the server can never
// read a message differently.
func parseMessage(b []byte) (message, error) {
	m := message{raw: b}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return m, errNotObject
	}
	seen := 0
	end, err := eachField(b, i, 0, func(key []byte, escaped bool, vs, ve int) error {
		k := string(key)
		if escaped {
			var s string
			if err := json.Unmarshal(key, &s); err != nil {
				return err
			}
			k = s
		} else {
			k = k[1 : len(k)-1]
		}
		bit := 0
		switch k {
		case "id":
			bit = 1
			switch b[vs] {
			case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'n':
			default:
				return fmt.Errorf("the id must be a string or a number")
			}
			m.id, m.idOff = b[vs:ve], vs
		case "method":
			bit = 2
			s, ok := unquote(b[vs:ve])
			if !ok || s == "" {
				return fmt.Errorf("the method must be a non-empty string")
			}
			m.method = s
		case "params":
			bit = 4
			m.params = b[vs:ve]
		case "result":
			bit = 8
			m.result = b[vs:ve]
		case "error":
			bit = 16
			m.errObj = b[vs:ve]
		case "jsonrpc":
			bit = 32
		}
		if bit != 0 {
			if seen&bit != 0 {
				return fmt.Errorf("duplicate %q member", k)
			}
			seen |= bit
		}
		return nil
	})
	if err != nil {
		return m, err
	}
	if j := skipSpace(b, end); j != len(b) {
		return m, errTrailingData
	}
	if m.method == "" && m.result == nil && m.errObj == nil {
		return m, errors.New("not a JSON-RPC message: no method, result or error member")
	}
	return m, nil
}

// field returns the raw value of key in the JSON object obj (already
// validated), or nil. Keys match exactly.
func field(obj []byte, key string) []byte {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil
	}
	var out []byte
	_, _ = eachField(obj, i, 0, func(k []byte, escaped bool, vs, ve int) error {
		if out != nil {
			return nil
		}
		if keyEquals(k, escaped, key) {
			out = obj[vs:ve]
		}
		return nil
	})
	return out
}

// keyEquals compares a raw quoted key with key.
func keyEquals(raw []byte, escaped bool, key string) bool {
	if !escaped {
		return len(raw) == len(key)+2 && string(raw[1:len(raw)-1]) == key
	}
	s, ok := unquote(raw)
	return ok && s == key
}

// unquote returns the value of a raw JSON string, or false when raw is not a
// JSON string.
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// idKey maps a raw JSON-RPC id to a comparable key: equal ids written
// differently (1 and 1.0, "a" and "\u0061") get the same key.
func idKey(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		s, _ := unquote(raw)
		return "s" + s
	case 'n':
		return "null"
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return "n" + strconv.FormatInt(n, 10)
	}
	if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
		if f == float64(int64(f)) && f >= -(1<<63) && f < 1<<63 {
			return "n" + strconv.FormatInt(int64(f), 10)
		}
		return "n" + strconv.FormatFloat(f, 'g', -1, 64)
	}
	return "n" + string(raw)
}

// withID returns m's bytes with its id replaced by id (m must have an id).
// The bridge uses it to hand a response back with the exact id bytes the
// client sent, whatever the server made of them.
func withID(m *message, id []byte) []byte {
	if m.id == nil || string(m.id) == string(id) {
		return m.raw
	}
	out := make([]byte, 0, len(m.raw)-len(m.id)+len(id))
	out = append(out, m.raw[:m.idOff]...)
	out = append(out, id...)
	return append(out, m.raw[m.idOff+len(m.id):]...)
}

// eachField walks the members of the object starting at b[i] == '{',
// validating it, and calls fn with each raw key (quotes included; escaped
// reports whether it contains a backslash) and its value span.
func eachField(b []byte, i, depth int, fn func(key []byte, escaped bool, vs, ve int) error) (int, error) {
	if depth >= maxDepth {
		return i, &syntaxError{i, "nesting too deep"}
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, &syntaxError{i, "expected a string key"}
		}
		ke, escaped, err := skipString(b, i)
		if err != nil {
			return i, err
		}
		key := b[i:ke]
		i = skipSpace(b, ke)
		if i >= len(b) || b[i] != ':' {
			return i, &syntaxError{i, "expected ':' after a key"}
		}
		vs := skipSpace(b, i+1)
		ve, err := skipValue(b, vs, depth+1)
		if err != nil {
			return vs, err
		}
		if fn != nil {
			if err := fn(key, escaped, vs, ve); err != nil {
				return vs, err
			}
		}
		i = skipSpace(b, ve)
		if i >= len(b) {
			return i, &syntaxError{i, "unterminated object"}
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, &syntaxError{i, "expected ',' or '}' in an object"}
		}
	}
}

// eachElement walks the array starting at b[i] == '[' and calls fn with the
// span of each element.
func eachElement(b []byte, i, depth int, fn func(vs, ve int) error) (int, error) {
	if depth >= maxDepth {
		return i, &syntaxError{i, "nesting too deep"}
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		vs := i
		ve, err := skipValue(b, vs, depth+1)
		if err != nil {
			return vs, err
		}
		if fn != nil {
			if err := fn(vs, ve); err != nil {
				return vs, err
			}
		}
		i = skipSpace(b, ve)
		if i >= len(b) {
			return i, &syntaxError{i, "unterminated array"}
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, &syntaxError{i, "expected ',' or ']' in an array"}
		}
	}
}

// skipValue validates the JSON value starting at b[i] and returns the index
// just past it.
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, &syntaxError{i, "unexpected end of input"}
	}
	switch c := b[i]; {
	case c == '{':
		return eachField(b, i, depth, nil)
	case c == '[':
		return eachElement(b, i, depth, nil)
	case c == '"':
		e, _, err := skipString(b, i)
		return e, err
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	default:
		return i, &syntaxError{i, fmt.Sprintf("unexpected character %q", c)}
	}
}

// skipString validates the string starting at b[i] == '"' and returns the
// index past its closing quote and whether it contains escapes.
func skipString(b []byte, i int) (int, bool, error) {
	escaped := false
	for j := i + 1; j < len(b); {
		c := b[j]
		switch {
		case c == '"':
			return j + 1, escaped, nil
		case c == '\\':
			escaped = true
			if j+1 >= len(b) {
				return j, escaped, &syntaxError{j, "unterminated escape"}
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) || !isHex4(b[j+2:j+6]) {
					return j, escaped, &syntaxError{j, "invalid \\u escape"}
				}
				j += 6
			default:
				return j, escaped, &syntaxError{j, "invalid escape"}
			}
		case c < 0x20:
			return j, escaped, &syntaxError{j, "control character in a string"}
		case c < utf8.RuneSelf:
			j++
		default:
			// Invalid UTF-8 is tolerated, as encoding/json does (it decodes
			// to U+FFFD); the bytes are forwarded unchanged.
			_, n := utf8.DecodeRune(b[j:])
			j += n
		}
	}
	return len(b), escaped, &syntaxError{len(b), "unterminated string"}
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, &syntaxError{i, "invalid literal"}
	}
	return i + len(lit), nil
}

// skipNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, error) {
	j := i
	if b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return j, &syntaxError{j, "invalid number"}
	}
	if j < len(b) && b[j] == '.' {
		j++
		if j >= len(b) || b[j] < '0' || b[j] > '9' {
			return j, &syntaxError{j, "invalid number"}
		}
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if j >= len(b) || b[j] < '0' || b[j] > '9' {
			return j, &syntaxError{j, "invalid number"}
		}
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	}
	return j, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
