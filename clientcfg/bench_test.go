package clientcfg

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// bigConfig returns a pretty-printed config of about 1 MiB with n entries,
// shaped like a busy ~/.claude.json (other top-level keys around the
// servers).
func bigConfig(n, size int) []byte {
	per := size / n
	var b strings.Builder
	b.WriteString("{\n  \"numStartups\": 1234,\n  \"projects\": {\"/home/me/src\": {\"allowedTools\": []}},\n  \"mcpServers\": {\n")
	for i := 0; i < n; i++ {
		pad := strings.Repeat(string(rune('a'+i%26)), max(per-170, 8))
		fmt.Fprintf(&b, "    \"server-%03d\": {\n      \"command\": \"npx\",\n      \"args\": [\"-y\", \"@example/server-%03d\"],\n      \"env\": {\n        \"TOKEN\": \"%s\"\n      }\n    }", i, i, pad)
		if i < n-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("  },\n  \"userID\": \"0123456789abcdef\"\n}\n")
	return []byte(b.String())
}

func TestBigConfigShape(t *testing.T) {
	t.Parallel()
	b := bigConfig(500, 1<<20)
	if len(b) < 1<<20-20<<10 || len(b) > 1<<20+20<<10 {
		t.Fatalf("size %d, want about 1 MiB", len(b))
	}
	d, err := parseDoc("big.json", b)
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := d.section("mcpServers")
	if n := len(sec.obj.Members); n != 500 {
		t.Fatalf("%d entries", n)
	}
}

// BenchmarkInstall1MiB is the whole Install on disk into a 1 MiB config with
// 500 entries: lock, read, parse, splice, verify, backup, temp file, fsync,
// rename, directory fsync, journal. Each iteration changes the port, so
// every iteration writes. Target: ≤ 20 ms/op.
func BenchmarkInstall1MiB(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, ".claude.json")
	if err := os.WriteFile(p, bigConfig(500, 1<<20), 0o600); err != nil {
		b.Fatal(err)
	}
	e, err := NewEditor(Options{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		b.Fatal(err)
	}
	cc, _ := Lookup("claude-code")
	tg := Target{Client: cc, Path: p}
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch, err := e.Install(tg, remoteWant("bench", fmt.Sprint(4000+i%2)))
		if err != nil || !ch.Wrote {
			b.Fatalf("install: wrote=%v err=%v", ch.Wrote, err)
		}
	}
}

// BenchmarkPlanInstall1MiB is the in-memory part of Install: parse, plan,
// splice, verify.
func BenchmarkPlanInstall1MiB(b *testing.B) {
	raw := bigConfig(500, 1<<20)
	cc, _ := Lookup("claude-code")
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := parseDoc("big.json", raw)
		if err != nil {
			b.Fatal(err)
		}
		p, err := planOp(d, cc, InstallOp(remoteWant("bench", "4000")), FormatAuto)
		if err == nil {
			err = p.verify()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineNaiveRewrite1MiB is the baseline: what a careless editor
// does (decode into a map, re-encode, atomic write with fsync), which loses
// comments, key order and formatting. Install's cost is reported as a
// ratio to this.
func BenchmarkBaselineNaiveRewrite1MiB(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, ".claude.json")
	if err := os.WriteFile(p, bigConfig(500, 1<<20), 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		raw, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			b.Fatal(err)
		}
		m["mcpServers"].(map[string]any)["keyport-bench"] = map[string]any{"type": "http", "url": fmt.Sprintf("http://127.0.0.1:%d/mcp", 4000+i%2)}
		out, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			b.Fatal(err)
		}
		if err := writeAtomic(p, out, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWatcherLatency measures, per outside save (a rename over the
// file, as editors do), the time until the watcher delivers Changed,
// including the default 50 ms debounce. Reported: p50/p95/p99/max in ms.
// Target: every save reported within 150 ms.
func BenchmarkWatcherLatency(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, ".cursor", "mcp.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(okCursor), 0o600); err != nil {
		b.Fatal(err)
	}
	e, err := NewEditor(Options{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewWatcher(e, WatchOptions{Wants: func(Target) []Want { return []Want{remoteWant("gh", "4100")} }}, cursorTarget(p))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := w.Watch(ctx)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		content := staleCursor
		if i%2 == 1 {
			content = okCursor
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := os.Rename(tmp, p); err != nil {
			b.Fatal(err)
		}
		select {
		case <-events:
			lat = append(lat, time.Since(start))
		case <-time.After(5 * time.Second):
			b.Fatal("no event")
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkBaselineFsnotifyLatency is the floor: raw fsnotify delivery of
// the same rename, without debounce, reading or parsing.
func BenchmarkBaselineFsnotifyLatency(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "mcp.json")
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		b.Fatal(err)
	}
	defer fsw.Close()
	if err := fsw.Add(dir); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(okCursor), 0o600); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := os.Rename(tmp, p); err != nil {
			b.Fatal(err)
		}
		for {
			ev := <-fsw.Events
			if ev.Name == p {
				lat = append(lat, time.Since(start))
				break
			}
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) float64 {
		return float64(lat[min(int(f*float64(len(lat))), len(lat)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.95), "p95-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
}
