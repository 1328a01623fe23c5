package bridge

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseMessage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in                string
		kind              string // request, notification, response, or "" for an error
		id, method, param string
		errHas            string
	}{
		{in: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, kind: "request", id: `1`, method: "tools/list"},
		{in: ` {"jsonrpc":"2.0","method":"notifications/initialized"} `, kind: "notification", method: "notifications/initialized"},
		{in: `{"jsonrpc":"2.0","id":"a\"b","result":{}}`, kind: "response", id: `"a\"b"`},
		{in: `{"jsonrpc":"2.0","id":1.50,"error":{"code":-1,"message":"x"}}`, kind: "response", id: `1.50`},
		{in: `{"params":{"x":[1,2,{"y":null}]},"method":"m","id":null}`, kind: "request", id: `null`, method: "m", param: `{"x":[1,2,{"y":null}]}`},
		{in: `{"jsonrpc":"2.0","id":1,"meth\u006fd":"escaped/key"}`, kind: "request", id: `1`, method: "escaped/key"},
		{in: `{"jsonrpc":"2.0","id":1,"Method":"case/variant","method":"real"}`, kind: "request", id: "1", method: "real"},
		{in: `{"jsonrpc":"2.0","ID":1,"method":"no/id"}`, kind: "notification", method: "no/id"},
		{in: `[]`, errHas: "JSON object"},
		{in: `{"id":1}`, errHas: "no method"},
		{in: `{"id":1,"method":"a","method":"b"}`, errHas: `duplicate "method"`},
		{in: `{"id":1,"id":2,"method":"a"}`, errHas: `duplicate "id"`},
		{in: `{"id":{},"method":"a"}`, errHas: "id must be"},
		{in: `{"id":true,"method":"a"}`, errHas: "id must be"},
		{in: `{"id":1,"method":""}`, errHas: "non-empty string"},
		{in: `{"id":1,"method":2}`, errHas: "non-empty string"},
		{in: `{"id":1,"method":"a"} x`, errHas: "after the JSON value"},
		{in: `{"id":1,"method":"a"`, errHas: "unterminated"},
		{in: `{"id":01,"method":"a"}`, errHas: "invalid JSON"},
		{in: `{"id":1,"method":"a\u00"}`, errHas: "escape"},
		{in: "{\"id\":1,\"method\":\"a\tb\"}", errHas: "control character"},
	}
	for _, tc := range cases {
		m, err := parseMessage([]byte(tc.in))
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%s: error %v, want one containing %q", tc.in, err, tc.errHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got := kindOf(&m); got != tc.kind {
			t.Errorf("%s: kind %s, want %s", tc.in, got, tc.kind)
		}
		if string(m.id) != tc.id || m.method != tc.method {
			t.Errorf("%s: id %s method %q", tc.in, m.id, m.method)
		}
		if tc.param != "" && string(m.params) != tc.param {
			t.Errorf("%s: params %s", tc.in, m.params)
		}
	}
}

