package clientcfg

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func newTestEditor(t testing.TB) *Editor {
	t.Helper()
	e, err := NewEditor(Options{StateDir: filepath.Join(t.TempDir(), "state")})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func writeFile(t testing.TB, p string, b []byte, perm fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, perm); err != nil {
		t.Fatal(err)
	}
}

func read(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cursorTarget(p string) Target {
	c, _ := Lookup("cursor")
	return Target{Client: c, Path: p, Scope: ScopePath}
}

// comments returns every comment in JSONC text, in order.
func comments(b []byte) []string {
	var out []string
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case bytes.HasPrefix(b[i:], []byte("//")):
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				j = len(b) - i
			}
			out = append(out, string(b[i:i+j]))
			i += j
		case bytes.HasPrefix(b[i:], []byte("/*")):
			j := bytes.Index(b[i+2:], []byte("*/"))
			out = append(out, string(b[i:i+2+j+2]))
			i += 2 + j + 1
		}
	}
	return out
}

func TestInstallPreservesEverything(t *testing.T) {
	t.Parallel()
	inputs := []string{"pretty.json", "jsonc.jsonc", "crlf-bom-tabs.json", "compact.json", "empty-servers.json", "no-servers.json", "claude-code.json", "stale.json", "windsurf.json"}
	for _, in := range inputs {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			before := readInput(t, in)
			p := filepath.Join(t.TempDir(), in)
			writeFile(t, p, before, 0o640)
			e := newTestEditor(t)
			ch, err := e.Install(cursorTarget(p), remoteWant("github", "4100"))
			if err != nil {
				t.Fatal(err)
			}
			after := read(t, p)
			if !ch.Wrote || !bytes.Equal(ch.After, after) || !bytes.Equal(ch.Before, before) {
				t.Fatalf("change does not describe the write: wrote=%v", ch.Wrote)
			}
			if got := strings.Join(comments(after), "\n"); got != strings.Join(comments(before), "\n") {
				t.Errorf("comments changed:\n%s\nwant\n%s", got, strings.Join(comments(before), "\n"))
			}
			if bytes.HasPrefix(before, utf8BOM) != bytes.HasPrefix(after, utf8BOM) {
				t.Error("BOM not kept")
			}
			if bytes.Contains(before, []byte("\r\n")) && bytes.Count(after, []byte("\n")) != bytes.Count(after, []byte("\r\n")) {
				t.Error("CRLF file got a bare LF")
			}
			if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
				t.Errorf("mode = %v, want 0640", fi.Mode().Perm())
			}
			// Every byte outside the servers object is unchanged, and each
			// non-Keyport entry keeps its exact text and order.
			bd, _ := parseDoc(p, before)
			ad, err := parseDoc(p, after)
			if err != nil {
				t.Fatal(err)
			}
			bs, _ := bd.section("mcpServers")
			as, _ := ad.section("mcpServers")
			if bs.val != nil {
				if !bytes.Equal(before[:bs.val.StartOffset+len(bd.raw())-len(bd.src)], after[:as.val.StartOffset+len(ad.raw())-len(ad.src)]) {
					t.Error("bytes before the servers object changed")
				}
				if !bytes.Equal(bd.src[bs.val.EndOffset:], ad.src[as.val.EndOffset:]) {
					t.Error("bytes after the servers object changed")
				}
			}
			notKP := func(n string) bool { return strings.HasPrefix(n, EntryPrefix) }
			if !sameMembers(members(bd, bs.obj, notKP), members(ad, as.obj, notKP)) {
				t.Error("a non-Keyport entry changed")
			}
			// The entry reads back as ok.
			st, err := e.Status(cursorTarget(p), []Want{remoteWant("github", "4100")})
			if err != nil || st[0].State != StateOK {
				t.Errorf("status after install = %+v, %v", st, err)
			}
		})
	}
}

