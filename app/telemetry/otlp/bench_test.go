package otlp

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"keyport/app/catalog"
	"keyport/app/telemetry"
	"keyport/app/telemetry/telemetrytest"
	"keyport/proxymgr/audit"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExport: the exporter's own CPU per audit event, all three
// signals, to a real collector (niced), from a backlog of b.N events.
func BenchmarkExport(b *testing.B) {
	col := telemetrytest.StartNiced(b)
	cfg := testConfig(b, col.HTTPEndpoint(), catalog.ProtocolHTTP)
	cfg.Delay, cfg.MetricInterval = time.Second, 15*time.Second
	w, err := audit.Open(audit.Config{File: filepath.Join(cfg.AuditDir, "bench.jsonl"), Buffer: 1 << 16, MaxBytes: 1 << 40}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		w.Log(audit.Event{Type: audit.TypeRequest, Server: "bench", Session: "0f3c2a9e4b1d4c7e8a6f5b3c2d1e0f9a", Method: "tools/call",
			ID: json.RawMessage(fmt.Sprint(i)), Tool: "echo", ParamsSize: 44, DurationMS: 0.41, Outcome: audit.OutcomeOK})
	}
	w.Close()
	b.ResetTimer()
	c0, t0 := cpuTime(), time.Now()
	e, _, err := telemetry.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	e.Start(context.Background())
	for {
		st := e.Status()
		done := len(st.Signals) == 3
		for _, s := range st.Signals {
			done = done && s.BacklogBytes == 0 && s.Exported >= uint64(b.N)
		}
		if done {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	cpu, wall := cpuTime()-c0, time.Since(t0)
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
	b.ReportMetric(float64(wall.Microseconds())/float64(b.N), "wall-µs/event")
	e.Close(context.Background())
}
