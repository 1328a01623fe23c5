package main

// The OpenTelemetry export's cost and bounds (go run ./bench/proxy
// -telemetry): in one run, tools/call throughput through Keyport's proxy
// with the export on (exporter in the proxy's process, as in the tray
// app, sending to a real collector built from internal/otelcol-test) vs
// off, alternating rounds; then the exporter's memory while the collector
// is down for 100,000 events, and the time to catch up once it is back.

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/catalog"
	"keyport/app/telemetry"
	"keyport/app/telemetry/telemetrytest"
	"keyport/proxymgr"
)

// benchTB lets telemetrytest run the collector outside a test.
type benchTB struct{ dirs []string }

func (*benchTB) Helper()                           {}
func (*benchTB) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }
func (*benchTB) Logf(format string, args ...any)   { log.Printf(format, args...) }
func (b *benchTB) TempDir() string {
	d, err := os.MkdirTemp("", "bench-otel-")
	if err != nil {
		log.Fatal(err)
	}
	b.dirs = append(b.dirs, d)
	return d
}
func (*benchTB) Cleanup(func()) {}

func benchTelemetry(upURL string, rounds int, d time.Duration, conc, events int) {
	tb := &benchTB{}
	defer func() {
		for _, d := range tb.dirs {
			os.RemoveAll(d)
		}
	}()
	col := telemetrytest.Start(tb)
	defer col.Kill()
	quiet := slog.New(slog.NewTextHandler(discard{}, nil))
	slog.SetDefault(quiet)

	// run measures tools/call per second through a fresh proxy, with or
	// without an exporter reading its audit log.
	run := func(export bool) float64 {
		dir := tb.TempDir()
		p, err := proxymgr.New(proxymgr.Config{Name: "bench", Upstream: upURL, Logger: quiet,
			Policy: proxymgr.ToolPolicy{Deny: []string{"delete_*"}},
			Audit:  proxymgr.AuditConfig{File: filepath.Join(dir, "audit", "bench.jsonl")}})
		if err != nil {
			log.Fatal(err)
		}
		ctx := context.Background()
		if err := p.Start(ctx); err != nil {
			log.Fatal(err)
		}
		defer p.Shutdown(ctx)
		var e *telemetry.Exporter
		if export {
			e, _, err = telemetry.New(telemetry.Config{Settings: &catalog.Telemetry{Endpoint: col.HTTPEndpoint()},
				AuditDir: filepath.Join(dir, "audit"), StateDir: filepath.Join(dir, "telemetry"), Logger: quiet,
				Env: func(string) string { return "" }})
			if err != nil {
				log.Fatal(err)
			}
			e.Start(ctx)
			defer e.Close(ctx)
		}
		return callRate(p.URL(), conc, d)
	}
	var on, off []float64
	for r := range rounds {
		if r%2 == 0 {
			off = append(off, run(false))
			on = append(on, run(true))
		} else {
			on = append(on, run(true))
			off = append(off, run(false))
		}
	}
	mOn, mOff := median(on), median(off)
	fmt.Printf("\ntelemetry export, tools/call at %d sessions, %d rounds of %s (medians):\n", conc, rounds, d)
	fmt.Printf("  export off  %8.0f calls/s\n  export on   %8.0f calls/s   %.1f %% of off (target >= 95 %%)\n", mOff, mOn, 100*mOn/mOff)

	// Memory while the collector is down.
	col.Kill()
	dir := tb.TempDir()
	p, err := proxymgr.New(proxymgr.Config{Name: "bench", Upstream: upURL, Logger: quiet,
		Audit: proxymgr.AuditConfig{File: filepath.Join(dir, "audit", "bench.jsonl"), MaxBytes: 64 << 20, Buffer: 8192}})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown(ctx)
	e, _, err := telemetry.New(telemetry.Config{Settings: &catalog.Telemetry{Endpoint: col.HTTPEndpoint(), Signals: []string{catalog.SignalLogs, catalog.SignalTraces}},
		AuditDir: filepath.Join(dir, "audit"), StateDir: filepath.Join(dir, "telemetry"), Logger: quiet,
		Env: func(string) string { return "" }, MaxBackoff: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	e.Start(ctx)
	defer e.Close(ctx)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse + ms.StackInuse
	}
	base := heap()
	fmt.Printf("\ncollector down for %d events through the proxy (exporter retrying):\n", events)
	var peak uint64
	for done := 0; done < events; {
		step := min(events/5, events-done)
		callCount(p.URL(), conc, step)
		done += step
		h := heap()
		peak = max(peak, h)
		st := e.Status().Signals[0]
		fmt.Printf("  %7d events: heap+stacks %6.1f MiB (start %.1f), backlog %6.1f MiB, connected %v\n",
			done, float64(h)/(1<<20), float64(base)/(1<<20), float64(st.BacklogBytes)/(1<<20), st.Connected)
	}
	t0 := time.Now()
	col.Restart()
	for {
		st := e.Status()
		if len(st.Signals) == 2 && st.Signals[0].BacklogBytes == 0 && st.Signals[1].BacklogBytes == 0 && st.Signals[0].Connected {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("  collector back: caught up in %s; peak heap+stacks %.1f MiB\n", time.Since(t0).Round(10*time.Millisecond), float64(peak)/(1<<20))
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// callRate runs conc sessions calling echo for d and returns calls/s.
func callRate(url string, conc int, d time.Duration) float64 {
	var n atomic.Int64
	deadline := time.Now().Add(d)
	sessions(url, conc, func(cs *mcp.ClientSession) {
		for time.Now().Before(deadline) {
			if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err != nil {
				log.Fatal(err)
			}
			n.Add(1)
		}
	})
	return float64(n.Load()) / d.Seconds()
}

// callCount makes total calls over conc sessions.
func callCount(url string, conc, total int) {
	var left atomic.Int64
	left.Store(int64(total))
	sessions(url, conc, func(cs *mcp.ClientSession) {
		for left.Add(-1) >= 0 {
			if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err != nil {
				log.Fatal(err)
			}
		}
	})
}

func sessions(url string, conc int, f func(*mcp.ClientSession)) {
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url}, nil)
			if err != nil {
				log.Fatal(err)
			}
			defer cs.Close()
			f(cs)
		}()
	}
	wg.Wait()
}