func TestInstallRemoveRoundTrip(t *testing.T) {
	t.Parallel()
	// Where a servers object with entries exists, install + remove gives
	// back the original bytes exactly.
	for _, in := range []string{"pretty.json", "jsonc.jsonc", "crlf-bom-tabs.json", "compact.json", "claude-code.json", "windsurf.json"} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			before := readInput(t, in)
			p := filepath.Join(t.TempDir(), in)
			writeFile(t, p, before, 0o600)
			e := newTestEditor(t)
			for _, w := range []Want{remoteWant("a1", "4100"), stdioWant("a2"), remoteWant("a3", "4300")} {
				if _, err := e.Install(cursorTarget(p), w); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range []string{"a2", "a1", "a3"} {
				if _, err := e.Remove(cursorTarget(p), s); err != nil {
					t.Fatal(err)
				}
			}
			if got := read(t, p); !bytes.Equal(got, before) {
				t.Errorf("round trip changed the file:\n%s", unifiedDiff(in, before, got, nil))
			}
		})
	}
}

func TestIdempotent(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, p, readInput(t, "pretty.json"), 0o600)
	e := newTestEditor(t)
	tg := cursorTarget(p)
	w := remoteWant("github", "4100")
	ch1, err := e.Install(tg, w)
	if err != nil || !ch1.Wrote {
		t.Fatalf("first install: %+v %v", ch1.Wrote, err)
	}
	fi1, _ := os.Stat(p)
	ch2, err := e.Install(tg, w)
	if err != nil {
		t.Fatal(err)
	}
	if ch2.Wrote || ch2.Diff != "" || ch2.Changed() {
		t.Errorf("second install wrote: %+v", ch2)
	}
	fi2, _ := os.Stat(p)
	if !os.SameFile(fi1, fi2) {
		t.Error("the second install replaced the file")
	}
	if bs, _ := e.Backups(tg); len(bs) != 1 {
		t.Errorf("backups = %d, want 1", len(bs))
	}
	ch3, err := e.Sync(tg, []Want{w})
	if err != nil || ch3.Wrote {
		t.Errorf("sync of an ok file wrote: %v %v", ch3.Wrote, err)
	}
	ch4, err := e.Remove(tg, "not-there")
	if err != nil || ch4.Wrote {
		t.Errorf("removing a missing entry wrote: %v %v", ch4.Wrote, err)
	}
}

