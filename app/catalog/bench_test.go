package catalog

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func benchFile(n int) []byte {
	var b strings.Builder
	b.WriteString("servers:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: server-%d   # comment\n    description: Server number %d\n    url: https://mcp%d.example.com/mcp\n"+
			"    labels: {team: t%d, env: prod}\n    auth:\n      type: headers\n      secret_headers: [X-API-Key]\n"+
			"    tools:\n      allow: [\"get_*\", \"^list_[a-z]+$\"]\n      deny: [delete_repo]\n", i, i, i, i%5)
	}
	return []byte(b.String())
}

// BenchmarkParse50 parses and validates a 50-server file; compare with
// BenchmarkYAMLOnly50, plain YAML decoding of the same bytes (the baseline).
func BenchmarkParse50(b *testing.B) {
	data := benchFile(50)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("servers.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkYAMLOnly50(b *testing.B) {
	data := benchFile(50)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWatchLatency measures the time from a save of servers.yaml to
// the Update reaching the receiver (the issue asks for under a second); the
// ms/update metric includes the Debounce of 100 ms.
func BenchmarkWatchLatency(b *testing.B) {
	dir := b.TempDir()
	f := NewFile(dir + "/servers.yaml")
	if err := os.WriteFile(f.Path(), benchFile(50), 0o600); err != nil {
		b.Fatal(err)
	}
	w, err := f.Watch(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	var total time.Duration
	i := 0
	for b.Loop() {
		i++
		data := append(benchFile(50), fmt.Sprintf("  - name: extra\n    url: https://extra%d.example.com/mcp\n", i)...)
		start := time.Now()
		if err := os.WriteFile(f.Path(), data, 0o600); err != nil {
			b.Fatal(err)
		}
		u := <-w.Updates()
		total += time.Since(start)
		if u.Err != nil {
			b.Fatal(u.Err)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(i), "ms/update")
}
