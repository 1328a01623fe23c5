package bridge

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// HTTP headers of the streamable HTTP transport.
const (
	hdrSessionID       = "Mcp-Session-Id"
	hdrProtocolVersion = "Mcp-Protocol-Version" // the spec writes MCP-Protocol-Version; names are case-insensitive
	hdrMethod          = "Mcp-Method"
	hdrName            = "Mcp-Name"
	hdrParamPrefix     = "Mcp-Param-"
	hdrLastEventID     = "Last-Event-Id"
)

// Protocol versions with behaviour the bridge depends on.
const (
	// version20250618 introduced the MCP-Protocol-Version header.
	version20250618 = "2025-06-18"
	// version20260728 is the stateless era (SEP-2575): no initialize, no
	// session, no GET stream, per-request _meta, and the standard request
	// headers of SEP-2243 (Mcp-Method, Mcp-Name, Mcp-Param-*).
	version20260728 = "2026-07-28"
)

// metaProtocolVersionKey is the _meta key a 2026-07-28 request carries its
// protocol version in.
const metaProtocolVersionKey = "io.modelcontextprotocol/protocolVersion"

// metaProtocolVersion returns params._meta["io.modelcontextprotocol/protocolVersion"].
func metaProtocolVersion(params []byte) string {
	if params == nil {
		return ""
	}
	meta := field(params, "_meta")
	if meta == nil {
		return ""
	}
	s, _ := unquote(field(meta, metaProtocolVersionKey))
	return s
}

// nameOf returns the value Mcp-Name mirrors: params.name of tools/call and
// prompts/get, params.uri of resources/read.
func nameOf(method string, params []byte) (string, bool) {
	var key string
	switch method {
	case "tools/call", "prompts/get":
		key = "name"
	case "resources/read":
		key = "uri"
	default:
		return "", false
	}
	return unquote(field(params, key))
}

// setStandardHeaders adds the SEP-2243 request headers of a 2026-07-28 (or
// later) request: Mcp-Method, Mcp-Name and the tool's Mcp-Param-* headers.
// rawName sends a name that needs encoding as plain UTF-8 instead, for
// servers that compare Mcp-Name without decoding it (go-sdk v1.8.0).
func setStandardHeaders(h http.Header, m *message, tools *toolHeaders, rawName bool) {
	h.Set(hdrMethod, m.method)
	if name, ok := nameOf(m.method, m.params); ok {
		if rawName && !strings.ContainsAny(name, "\r\n\x00") {
			h.Set(hdrName, name)
		} else {
			h.Set(hdrName, encodeHeaderValue(name))
		}
		if m.method == "tools/call" {
			for k, v := range tools.paramHeaders(name, m.params) {
				h.Set(k, v)
			}
		}
	}
}

const (
	b64Prefix = "=?base64?"
	b64Suffix = "?="
)

// encodeHeaderValue encodes a value for Mcp-Name or Mcp-Param-*: as is when
// it is plain visible ASCII, otherwise (non-ASCII, control characters,
// leading or trailing whitespace, or a value that looks encoded) as
// =?base64?...?= of its UTF-8 bytes.
func encodeHeaderValue(s string) string {
	if needsBase64(s) {
		return b64Prefix + base64.StdEncoding.EncodeToString([]byte(s)) + b64Suffix
	}
	return s
}

func needsBase64(s string) bool {
	if s == "" {
		return false
	}
	if first, last := s[0], s[len(s)-1]; first == ' ' || first == '\t' || last == ' ' || last == '\t' {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\t' && (c < 0x21 || c > 0x7e) {
			return true
		}
	}
	return strings.HasPrefix(s, b64Prefix) && strings.HasSuffix(s, b64Suffix)
}

// headerBinding is one x-mcp-header annotation: the argument at path is
// mirrored into the header Mcp-Param-<header>.
type headerBinding struct {
	path   []string
	header string
}