func TestNewFileAndDirectories(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := filepath.Join(root, "a", "b", ".cursor", "mcp.json")
	e := newTestEditor(t)
	ch, err := e.Install(cursorTarget(p), remoteWant("github", "4100"))
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Created || !ch.Wrote || ch.Before != nil || ch.Backup != "" {
		t.Errorf("change = %+v", ch)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	for _, d := range []string{filepath.Join(root, "a"), filepath.Join(root, "a", "b"), filepath.Join(root, "a", "b", ".cursor")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("new dir %s mode = %v (%v), want 0700", d, fi.Mode().Perm(), err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("left files behind next to the config: %v", entries)
	}
	// Remove on a missing file creates nothing.
	q := filepath.Join(root, "none", "mcp.json")
	if ch, err := e.Remove(cursorTarget(q), "github"); err != nil || ch.Wrote {
		t.Errorf("remove on a missing file: %+v %v", ch, err)
	}
	if _, err := os.Stat(filepath.Dir(q)); !errors.Is(err, fs.ErrNotExist) {
		t.Error("remove on a missing file created its directory")
	}
}

func TestEmptyFileIsFilled(t *testing.T) {
	t.Parallel()
	for _, content := range []string{"", "  \n", "\r\n"} {
		p := filepath.Join(t.TempDir(), "mcp.json")
		writeFile(t, p, []byte(content), 0o600)
		e := newTestEditor(t)
		if _, err := e.Install(cursorTarget(p), remoteWant("x", "4000")); err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		if st, _ := e.Status(cursorTarget(p), []Want{remoteWant("x", "4000")}); st[0].State != StateOK {
			t.Errorf("%q: %+v", content, st)
		}
	}
}

func TestSymlinkKept(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	real := filepath.Join(root, "dotfiles", "cursor", "mcp.json")
	writeFile(t, real, readInput(t, "pretty.json"), 0o644)
	link := filepath.Join(root, "home", ".cursor", "mcp.json")
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	// A relative link to a link: both must stay links.
	mid := filepath.Join(root, "home", ".cursor", "mid.json")
	if err := os.Symlink("../../dotfiles/cursor/mcp.json", mid); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("mid.json", link); err != nil {
		t.Fatal(err)
	}
	e := newTestEditor(t)
	ch, err := e.Install(cursorTarget(link), remoteWant("github", "4100"))
	if err != nil {
		t.Fatal(err)
	}
	if ch.File != real {
		t.Errorf("wrote %s, want the link target %s", ch.File, real)
	}
	for _, l := range []string{link, mid} {
		fi, err := os.Lstat(l)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symlink", l)
		}
	}
	if !bytes.Contains(read(t, real), []byte("keyport-github")) {
		t.Error("the link target was not updated")
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o644 {
		t.Errorf("target mode = %v", fi.Mode().Perm())
	}
	// A dangling link: the target file is created, the link stays.
	dang := filepath.Join(root, "home", ".gemini", "settings.json")
	if err := os.MkdirAll(filepath.Dir(dang), 0o700); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, "dotfiles", "gemini", "settings.json")
	if err := os.Symlink(dst, dang); err != nil {
		t.Fatal(err)
	}
	g, _ := Lookup("gemini")
	if _, err := e.Install(Target{Client: g, Path: dang}, remoteWant("github", "4100")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(dang); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Error("dangling link replaced by a file")
	}
	if !bytes.Contains(read(t, dst), []byte(`"httpUrl"`)) {
		t.Error("dangling link target not created")
	}
}

var lineColRE = regexp.MustCompile(`:(\d+):(\d+): `)

func TestMalformedNeverWritten(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, content string
		line, col     int
		msg           string
	}{
		{"truncated", "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\"\n", 4, 1, "not valid JSON"},
		{"garbage", "{\n  \"mcpServers\": {},\n  oops\n}\n", 3, 3, "not valid JSON"},
		{"single-quotes", "{'mcpServers': {}}", 1, 2, "not valid JSON"},
		{"root-array", "\n[1, 2]\n", 2, 1, "top level is not a JSON object"},
		{"root-string", `"hello"`, 1, 1, "top level is not a JSON object"},
		{"servers-array", "{\n  \"mcpServers\": [\n  ]\n}", 2, 17, `"mcpServers" must be an object`},
		{"servers-string", "{\"x\": 1, \"mcpServers\": \"none\"}", 1, 24, `"mcpServers" must be an object`},
		{"duplicate-root-key", "{\n\"mcpServers\": {},\n\"mcpServers\": {}\n}", 3, 1, "appears twice"},
		{"unterminated-comment", "{ /* never closed\n\"mcpServers\": {} }", 1, 3, "not valid JSON"},
		{"utf16", "\xff\xfe{\x00}\x00", 1, 1, "UTF-16"},
		{"trailing-garbage", "{}\n{}", 2, 1, "not valid JSON"},
		{"unicode-column", "{\"ä\": 1 x}", 1, 9, "not valid JSON"},
		{"only-comment", "// just a comment\n", 2, 1, "not valid JSON"},
		{"bad-escape-no-leak", "{\"env\": {\"TOKEN\": \"sk-very-secret\\q\"}}", 1, 19, "invalid string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			p := filepath.Join(dir, "mcp.json")
			writeFile(t, p, []byte(tc.content), 0o600)
			old := time.Now().Add(-time.Hour)
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
			e := newTestEditor(t)
			for _, op := range []Op{InstallOp(remoteWant("x", "4000")), RemoveOp("x"), SyncOp(nil), RemoveKeyOp("a")} {
				_, err := e.Apply(cursorTarget(p), op)
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("%s: err = %v, want a ConfigError", op, err)
				}
				if ce.Path != p || ce.Line != tc.line || ce.Column != tc.col || !strings.Contains(ce.Msg, tc.msg) {
					t.Errorf("%s: got %s:%d:%d %q; want line %d col %d %q", op, ce.Path, ce.Line, ce.Column, ce.Msg, tc.line, tc.col, tc.msg)
				}
				if strings.Contains(err.Error(), "sk-very-secret") {
					t.Errorf("error leaks file content: %v", err)
				}
				if !strings.Contains(err.Error(), p) || !lineColRE.MatchString(err.Error()) || !strings.Contains(err.Error(), "unchanged") {
					t.Errorf("error does not name file, line and column: %v", err)
				}
			}
			if _, err := e.Status(cursorTarget(p), nil); err == nil {
				t.Error("status accepted a malformed file")
			}
			if got := read(t, p); string(got) != tc.content {
				t.Error("the malformed file was written")
			}
			if fi, _ := os.Stat(p); !fi.ModTime().Equal(old) {
				t.Error("the malformed file was touched")
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("files left next to the config: %v", ents)
			}
			if bs, _ := e.Backups(cursorTarget(p)); len(bs) != 0 {
				t.Error("a backup was made for a refused edit")
			}
		})
	}
}

