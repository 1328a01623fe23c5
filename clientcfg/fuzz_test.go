package clientcfg

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tailscale/hujson"
)

// semantic decodes JSONC text as encoding/json would see it (comments and
// trailing commas removed); ok=false if it is not a JSON object.
func semantic(b []byte) (map[string]any, bool) {
	b = bytes.TrimPrefix(b, utf8BOM)
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, true
	}
	std, err := hujson.Standardize(bytes.Clone(b))
	if err != nil {
		if std, err = hujson.Standardize(append(bytes.Clone(b), '\n')); err != nil {
			return nil, false
		}
	}
	var m map[string]any
	if err := decodeJSON(std, &m); err != nil {
		return nil, false
	}
	return m, true
}

// withoutKeyport returns the config with the servers' keyport-* entries
// dropped (and a missing or null servers value as an empty object).
func withoutKeyport(m map[string]any, rootKey string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	servers, _ := m[rootKey].(map[string]any)
	kept := map[string]any{}
	for k, v := range servers {
		if !strings.HasPrefix(k, EntryPrefix) {
			kept[k] = v
		}
	}
	out[rootKey] = kept
	return out
}

var fuzzOps = []func() Op{
	func() Op { return InstallOp(remoteWant("fz", "4100")) },
	func() Op { return InstallOp(stdioWant("fz")) },
	func() Op { return RemoveOp("fz") },
	func() Op { return SyncOp([]Want{remoteWant("fz", "4100"), remoteWant("b", "4200")}) },
	func() Op { return SyncOp(nil) },
}

// fuzzSeeds adds the seed corpus: every test input with every op, and
// tricky snippets.
func fuzzSeeds(f *testing.F) {
	ents, _ := os.ReadDir(filepath.Join("testdata", "inputs"))
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join("testdata", "inputs", e.Name()))
		for op := range fuzzOps {
			f.Add(b, uint8(op), false)
		}
	}
	for _, s := range []string{
		"", "{}", "[]", "null", "{\"mcpServers\": null}", "{\"mcpServers\": []}",
		"{\"mcpServers\": {\"keyport-fz\": 1}}",
		"{\"mcpServers\": {\"keyport-fz\": {\"url\": \"http://127.0.0.1:1/mcp\"}, \"keyport-fz\": {\"url\": \"http://localhost:2/mcp\"},}}",
		"{\"mcpServers\": {\"a\": 1 /* c */ , \"keyport-b\": {\"url\": \"http://[::1]:3/mcp\"} // x\n}}",
		"{ \"mcpServers\" : { } , }",
		"{\"mcp\\u0053ervers\": {\"x\": 1}}",
		"\ufeff{\r\n\"a\":1\r\n}",
		"{\"mcpServers\": {\n// only a comment\n}}",
		"{\"a\": \"\\\"}\"}",
		"{\"mcpServers\":{\"keyport-b\":{\"command\":\"/x/keyport\",\"args\":[\"connect\",\"b\"]}}}",
		"{\"servers\": {\"keyport-fz\": {\"type\": \"http\", \"url\": \"http://127.0.0.1:9/mcp\", \"disabled\": true,}}}",
	} {
		for op := range fuzzOps {
			f.Add([]byte(s), uint8(op), true)
		}
	}
}

// checkEdit is the property both fuzz targets check: either a clean error
// (a *ConfigError or *ForeignError, never an internal error), or a result
// that parses, keeps every non-Keyport entry and every other top-level
// member semantically equal, holds the wanted entry, and changes nothing
// when the op runs again.
func checkEdit(t *testing.T, data []byte, c Client, op Op, out []byte, err error, again func(out []byte) ([]byte, error)) {
	t.Helper()
	if err != nil {
		var ce *ConfigError
		var fe *ForeignError
		if !errors.As(err, &ce) && !errors.As(err, &fe) {
			t.Fatalf("unclean error: %v\ninput: %q", err, data)
		}
		return
	}
	before, ok := semantic(data)
	if !ok {
		t.Fatalf("accepted input encoding/json cannot read: %q", data)
	}
	got, ok := semantic(out)
	if !ok {
		t.Fatalf("output does not parse:\n%s", out)
	}
	if !reflect.DeepEqual(withoutKeyport(before, c.RootKey), withoutKeyport(got, c.RootKey)) {
		t.Fatalf("non-Keyport content changed:\n--- in\n%s\n--- out\n%s", data, out)
	}
	servers, _ := got[c.RootKey].(map[string]any)
	switch op.kind {
	case "install":
		want, _ := c.entryFor(op.wants[0])
		if !reflect.DeepEqual(servers["keyport-fz"], toPlain(mergedPlainOK(servers["keyport-fz"], want))) {
			t.Fatalf("entry not as wanted: %v\n%s", servers["keyport-fz"], out)
		}
	case "remove":
		if _, ok := servers["keyport-fz"]; ok {
			t.Fatalf("entry not removed:\n%s", out)
		}
	}
	out2, err := again(out)
	if err != nil || !bytes.Equal(out2, out) {
		t.Fatalf("second run: err=%v\n--- first\n%s\n--- second\n%s", err, out, out2)
	}
}

// FuzzEdit runs the planner (parse, splice, verify) on arbitrary text; it
// is fast enough to fuzz for long.
func FuzzEdit(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, opIdx uint8, vscode bool) {
		c, _ := Lookup("cursor")
		if vscode {
			c, _ = Lookup("vscode")
		}
		op := fuzzOps[int(opIdx)%len(fuzzOps)]()
		run := func(in []byte) ([]byte, error) {
			d, err := parseDoc("mcp.json", in)
			if err != nil {
				return nil, err
			}
			p, err := planOp(d, c, op, FormatAuto)
			if err == nil {
				err = p.verify()
			}
			return p.out, err
		}
		out, err := run(data)
		checkEdit(t, data, c, op, out, err, run)
	})
}

// FuzzEditFile runs the whole Editor on a real file: on error the file must
// be untouched. Slower (fsync per run); its seeds run with every go test.
func FuzzEditFile(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, opIdx uint8, vscode bool) {
		dir := t.TempDir()
		p := filepath.Join(dir, "mcp.json")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, _ := Lookup("cursor")
		if vscode {
			c, _ = Lookup("vscode")
		}
		tg := Target{Client: c, Path: p}
		e, err := NewEditor(Options{StateDir: filepath.Join(dir, "state")})
		if err != nil {
			t.Fatal(err)
		}
		op := fuzzOps[int(opIdx)%len(fuzzOps)]()
		ch, err := e.Apply(tg, op)
		after, rerr := os.ReadFile(p)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil && !bytes.Equal(after, data) {
			t.Fatalf("file written despite error %v", err)
		}
		if err == nil && !bytes.Equal(ch.After, after) {
			t.Fatal("Change.After is not the file")
		}
		checkEdit(t, data, c, op, after, err, func([]byte) ([]byte, error) {
			ch, err := e.Apply(tg, op)
			if err == nil && ch.Wrote {
				err = errors.New("wrote again")
			}
			b, _ := os.ReadFile(p)
			return b, err
		})
	})
}

// mergedPlainOK returns want with the extra keys of have (which Keyport
// keeps) added, for comparison.
func mergedPlainOK(have any, want object) object {
	m, _ := have.(map[string]any)
	out := append(object{}, want...)
	for k, v := range m {
		if _, ok := want.get(k); !ok && !managedKeys[k] {
			b := compactJSON(v)
			out = append(out, field{key: k, val: rawJSON(b)})
		}
	}
	return out
}
