package main

// The OpenTelemetry export's cost and bounds (go run ./bench/proxy
// -telemetry): in one run, tools/call throughput through Keyport's proxy
// with the export on (exporter in the proxy's process, as in the tray
// app, sending to a real collector built from internal/otelcol-test) vs
// off, alternating rounds; then the exporter's memory while the collector
// is down for 100,000 events, and the time to catch up once it is back.
//
// The collector runs at nice 19: on this machine it shares the 2 cores
// with the proxy, its client and its upstream, which a real deployment
// (a collector elsewhere) does not do. After each export-on round the
// bench waits until every signal has exported every event of the round
// and reports that lag, so an export that merely fell behind during the
// measured window would show.

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/catalog"
	"keyport/app/telemetry"
	_ "keyport/app/telemetry/otlp" // the OTLP backend, as the app's binary links it
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

func benchTelemetry(upURL string, rounds int, d time.Duration, conc, events int, niceCollector bool) {
	tb := &benchTB{}
	defer func() {
		for _, d := range tb.dirs {
			os.RemoveAll(d)
		}
	}()
	col, where := telemetrytest.StartNiced(tb), "collector at nice 19"
	if !niceCollector {
		col.Kill()
		col, where = telemetrytest.Start(tb), "collector at normal priority"
	}
	if f := os.Getenv("BENCH_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	defer col.Kill()
	quiet := slog.New(slog.NewTextHandler(discard{}, nil))
	slog.SetDefault(quiet)

	// run measures tools/call per second through a fresh proxy, with or
	// without an exporter reading its audit log; with one, lag is how long
	// after the measured window it took to export every event (all three
	// signals).
	run := func(export bool) (rate float64, lag time.Duration) {
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
		ecfg := telemetry.Config{Settings: &catalog.Telemetry{Endpoint: col.HTTPEndpoint()},
			AuditDir: filepath.Join(dir, "audit"), StateDir: filepath.Join(dir, "telemetry"), Logger: quiet,
			Env: func(string) string { return "" }}
		if export {
			e, _, err = telemetry.New(ecfg)
			if err != nil {
				log.Fatal(err)
			}
			e.Start(ctx)
			defer e.Close(ctx)
		}
		rate = callRate(p.URL(), conc, d)
		if e != nil {
			t0 := time.Now()
			p.Shutdown(ctx) // flushes the audit log
			e.Wake()
			for !caughtUp(ecfg) {
				time.Sleep(10 * time.Millisecond)
			}
			lag = time.Since(t0)
		}
		return rate, lag
	}
	fmt.Printf("telemetry export: load average at the start %s\n", loadavg())
	var on, off []float64
	var lags []time.Duration
	for r := range rounds {
		var a, b float64
		var lag time.Duration
		if r%2 == 0 {
			a, _ = run(false)
			b, lag = run(true)
		} else {
			b, lag = run(true)
			a, _ = run(false)
		}
		off, on, lags = append(off, a), append(on, b), append(lags, lag)
		fmt.Printf("  round %d: off %6.0f  on %6.0f calls/s (%.1f %%), export caught up %s after the round\n", r+1, a, b, 100*b/a, lag.Round(time.Millisecond))
	}
	mOn, mOff := median(on), median(off)
	ratios := make([]float64, len(on))
	for i := range on {
		ratios[i] = on[i] / off[i]
	}
	slices.Sort(lags)
	fmt.Printf("\ntelemetry export, tools/call at %d sessions, %d rounds of %s (medians; %s):\n", conc, rounds, d, where)
	fmt.Printf("  export off  %8.0f calls/s\n  export on   %8.0f calls/s   %.1f %% of off (target >= 95 %%); median of the per-round ratios %.1f %%\n",
		mOff, mOn, 100*mOn/mOff, 100*median(ratios))
	fmt.Printf("  export lag after a round: median %s, max %s\n", lags[len(lags)/2].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond))
	fmt.Printf("  load average at the end %s\n", loadavg())
	if events <= 0 {
		return
	}

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

// caughtUp: every signal exported everything in the audit log (the
// backlog from the files and the cursors on disk, as another process
// sees it).
func caughtUp(cfg telemetry.Config) bool {
	st, err := telemetry.ReadStatus(cfg)
	if err != nil || len(st.Signals) == 0 {
		return false
	}
	for _, s := range st.Signals {
		if s.BacklogBytes != 0 {
			return false
		}
	}
	return true
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
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