func TestForeignEntries(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "mcp.json")
	before := readInput(t, "stale.json")
	writeFile(t, p, before, 0o600)
	e := newTestEditor(t)
	tg := cursorTarget(p)
	_, err := e.Install(tg, remoteWant("mine", "4000"))
	var fe *ForeignError
	if !errors.As(err, &fe) || !errors.Is(err, ErrForeign) || fe.Key != "keyport-mine" || !strings.Contains(err.Error(), "not-keyport.example.com") {
		t.Fatalf("install over a foreign entry: %v", err)
	}
	if _, err := e.Remove(tg, "mine"); !errors.Is(err, ErrForeign) {
		t.Fatalf("remove of a foreign entry: %v", err)
	}
	if !bytes.Equal(read(t, p), before) {
		t.Fatal("file changed")
	}
	ch, err := e.Sync(tg, []Want{remoteWant("mine", "4000"), remoteWant("gh", "4100")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Skipped) != 1 || ch.Skipped[0].Key != "keyport-mine" || ch.Skipped[0].State != StateForeign {
		t.Errorf("skipped = %+v", ch.Skipped)
	}
	after := read(t, p)
	if !bytes.Contains(after, []byte(`"keyport-mine": {"url": "https://not-keyport.example.com/mcp"}`)) {
		t.Error("sync touched the foreign entry")
	}
	if bytes.Contains(after, []byte("keyport-old")) {
		t.Error("sync kept the orphan")
	}
	// The user can remove it by name.
	if _, err := e.RemoveKey(tg, "keyport-mine"); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(read(t, p), []byte("keyport-mine")) {
		t.Error("RemoveKey left the entry")
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, p, []byte(`{
  "mcpServers": {
    "keyport-ok": {"url": "http://127.0.0.1:4000/mcp", "headers": {"Authorization": "Bearer local-token-ok"}, "timeout": 5},
    "keyport-port": {"url": "http://127.0.0.1:3999/mcp", "headers": {"Authorization": "Bearer local-token-port"}},
    "keyport-tok": {"url": "http://localhost:4002/mcp", "headers": {"Authorization": "Bearer SECRET-OLD-TOKEN"}},
    "keyport-nohdr": {"url": "http://127.0.0.1:4003/mcp"},
    "keyport-shape": {"serverUrl": "http://127.0.0.1:4004/mcp", "headers": {"Authorization": "Bearer local-token-shape"}},
    "keyport-bin": {"command": "/old/place/keyport", "args": ["connect", "bin"]},
    "keyport-dup": {"url": "http://127.0.0.1:4006/mcp", "headers": {"Authorization": "Bearer local-token-dup"}},
    "keyport-dup": {"url": "http://127.0.0.1:4006/mcp", "headers": {"Authorization": "Bearer local-token-dup"}},
    "keyport-theirs": {"url": "https://mcp.example.com/mcp"},
    "keyport-gone": {"command": "C:\\Program Files\\Keyport\\keyport.exe", "args": ["connect", "gone"]},
    "keyport-str": "not an object",
    "other": {"url": "http://127.0.0.1:9/mcp"}
  }
}`), 0o600)
	e := newTestEditor(t)
	wants := []Want{
		remoteWant("ok", "4000"), remoteWant("port", "4001"), remoteWant("tok", "4002"),
		remoteWant("nohdr", "4003"), remoteWant("shape", "4004"), stdioWant("bin"),
		remoteWant("dup", "4006"), remoteWant("theirs", "4007"), remoteWant("missing", "4008"),
	}
	wants[2].URL = "http://localhost:4002/mcp"
	got, err := e.Status(cursorTarget(p), wants)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		key    string
		state  State
		detail string
	}{
		{"keyport-ok", StateOK, ""},
		{"keyport-port", StateStale, "url is http://127.0.0.1:3999/mcp, want http://127.0.0.1:4001/mcp"},
		{"keyport-tok", StateStale, "header Authorization is outdated"},
		{"keyport-nohdr", StateStale, "header Authorization is missing"},
		{"keyport-shape", StateStale, "url is missing; has serverUrl, which Cursor entries from Keyport do not use"},
		{"keyport-bin", StateStale, "command is /old/place/keyport, want /opt/keyport/bin/keyport; env KEYPORT_STATE is missing"},
		{"keyport-dup", StateStale, "the key appears 2 times"},
		{"keyport-theirs", StateForeign, "it points at mcp.example.com"},
		{"keyport-missing", StateMissing, `no "keyport-missing" entry`},
		{"keyport-gone", StateOrphan, "Keyport no longer lists this server"},
		{"keyport-str", StateForeign, "it is not an object"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d statuses: %+v", len(got), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Key != w.key || g.State != w.state || g.Detail != w.detail || g.Server != strings.TrimPrefix(w.key, EntryPrefix) {
			t.Errorf("status %d = %+v\n want %s %s %q", i, g, w.key, w.state, w.detail)
		}
		if strings.Contains(g.Detail, "token") || strings.Contains(g.Detail, "SECRET") {
			t.Errorf("detail leaks a header value: %q", g.Detail)
		}
	}
	// A missing file: everything is missing, no error.
	st, err := e.Status(cursorTarget(filepath.Join(t.TempDir(), "none.json")), wants[:2])
	if err != nil || st[0].State != StateMissing || st[1].State != StateMissing {
		t.Errorf("missing file status = %+v, %v", st, err)
	}
}

