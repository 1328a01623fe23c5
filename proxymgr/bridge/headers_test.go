package bridge

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestEncodeHeaderValue uses the examples of the 2026-07-28 streamable
// HTTP specification (Value Encoding).
func TestEncodeHeaderValue(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"us-west1":           "us-west1",
		"Hello, 世界":          "=?base64?SGVsbG8sIOS4lueVjA==?=",
		" padded ":           "=?base64?IHBhZGRlZCA=?=",
		"line1\nline2":       "=?base64?bGluZTEKbGluZTI=?=",
		"=?base64?literal?=": "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=",
		"inner space ok":     "inner space ok",
		"tab\tinside":        "tab\tinside",
		"":                   "",
		"\x7f":               "=?base64?fw==?=",
		"file:///a b.txt":    "file:///a b.txt",
	}
	for in, want := range cases {
		if got := encodeHeaderValue(in); got != want {
			t.Errorf("encodeHeaderValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzEncodeHeaderValue: the encoding is always a valid header value and
// decodes back to the input.
func FuzzEncodeHeaderValue(f *testing.F) {
	f.Add("Hello, 世界")
	f.Add(" x")
	f.Add("=?base64?x?=")
	f.Fuzz(func(t *testing.T, s string) {
		enc := encodeHeaderValue(s)
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c != '\t' && (c < 0x20 || c > 0x7e) {
				t.Fatalf("encoded %q has byte %#x", enc, c)
			}
		}
		dec := enc
		if strings.HasPrefix(enc, b64Prefix) && strings.HasSuffix(enc, b64Suffix) && len(enc) >= len(b64Prefix)+len(b64Suffix) {
			b, err := base64.StdEncoding.DecodeString(enc[len(b64Prefix) : len(enc)-len(b64Suffix)])
			if err != nil {
				t.Fatalf("bad base64 in %q: %v", enc, err)
			}
			dec = string(b)
		}
		if dec != s {
			t.Fatalf("%q encoded to %q decodes to %q", s, enc, dec)
		}
	})
}

func TestToolBindings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, schema string
		want         string // "path=Header,..." or "error: ..."
	}{
		{"none", `{"type":"object","properties":{"q":{"type":"string"}}}`, ""},
		{"top level", `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}`, "region=Region"},
		{"nested through properties", `{"properties":{"a":{"type":"object","properties":{"b":{"type":"integer","x-mcp-header":"B"}}}}}`, "a.b=B"},
		{"boolean", `{"properties":{"f":{"type":"boolean","x-mcp-header":"Flag"}}}`, "f=Flag"},
		{"property named like the keyword", `{"properties":{"x-mcp-header":{"type":"string"}}}`, ""},
		{"number type", `{"properties":{"n":{"type":"number","x-mcp-header":"N"}}}`, "error: type string, integer or boolean"},
		{"object type", `{"properties":{"o":{"type":"object","x-mcp-header":"O"}}}`, "error: type string"},
		{"empty name", `{"properties":{"r":{"type":"string","x-mcp-header":""}}}`, "error: non-empty"},
		{"not a string", `{"properties":{"r":{"type":"string","x-mcp-header":1}}}`, "error: non-empty"},
		{"bad token", `{"properties":{"r":{"type":"string","x-mcp-header":"Re gion"}}}`, "error: not a valid HTTP header name"},
		{"control character", `{"properties":{"r":{"type":"string","x-mcp-header":"R\r\n"}}}`, "error: not a valid"},
		{"duplicate ignoring case", `{"properties":{"a":{"type":"string","x-mcp-header":"Dup"},"b":{"type":"string","x-mcp-header":"dup"}}}`, "error: duplicate"},
		{"under items", `{"properties":{"l":{"type":"array","items":{"type":"string","x-mcp-header":"L"}}}}`, "error: not reachable"},
		{"under tuple items", `{"properties":{"l":{"type":"array","items":[{"type":"string","x-mcp-header":"L"}]}}}`, "error: not reachable"},
		{"under oneOf", `{"oneOf":[{"properties":{"r":{"type":"string","x-mcp-header":"R"}}}]}`, "error: not reachable"},
		{"under $defs", `{"$defs":{"d":{"type":"string","x-mcp-header":"D"}}}`, "error: not reachable"},
		{"on the root", `{"type":"string","x-mcp-header":"Root"}`, "error: not reachable"},
		{"in a default value is data", `{"properties":{"r":{"type":"object","default":{"x-mcp-header":"X"}}}}`, ""},
	}
	for _, tc := range cases {
		got, err := toolBindings([]byte(tc.schema))
		var s []string
		for _, b := range got {
			s = append(s, strings.Join(b.path, ".")+"="+b.header)
		}
		out := strings.Join(s, ",")
		if err != nil {
			out = "error: " + err.Error()
		}
		if (strings.HasPrefix(tc.want, "error: ") && !strings.Contains(out, strings.TrimPrefix(tc.want, "error: "))) ||
			(!strings.HasPrefix(tc.want, "error: ") && out != tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, out, tc.want)
		}
	}
}