// toolHeaders remembers the x-mcp-header bindings of the tools seen in
// tools/list results, so tools/call requests can carry their Mcp-Param-*
// headers. The bridge is the HTTP client, so this is its job even when the
// stdio client knows nothing about x-mcp-header.
type toolHeaders struct {
	byTool map[string][]headerBinding
}

// paramHeaders returns the Mcp-Param-* headers of a tools/call of tool.
func (t *toolHeaders) paramHeaders(tool string, params []byte) map[string]string {
	if t == nil || len(t.byTool[tool]) == 0 {
		return nil
	}
	args := field(params, "arguments")
	if args == nil {
		return nil
	}
	out := make(map[string]string)
	for _, b := range t.byTool[tool] {
		v := args
		for _, p := range b.path {
			if v = field(v, p); v == nil {
				break
			}
		}
		if v == nil {
			continue
		}
		if s, ok := primitiveString(v); ok {
			out[hdrParamPrefix+b.header] = encodeHeaderValue(s)
		}
	}
	return out
}

// primitiveString converts a raw JSON string, boolean or integer (within the
// JavaScript safe range) to its header form; null and anything else is
// omitted.
func primitiveString(v []byte) (string, bool) {
	switch v[0] {
	case '"':
		return unquote(v)
	case 't', 'f':
		return string(v), true
	case 'n', '{', '[':
		return "", false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53-1 {
		return "", false
	}
	return strconv.FormatInt(int64(f), 10), true
}

// schemaNode is the part of a JSON Schema the x-mcp-header rules look at.
type schemaNode map[string]json.RawMessage

// subschemaKeywords are the JSON Schema keywords whose values are schemas
// (or arrays or maps of schemas). An x-mcp-header below any of them, other
// than through a chain of "properties", is not statically reachable.
// The value is 's' for a schema or an array of schemas, 'm' for a map of them.
var subschemaKeywords = map[string]byte{
	"items": 's', "additionalItems": 's', "unevaluatedItems": 's', "contains": 's',
	"additionalProperties": 's', "unevaluatedProperties": 's', "propertyNames": 's',
	"not": 's', "if": 's', "then": 's', "else": 's',
	"prefixItems": 's', "allOf": 's', "anyOf": 's', "oneOf": 's',
	"patternProperties": 'm', "dependentSchemas": 'm', "$defs": 'm', "definitions": 'm', "dependencies": 'm',
}

// toolBindings validates the x-mcp-header annotations of one tool's
// inputSchema (SEP-2243) and returns its bindings. A tool with an invalid
// annotation must be left out of tools/list.
func toolBindings(inputSchema []byte) ([]headerBinding, error) {
	if !bytes.Contains(inputSchema, []byte("x-mcp-header")) {
		return nil, nil
	}
	var out []headerBinding
	seen := map[string]bool{}
	var walk func(raw json.RawMessage, path []string, reachable bool) error
	// walkAny walks an unreachable schema or array of schemas.
	walkAny := func(raw json.RawMessage, path []string) error {
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil {
			for _, s := range list {
				if err := walk(s, path, false); err != nil {
					return err
				}
			}
			return nil
		}
		return walk(raw, path, false)
	}
	walk = func(raw json.RawMessage, path []string, reachable bool) error {
		var node schemaNode
		if err := json.Unmarshal(raw, &node); err != nil {
			return nil // booleans and non-objects carry no annotations
		}
		where := strings.Join(path, ".")
		if ann, ok := node["x-mcp-header"]; ok {
			if !reachable || len(path) == 0 {
				return fmt.Errorf("x-mcp-header at %q is not reachable through properties alone", where)
			}
			var name string
			if err := json.Unmarshal(ann, &name); err != nil || name == "" {
				return fmt.Errorf("property %q: x-mcp-header must be a non-empty string", where)
			}
			for i := 0; i < len(name); i++ {
				if !isTChar(name[i]) {
					return fmt.Errorf("property %q: x-mcp-header %q is not a valid HTTP header name", where, name)
				}
			}
			var typ string
			_ = json.Unmarshal(node["type"], &typ)
			if typ != "string" && typ != "integer" && typ != "boolean" {
				return fmt.Errorf("property %q: x-mcp-header needs type string, integer or boolean, not %s", where, node["type"])
			}
			if seen[strings.ToLower(name)] {
				return fmt.Errorf("property %q: duplicate x-mcp-header %q", where, name)
			}
			seen[strings.ToLower(name)] = true
			out = append(out, headerBinding{path: append([]string(nil), path...), header: name})
		}
		if props, ok := node["properties"]; ok {
			var m map[string]json.RawMessage
			if json.Unmarshal(props, &m) == nil {
				for name, sub := range m {
					if err := walk(sub, append(path, name), reachable); err != nil {
						return err
					}
				}
			}
		}
		for kw, raw := range node {
			kind, ok := subschemaKeywords[kw]
			if !ok || !bytes.Contains(raw, []byte("x-mcp-header")) {
				continue
			}
			sub := append(path, kw)
			if kind == 'm' {
				var m map[string]json.RawMessage
				if json.Unmarshal(raw, &m) == nil {
					for _, s := range m {
						if err := walkAny(s, sub); err != nil {
							return err
						}
					}
				}
			} else if err := walkAny(raw, sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(inputSchema, nil, true); err != nil {
		return nil, err
	}
	return out, nil
}

// isTChar reports whether c may appear in an HTTP header name (RFC 9110 tchar).
func isTChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// errNoTools means a result has no tools array to inspect.
var errNoTools = errors.New("no tools array")

// filterTools inspects a tools/list result: it records each tool's
// x-mcp-header bindings in t and drops tools whose annotations are invalid,
// as SEP-2243 requires of a streamable HTTP client. It returns the result to
// forward (the original bytes when nothing was dropped) and the names of the
// dropped tools with the reasons.
func (t *toolHeaders) filterTools(result []byte) ([]byte, []string, error) {
	tools := field(result, "tools")
	if tools == nil || tools[0] != '[' {
		return result, nil, errNoTools
	}
	if !bytes.Contains(tools, []byte("x-mcp-header")) {
		// The common case: no annotations, nothing to remember or drop.
		_, _ = eachElement(tools, 0, 0, func(vs, ve int) error {
			if name, ok := unquote(field(tools[vs:ve], "name")); ok {
				delete(t.byTool, name)
			}
			return nil
		})
		return result, nil, nil
	}
	var (
		kept    []json.RawMessage
		dropped []string
	)
	_, err := eachElement(tools, 0, 0, func(vs, ve int) error {
		tool := tools[vs:ve]
		name, _ := unquote(field(tool, "name"))
		bindings, err := toolBindings(field(tool, "inputSchema"))
		if err != nil {
			dropped = append(dropped, fmt.Sprintf("%s: %v", name, err))
			delete(t.byTool, name)
			return nil
		}
		if len(bindings) > 0 {
			if t.byTool == nil {
				t.byTool = map[string][]headerBinding{}
			}
			t.byTool[name] = bindings
		} else {
			delete(t.byTool, name)
		}
		kept = append(kept, json.RawMessage(tool))
		return nil
	})
	if err != nil {
		return result, nil, err
	}
	if len(dropped) == 0 {
		return result, nil, nil
	}
	// Rebuild the result with the kept tools, keeping every other member.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(result, &members); err != nil {
		return result, nil, err
	}
	if kept == nil {
		kept = []json.RawMessage{}
	}
	list, err := json.Marshal(kept)
	if err != nil {
		return result, nil, err
	}
	members["tools"] = list
	out, err := json.Marshal(members)
	if err != nil {
		return result, nil, err
	}
	return out, dropped, nil
}