func TestSyncAndPreview(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "mcp.json")
	before := readInput(t, "stale.json")
	writeFile(t, p, before, 0o600)
	e := newTestEditor(t)
	tg := cursorTarget(p)
	wants := []Want{remoteWant("gh", "4100"), remoteWant("new", "4200")}
	pv, err := e.Preview(tg, SyncOp(wants))
	if err != nil {
		t.Fatal(err)
	}
	if pv.Wrote || !bytes.Equal(read(t, p), before) {
		t.Fatal("preview wrote")
	}
	for _, s := range []string{"+      \"url\": \"http://127.0.0.1:4100/mcp\",", "-    \"keyport-old\": {\"url\": \"http://localhost:2222/mcp\"},", "+    \"keyport-new\": {", "@@ "} {
		if !strings.Contains(pv.Diff, s) {
			t.Errorf("diff lacks %q:\n%s", s, pv.Diff)
		}
	}
	if strings.Contains(pv.Diff, "local-token") || strings.Contains(pv.Diff, "old-token-123") || !strings.Contains(pv.Diff, "[redacted]") {
		t.Errorf("diff shows header values:\n%s", pv.Diff)
	}
	ch, err := e.Sync(tg, wants)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Wrote || !bytes.Equal(ch.After, pv.After) || ch.Diff != pv.Diff {
		t.Error("sync did not do what the preview showed")
	}
	st, err := e.Status(tg, wants)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.State != StateOK && s.Key != "keyport-mine" {
			t.Errorf("after sync: %+v", s)
		}
	}
	if ch, _ := e.Sync(tg, wants); ch.Wrote {
		t.Error("second sync wrote")
	}
}