func TestFilterToolsAndParamHeaders(t *testing.T) {
	t.Parallel()
	var th toolHeaders
	result := []byte(`{"tools":[
		{"name":"sql","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"n":{"type":"integer","x-mcp-header":"N"},"ok":{"type":"boolean","x-mcp-header":"Ok"}}}},
		{"name":"bad","inputSchema":{"type":"object","properties":{"x":{"type":"number","x-mcp-header":"X"}}}},
		{"name":"plain","inputSchema":{"type":"object"}}],
		"nextCursor":"c2"}`)
	out, dropped, err := th.filterTools(result)
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 || !strings.HasPrefix(dropped[0], "bad:") {
		t.Errorf("dropped %q", dropped)
	}
	var r struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
		NextCursor string `json:"nextCursor"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Tools) != 2 || r.Tools[0].Name != "sql" || r.Tools[1].Name != "plain" || r.NextCursor != "c2" {
		t.Errorf("filtered result %s (%v)", out, err)
	}

	m, _ := parseMessage([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sql","arguments":{"region":"Zürich","n":42.0,"ok":true,"query":"x"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`))
	h := http.Header{}
	setStandardHeaders(h, &m, &th, false)
	want := map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "sql", "Mcp-Param-Region": "=?base64?WsO8cmljaA==?=", "Mcp-Param-N": "42", "Mcp-Param-Ok": "true"}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	// Absent, null and non-primitive values produce no header.
	m, _ = parseMessage([]byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sql","arguments":{"region":null,"n":1.5}}}`))
	h = http.Header{}
	setStandardHeaders(h, &m, &th, false)
	for _, k := range []string{"Mcp-Param-Region", "Mcp-Param-N", "Mcp-Param-Ok"} {
		if h.Get(k) != "" {
			t.Errorf("%s = %q; want no header", k, h.Get(k))
		}
	}
	// A later tools/list without the annotations forgets them.
	if _, _, err := th.filterTools([]byte(`{"tools":[{"name":"sql","inputSchema":{"type":"object"}}]}`)); err != nil {
		t.Fatal(err)
	}
	if got := th.paramHeaders("sql", m.params); len(got) != 0 {
		t.Errorf("stale bindings: %v", got)
	}
}

// FuzzToolBindings: any schema is either accepted with valid bindings or
// rejected; nothing panics.
func FuzzToolBindings(f *testing.F) {
	f.Add([]byte(`{"properties":{"a":{"type":"string","x-mcp-header":"A"},"b":{"items":{"x-mcp-header":"B"}}}}`))
	f.Add([]byte(`{"properties":{"a":{"type":"integer","x-mcp-header":"A","properties":{"b":{"type":"boolean","x-mcp-header":"a"}}}}}`))
	f.Fuzz(func(t *testing.T, schema []byte) {
		bindings, err := toolBindings(schema)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, b := range bindings {
			if b.header == "" || len(b.path) == 0 || seen[strings.ToLower(b.header)] {
				t.Fatalf("bad binding %+v", b)
			}
			seen[strings.ToLower(b.header)] = true
			if http.CanonicalHeaderKey(hdrParamPrefix+b.header) == "" {
				t.Fatalf("unusable header name %q", b.header)
			}
		}
	})
}
