package proxymgr

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"keyport/proxymgr/policy"
)

// FuzzParseMessages checks the JSON-RPC scanner against encoding/json: it
// never panics, and on valid input without duplicate keys it reads the same
// method, id and params.
func FuzzParseMessages(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":[1,{"b":"}"}]}}}`,
		`[{"jsonrpc":"2.0","id":"x","method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
		`{"Method":"a","method":"b"}`,
		`{"id":1.5e3,"result":{"tools":[]}}`,
		`{"m\u0065thod":"tools/list","id":null}`,
		` { "id" : "\"" , "error" : { "code" : -1 } } `,
		`[]`, `{}`, `[1,"a",null]`, `{"a":`, `{"ſ":1,"s":2}`, `{"K":1,"k":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, errs, batch, err := parseMessages(body)
		if !json.Valid(body) {
			return // the proxy rejects invalid JSON before scanning
		}
		if err != nil {
			if batch {
				t.Fatalf("valid batch %q failed to scan: %v", body, err)
			}
			return
		}
		for i, m := range msgs {
			if errs[i] != nil {
				continue
			}
			var ref map[string]json.RawMessage
			if json.Unmarshal(m.raw, &ref) != nil {
				t.Fatalf("scanner accepted a non-object %q", m.raw)
			}
			ms, _ := scanObject(m.raw)
			if len(ms) != len(ref) {
				t.Fatalf("%q: %d members, encoding/json sees %d", m.raw, len(ms), len(ref))
			}
			for _, mb := range ms {
				if r, ok := ref[mb.key]; !ok || !bytes.Equal(compact(r), compact(mb.val)) {
					t.Fatalf("%q: member %q = %q, encoding/json: %q", m.raw, mb.key, mb.val, r)
				}
			}
			// Lookups are case-insensitive and unambiguous.
			for k, v := range ref {
				if strings.EqualFold(k, "method") {
					var s string
					if json.Unmarshal(v, &s) == nil && (s != m.method || !m.hasMethod) {
						t.Fatalf("%q: method %q, encoding/json %q", m.raw, m.method, s)
					}
				}
				if strings.EqualFold(k, "id") && !bytes.Equal(compact(v), compact(m.id)) {
					t.Fatalf("%q: id %q vs %q", m.raw, m.id, v)
				}
			}
		}
	})
}

func compact(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

// FuzzSSEScanner feeds a stream in pieces and checks the scanner against a
// whole-stream reference parser: same events, same data, and the event byte
// ranges cover the stream exactly (so relaying them is byte-for-byte).
func FuzzSSEScanner(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n",
		": c\r\nid: 1\r\nretry: 10\r\n\r\ndata: x\ndata:y\n\n",
		"data\r\rdata: z\r\n\r\n",
		"event: message\ndata: {\"a\":1}\n\nid: 2\n\n\n\n",
		"data: unterminated",
	} {
		f.Add([]byte(s), uint8(3), uint8(5))
	}
	f.Fuzz(func(t *testing.T, stream []byte, a, b uint8) {
		sc := newSSEScanner(1 << 20)
		var got []string
		var out bytes.Buffer
		start := -1
		pos := 0
		cuts := []int{int(a) % (len(stream) + 1), int(b) % (len(stream) + 1)}
		if cuts[0] > cuts[1] {
			cuts[0], cuts[1] = cuts[1], cuts[0]
		}
		pieces := [][]byte{stream[:cuts[0]], stream[cuts[0]:cuts[1]], stream[cuts[1]:]}
		for _, p := range pieces {
			base := pos
			sc.feed(p, func(i int) {
				if start >= 0 {
					t.Fatalf("event started at %d inside another from %d", base+i, start)
				}
				start = base + i
			}, func(i int, ev *sseEvent) {
				if start < 0 {
					t.Fatalf("event ended at %d without a start", base+i)
				}
				out.Write(stream[start : base+i])
				if ev.hasData {
					got = append(got, string(ev.data))
				}
				start = -1
			})
			pos += len(p)
		}
		if start >= 0 {
			out.Write(stream[start:])
		}
		if !bytes.Equal(out.Bytes(), stream) {
			t.Fatalf("event ranges do not cover the stream:\n got %q\nwant %q", out.Bytes(), stream)
		}
		if want := refSSE(stream); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("events %q, reference %q", got, want)
		}
	})
}

// refSSE is a straightforward reading of the SSE spec's parsing rules,
// returning the data of each dispatched event.
func refSSE(b []byte) []string {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	lines = lines[:len(lines)-1] // the last piece has no line ending
	var out []string
	var data []string
	has := false
	for _, l := range lines {
		if l == "" {
			if has {
				out = append(out, strings.Join(data, "\n"))
			}
			data, has = nil, false
			continue
		}
		if l[0] == ':' {
			continue
		}
		field, value, found := strings.Cut(l, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		if field == "data" {
			data = append(data, value)
			has = true
		}
	}
	return out
}

// FuzzFilterTools: filtering never panics, keeps valid JSON and never keeps
// a denied tool.
func FuzzFilterTools(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"delete_repo","x":[{}]},{"nam":"y"}],"nextCursor":"c"}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"Tools":[{"NAME":"delete_repo"}]}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}`))
	pol := policy.MustCompile([]string{"echo", "d*"}, []string{"delete_*"})
	f.Fuzz(func(t *testing.T, msg []byte) {
		if !json.Valid(msg) {
			return
		}
		out, _, err := filterToolsResult(msg, pol)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("filter produced invalid JSON %q from %q", out, msg)
		}
		m, err := parseMessage(out)
		if err != nil || m.result == nil || m.result[0] != '{' {
			return
		}
		rms, err := scanObject(m.result)
		if err != nil {
			return
		}
		for _, r := range rms {
			if !strings.EqualFold(r.key, "tools") || r.val[0] != '[' {
				continue
			}
			tools, _ := scanArray(r.val)
			for _, tl := range tools {
				if name, ok := paramString(tl, "name"); !ok || !pol.Allowed(name) {
					t.Fatalf("kept tool %q in %q", tl, out)
				}
			}
		}
	})
}

func TestRewriteEvent(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, data, want string }{
		{"id: 1\ndata: old\n\n", `{"a":1}`, "id: 1\ndata: {\"a\":1}\n\n"},
		{"event: message\r\ndata: a\r\ndata: b\r\nid: 9\r\n\r\n", "x\ny", "event: message\r\ndata: x\ndata: y\nid: 9\r\n\r\n"},
		{"\ndata: a\n\n", "b", "\ndata: b\n\n"},
	}
	for _, tc := range tests {
		if got := string(rewriteEvent([]byte(tc.raw), []byte(tc.data))); got != tc.want {
			t.Errorf("rewriteEvent(%q, %q) = %q, want %q", tc.raw, tc.data, got, tc.want)
		}
	}
}