func TestUndo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "mcp.json")
	orig := readInput(t, "jsonc.jsonc")
	writeFile(t, p, orig, 0o600)
	e := newTestEditor(t)
	tg := cursorTarget(p)
	if _, err := e.Undo(tg); !errors.Is(err, ErrNothingToUndo) {
		t.Fatalf("undo with no history: %v", err)
	}
	if _, err := e.Install(tg, remoteWant("a", "4000")); err != nil {
		t.Fatal(err)
	}
	afterA := read(t, p)
	if _, err := e.Install(tg, remoteWant("b", "4001")); err != nil {
		t.Fatal(err)
	}
	if !e.CanUndo(tg) {
		t.Error("CanUndo = false after a change")
	}
	ch, err := e.Undo(tg)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Wrote || !bytes.Equal(read(t, p), afterA) {
		t.Fatal("first undo did not restore the version with only a")
	}
	if _, err := e.Undo(tg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, p), orig) {
		t.Fatal("second undo did not restore the original")
	}
	if _, err := e.Undo(tg); !errors.Is(err, ErrNothingToUndo) {
		t.Fatalf("third undo: %v", err)
	}
	// An edit after Keyport's change blocks the undo.
	if _, err := e.Install(tg, remoteWant("c", "4002")); err != nil {
		t.Fatal(err)
	}
	edited := append(read(t, p), []byte("\n// my own note\n")...)
	writeFile(t, p, edited, 0o600)
	if e.CanUndo(tg) {
		t.Error("CanUndo = true after an outside edit")
	}
	if _, err := e.Undo(tg); !errors.Is(err, ErrChangedSince) || !strings.Contains(err.Error(), "kept at") {
		t.Fatalf("undo over an outside edit: %v", err)
	}
	if !bytes.Equal(read(t, p), edited) {
		t.Fatal("undo overwrote an outside edit")
	}
	// Undo of a file Keyport created removes it.
	q := filepath.Join(dir, "new", "mcp.json")
	if _, err := e.Install(cursorTarget(q), remoteWant("a", "4000")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Undo(cursorTarget(q)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(q); !errors.Is(err, fs.ErrNotExist) {
		t.Error("undo of a created file left it")
	}
}

func TestBackupsKeepFive(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, p, []byte("{}"), 0o600)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e, err := NewEditor(Options{StateDir: filepath.Join(t.TempDir(), "state"), Now: func() time.Time { now = now.Add(time.Second); return now }})
	if err != nil {
		t.Fatal(err)
	}
	tg := cursorTarget(p)
	var versions [][]byte
	for i := 0; i < 8; i++ {
		versions = append(versions, read(t, p))
		if _, err := e.Install(tg, remoteWant("s", "40"+string(rune('0'+i))+"0")); err != nil {
			t.Fatal(err)
		}
	}
	bs, err := e.Backups(tg)
	if err != nil || len(bs) != 5 {
		t.Fatalf("backups = %d (%v), want 5", len(bs), err)
	}
	// Newest first, each the version before a change.
	for i, b := range bs {
		if got := read(t, b.Path); !bytes.Equal(got, versions[7-i]) {
			t.Errorf("backup %d holds the wrong version", i)
		}
		if fi, _ := os.Stat(b.Path); fi.Mode().Perm() != 0o600 {
			t.Errorf("backup mode %v", fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(filepath.Dir(bs[0].Path)); fi.Mode().Perm() != 0o700 {
		t.Errorf("backup dir mode %v", fi.Mode().Perm())
	}
	if !bs[0].Time.After(bs[4].Time) {
		t.Error("backup times are not newest first")
	}
}

func TestOutsideWriterBetweenReadAndWrite(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), ".claude.json")
	writeFile(t, p, readInput(t, "claude-code.json"), 0o600)
	e := newTestEditor(t)
	cc, _ := Lookup("claude-code")
	tg := Target{Client: cc, Path: p}
	calls := 0
	e.beforeCommit = func(file string) {
		calls++
		if calls > 1 {
			return
		}
		// Claude Code saves (atomically) while Keyport is mid-edit.
		b := bytes.Replace(read(t, file), []byte(`"numStartups": 42`), []byte(`"numStartups": 43`), 1)
		tmp := file + ".outside"
		writeFile(t, tmp, b, 0o600)
		if err := os.Rename(tmp, file); err != nil {
			t.Error(err)
		}
	}
	if _, err := e.Install(tg, remoteWant("github", "4100")); err != nil {
		t.Fatal(err)
	}
	got := read(t, p)
	if !bytes.Contains(got, []byte(`"numStartups": 43`)) {
		t.Error("the outside writer's change was lost")
	}
	if !bytes.Contains(got, []byte(`"keyport-github"`)) {
		t.Error("Keyport's change was lost")
	}
	if calls != 2 {
		t.Errorf("attempts = %d, want 2", calls)
	}
	if bs, _ := e.Backups(tg); len(bs) != 1 {
		t.Errorf("backups = %d, want 1 (the aborted attempt's backup must go)", len(bs))
	}
	// A file that never stops changing: give up, with the file intact.
	e.beforeCommit = func(file string) {
		writeFile(t, file, append(read(t, file), ' '), 0o600)
	}
	_, err := e.Install(tg, remoteWant("other", "4200"))
	if !errors.Is(err, ErrKeptChanging) {
		t.Fatalf("err = %v, want ErrKeptChanging", err)
	}
	if bytes.Contains(read(t, p), []byte("keyport-other")) {
		t.Error("wrote despite the conflicts")
	}
}

func TestConcurrentEditors(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, p, readInput(t, "pretty.json"), 0o600)
	state := filepath.Join(t.TempDir(), "state")
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			e, err := NewEditor(Options{StateDir: state})
			if err == nil {
				_, err = e.Install(cursorTarget(p), remoteWant("s"+string(rune('a'+i)), "4000"))
			}
			errs <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	e := newTestEditor(t)
	var wants []Want
	for i := 0; i < n; i++ {
		wants = append(wants, remoteWant("s"+string(rune('a'+i)), "4000"))
	}
	st, err := e.Status(cursorTarget(p), wants)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.State != StateOK {
			t.Errorf("%s: %s", s.Key, s.State)
		}
	}
}