func TestIDKeyAndWithID(t *testing.T) {
	t.Parallel()
	same := [][2]string{{`1`, `1.0`}, {`1`, `1e0`}, {`"a"`, `"\u0061"`}, {`-0`, `0`}, {`9007199254740993`, `9007199254740993`}}
	for _, p := range same {
		if idKey([]byte(p[0])) != idKey([]byte(p[1])) {
			t.Errorf("idKey(%s) != idKey(%s)", p[0], p[1])
		}
	}
	differ := [][2]string{{`1`, `"1"`}, {`1`, `2`}, {`1.5`, `1`}, {`null`, `"null"`}, {`9007199254740993`, `9007199254740992`}}
	for _, p := range differ {
		if idKey([]byte(p[0])) == idKey([]byte(p[1])) {
			t.Errorf("idKey(%s) == idKey(%s)", p[0], p[1])
		}
	}
	m, err := parseMessage([]byte(`{"jsonrpc":"2.0","id":1,"result":{"id":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(withID(&m, []byte(`1.50`))); got != `{"jsonrpc":"2.0","id":1.50,"result":{"id":1}}` {
		t.Errorf("withID = %s", got)
	}
	if got := withID(&m, []byte(`1`)); &got[0] != &m.raw[0] {
		t.Errorf("withID copied although the id was unchanged")
	}
}

func TestField(t *testing.T) {
	t.Parallel()
	obj := []byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"name":"n\u00e9","uri":1}`)
	if got := metaProtocolVersion(obj); got != "2026-07-28" {
		t.Errorf("metaProtocolVersion = %q", got)
	}
	if got, ok := nameOf("tools/call", obj); !ok || got != "né" {
		t.Errorf("nameOf = %q %v", got, ok)
	}
	if _, ok := nameOf("resources/read", obj); ok {
		t.Errorf("nameOf accepted a number uri")
	}
	if field([]byte(`[1]`), "x") != nil || field(obj, "missing") != nil {
		t.Errorf("field found something that is not there")
	}
}

func TestErrorResponse(t *testing.T) {
	t.Parallel()
	raw := errorResponse([]byte(`"x"`), -32603, "bad <thing>\n\"quoted\"")
	var v struct {
		ID    string `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.ID != "x" || v.Error.Code != -32603 || v.Error.Message != "bad <thing>\n\"quoted\"" {
		t.Errorf("errorResponse = %s (%v)", raw, err)
	}
	if bytes.IndexByte(raw, '\n') >= 0 {
		t.Errorf("errorResponse is not one line: %q", raw)
	}
	if got := string(errorResponse(nil, -32700, "x")); !strings.Contains(got, `"id":null`) {
		t.Errorf("null id: %s", got)
	}
}

// FuzzParseMessage checks the scanner against encoding/json: it accepts
// exactly the JSON objects encoding/json accepts, and finds the same
// members.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,2.5e3,true,false,null]}}}`,
		`{"jsonrpc":"2.0","id":"s","result":{"content":[{"type":"text","text":"\u00e9\n"}]}}`,
		`{"id":-0.5E+2,"error":{"code":-32603,"message":"m","data":{}}}`,
		`{"method":"notifications/progress","params":{"progressToken":1,"progress":0.5}}`,
		`{}`, `{"a":{}}`, `{"a":[]}`, `{"\ud800":1}`, "{\"a\":\"\xff\"}", `{"id":1 ,"method" : "m" }`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		var obj map[string]json.RawMessage
		stdErr := json.Unmarshal(b, &obj)
		// Duplicate routing keys, bad id/method types and messages without
		// method/result/error are rejected on purpose; syntax must agree.
		var se *syntaxError
		if stdErr != nil && err == nil {
			t.Fatalf("accepted invalid JSON %q (encoding/json: %v)", b, stdErr)
		}
		if stdErr == nil && (errorsAs(err, &se) || err == errTrailingData || err == errNotObject) {
			t.Fatalf("rejected valid JSON object %q: %v", b, err)
		}
		if err != nil {
			return
		}
		for key, got := range map[string][]byte{"id": m.id, "params": m.params, "result": m.result, "error": m.errObj} {
			want, ok := obj[key]
			if ok != (got != nil) || (ok && !bytes.Equal(bytes.TrimSpace(want), got)) {
				t.Fatalf("%q: member %s = %q, encoding/json has %q", b, key, got, want)
			}
		}
		if m.id != nil {
			if out := withID(&m, []byte(`"X"`)); !json.Valid(out) {
				t.Fatalf("withID produced invalid JSON %q", out)
			}
		}
	})
}

func errorsAs(err error, target **syntaxError) bool {
	se, ok := err.(*syntaxError)
	if ok {
		*target = se
	}
	return ok
}

// FuzzSplitBatch: batches split into valid elements or are rejected.
func FuzzSplitBatch(f *testing.F) {
	f.Add([]byte(`[{"id":1,"method":"a"},{"method":"b"}]`))
	f.Add([]byte(`[1, [2], "x"]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		parts, err := splitBatch(b)
		var all []json.RawMessage
		stdErr := json.Unmarshal(b, &all)
		if err == nil {
			if stdErr != nil {
				t.Fatalf("accepted invalid batch %q", b)
			}
			if len(parts) != len(all) {
				t.Fatalf("%q: %d parts, encoding/json %d", b, len(parts), len(all))
			}
			for _, p := range parts {
				if !json.Valid(p) {
					t.Fatalf("invalid part %q", p)
				}
			}
		} else if stdErr == nil && len(all) > 0 {
			t.Fatalf("rejected valid batch %q: %v", b, err)
		}
	})
}
