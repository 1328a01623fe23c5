package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: line %q is not JSON: %v", path, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestWriterWritesJSONLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "audit.jsonl")
	w, err := Open(Config{File: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Log(Event{Type: TypeRequest, Server: "gh", Method: "tools/call", ID: json.RawMessage(`7`), Tool: "search", Outcome: OutcomeOK, DurationMS: 1.5})
	w.Log(Event{Type: TypeDenial, Server: "gh", Method: "tools/call", ID: json.RawMessage(`"x"`), Tool: "rm", Outcome: OutcomeDenied})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	if lines[0]["event"] != "request" || lines[0]["tool"] != "search" || lines[0]["id"] != 7.0 || lines[0]["time"] == nil {
		t.Errorf("line 1 = %v", lines[0])
	}
	if lines[1]["outcome"] != "denied" || lines[1]["id"] != "x" {
		t.Errorf("line 2 = %v", lines[1])
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", st.Mode().Perm())
	}
	// Logging after Close drops, never panics.
	w.Log(Event{Type: TypeRequest})
	if w.Drops() != 1 {
		t.Errorf("Drops() = %d after a log past Close, want 1", w.Drops())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWriterRotates(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := Open(Config{File: path, MaxBytes: 4096, MaxBackups: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 200)
	for i := range 100 {
		w.Log(Event{Type: TypeRequest, Server: "s", Method: "m", Error: fmt.Sprintf("%03d %s", i, pad)})
		if i%10 == 0 { // let the writer keep up: this test is about rotation, not drops
			for w.Written()+w.Drops() < uint64(i+1) {
				runtimeGosched()
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("missing %s: %v", p, err)
		}
		if st.Size() > 4096 {
			t.Errorf("%s is %d bytes, above the 4096 limit", p, st.Size())
		}
		readLines(t, p) // every line of every file is whole JSON
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 exists; only 2 backups must be kept", path)
	}
	last := readLines(t, path)
	if !strings.HasPrefix(last[len(last)-1]["error"].(string), "099 ") {
		t.Errorf("newest line is not the last event: %v", last[len(last)-1])
	}
}

func TestWriterDropsWhenFull(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := Open(Config{File: path, Buffer: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				w.Log(Event{Type: TypeRequest, Server: "s", Error: strings.Repeat("y", 2000)})
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if w.Drops() == 0 {
		t.Fatalf("no drops with a 1-event buffer and 4000 concurrent events")
	}
	if uint64(len(lines))+w.Drops() != 4000 || w.Written() != uint64(len(lines)) {
		t.Fatalf("lines %d + drops %d != 4000 (written %d)", len(lines), w.Drops(), w.Written())
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	c := Config{}
	if err := c.Check(); err != nil || c.Params != ParamsNone || c.MaxBytes != 10<<20 || c.MaxBackups != 5 || c.Buffer != 1024 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, bad := range []Config{{Params: "some"}, {MaxBytes: 10}, {MaxBackups: -1}, {Buffer: -3}} {
		if err := bad.Check(); err == nil {
			t.Errorf("Check(%+v) accepted a bad config", bad)
		}
	}
	if _, err := Open(Config{}, nil); err == nil {
		t.Error("Open without a file succeeded")
	}
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{File: filepath.Join(blocker, "audit.jsonl")}, nil); err == nil || !strings.Contains(err.Error(), blocker) {
		t.Errorf("Open under a file: %v; want an error naming the path", err)
	}
}

// TestTwoWritersShareAFile: the app's proxy and a bridge's own proxy (two
// processes; here two writers, each with its own file descriptors and lock
// file handle) append to the same audit log while it rotates often. Every
// event lands exactly once, every line is whole, no segment holds much more
// than MaxBytes, and rotations are not doubled.
func TestTwoWritersShareAFile(t *testing.T) {
	t.Parallel()
	const (
		maxBytes = 4096
		perW     = 500
	)
	path := filepath.Join(t.TempDir(), "acme.jsonl")
	cfg := Config{File: path, MaxBytes: maxBytes, MaxBackups: 500}
	var wg sync.WaitGroup
	for wi := range 2 {
		w, err := Open(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := range perW {
				w.Log(Event{Type: TypeRequest, Server: "acme", Method: "tools/call", Tool: fmt.Sprintf("w%d-%03d", wi, i)})
				if i%10 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			if err := w.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	files, _ := filepath.Glob(path + "*")
	seen := map[string]int{}
	var total int64
	for _, f := range files {
		if strings.HasSuffix(f, ".lock") {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
		if st.Size() > 2*maxBytes {
			t.Errorf("%s holds %d bytes (MaxBytes %d)", filepath.Base(f), st.Size(), maxBytes)
		}
		for _, e := range readLines(t, f) { // fails on a torn line
			seen[e["tool"].(string)]++
		}
	}
	for wi := range 2 {
		for i := range perW {
			if id := fmt.Sprintf("w%d-%03d", wi, i); seen[id] != 1 {
				t.Errorf("event %s is in the log %d times", id, seen[id])
			}
		}
	}
	if segments, want := len(files)-1, int(total/maxBytes)+3; segments > want {
		t.Errorf("%d segments for %d bytes of MaxBytes %d: rotations were doubled", segments, total, maxBytes)
	}
}

// Every event gets an id of its own, unique across writers sharing a file
// (the app's proxy and a bridge's), and a caller's id is kept: exporters
// send it so a backend can drop a duplicate delivery.
func TestEventIDsAreUniqueAcrossWriters(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var ws []*Writer
	for range 2 {
		w, err := Open(Config{File: path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	for i := range 500 {
		ws[i%2].Log(Event{Type: TypeRequest, Server: "gh", Method: "tools/call", Outcome: OutcomeOK})
	}
	ws[0].Log(Event{Type: TypeRequest, Server: "gh", EventID: "given-1", Outcome: OutcomeOK})
	for _, w := range ws {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, l := range readLines(t, path) {
		id, _ := l["event_id"].(string)
		if id == "" || seen[id] {
			t.Fatalf("event id %q missing or repeated in %v", id, l)
		}
		seen[id] = true
	}
	if len(seen) != 501 || !seen["given-1"] {
		t.Fatalf("got %d distinct ids (given-1 kept: %v), want 501", len(seen), seen["given-1"])
	}
}