func TestRenameRetry(t *testing.T) {
	t.Parallel()
	busy := errors.New("sharing violation")
	fails := 3
	var slept []time.Duration
	err := renameRetry("a", "b", func(string, string) error {
		if fails > 0 {
			fails--
			return busy
		}
		return nil
	}, func(err error) bool { return err == busy }, func(d time.Duration) { slept = append(slept, d) })
	if err != nil || len(slept) != 3 || slept[0] != 10*time.Millisecond || slept[2] != 40*time.Millisecond {
		t.Fatalf("err=%v slept=%v", err, slept)
	}
	err = renameRetry("a", "b", func(string, string) error { return busy }, func(error) bool { return true }, func(time.Duration) {})
	if !errors.Is(err, busy) || !strings.Contains(err.Error(), "keeps the file open") {
		t.Fatalf("err = %v", err)
	}
	other := errors.New("permission denied")
	calls := 0
	err = renameRetry("a", "b", func(string, string) error { calls++; return other }, func(err error) bool { return err == busy }, func(time.Duration) {})
	if err != other || calls != 1 {
		t.Fatalf("a non-retryable error was retried: %v after %d calls", err, calls)
	}
}

func TestWantValidation(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "mcp.json")
	e := newTestEditor(t)
	claude, _ := Lookup("claude")
	bad := []struct {
		tg   Target
		w    Want
		want string
	}{
		{cursorTarget(p), Want{Server: "", URL: "http://127.0.0.1:1/mcp"}, "server name is empty"},
		{cursorTarget(p), Want{Server: "a b", URL: "http://127.0.0.1:1/mcp"}, "use only letters"},
		{cursorTarget(p), Want{Server: "a"}, "neither a URL nor a command"},
		{cursorTarget(p), Want{Server: "a", URL: "ftp://x"}, "not an http(s) URL"},
		{cursorTarget(p), Want{Server: "a", Command: "keyport"}, "absolute path"},
		{cursorTarget(p), Want{Server: "a", URL: "http://127.0.0.1:1/mcp", Headers: map[string]string{"X": "a\nb"}}, "line break"},
		{Target{Client: claude, Path: p}, Want{Server: "a", URL: "http://127.0.0.1:1/mcp"}, "stdio bridge"},
	}
	for _, b := range bad {
		if _, err := e.Install(b.tg, b.w); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: err = %v, want %q", b.w, err, b.want)
		}
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a refused install created the file")
	}
	if _, err := e.Apply(cursorTarget(p), Op{}); err == nil {
		t.Error("empty op accepted")
	}
	if _, err := e.Sync(cursorTarget(p), []Want{remoteWant("a", "1"), remoteWant("a", "2")}); err == nil {
		t.Error("duplicate server accepted")
	}
	// Windows paths count as absolute.
	if _, err := e.Preview(Target{Client: claude, Path: p}, InstallOp(Want{Server: "a", Command: `C:\Program Files\Keyport\keyport.exe`, Args: []string{"connect", "a"}})); err != nil {
		t.Error(err)
	}
}

func TestEntries(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, p, readInput(t, "stale.json"), 0o600)
	e := newTestEditor(t)
	ents, err := e.Entries(cursorTarget(p))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range ents {
		got = append(got, en.Key+map[bool]string{true: "*", false: ""}[en.Keyport])
	}
	if strings.Join(got, ",") != "before,keyport-gh*,keyport-old*,keyport-mine,after" {
		t.Errorf("entries = %v", got)
	}
	if string(ents[0].Value) != `{"command":"x"}` {
		t.Errorf("value = %s", ents[0].Value)
	}
}

func TestRenderSample(t *testing.T) {
	t.Parallel()
	wants := []Want{bothWant("github", "4100"), bothWant("docs", "4200")}
	pretty, err := RenderSample(SampleClient(), wants, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "mcpServers": {
    "keyport-github": {
      "type": "http",
      "url": "http://127.0.0.1:4100/mcp",
      "headers": {
        "Authorization": "Bearer local-token-github"
      }
    },
    "keyport-docs": {
      "type": "http",
      "url": "http://127.0.0.1:4200/mcp",
      "headers": {
        "Authorization": "Bearer local-token-docs"
      }
    }
  }
}
`
	if string(pretty) != want {
		t.Errorf("pretty sample:\n%s", pretty)
	}
	claude, _ := Lookup("claude")
	compact, err := RenderSample(claude, wants[:1], FormatCompact)
	if err != nil {
		t.Fatal(err)
	}
	if string(compact) != `{"mcpServers":{"keyport-github":{"command":"/opt/keyport/bin/keyport","args":["connect","github"],"env":{"KEYPORT_STATE":"/home/me/.config/keyport"}}}}`+"\n" {
		t.Errorf("compact sample: %s", compact)
	}
	for _, s := range []string{"pretty", "compact", "auto", "", "AUTO"} {
		if _, err := ParseJSONFormat(s); err != nil {
			t.Errorf("ParseJSONFormat(%q): %v", s, err)
		}
	}
	if _, err := ParseJSONFormat("yaml"); err == nil {
		t.Error("yaml accepted")
	}
}
