// Package telemetrytest runs a real OpenTelemetry Collector for tests and
// benchmarks: the binary of internal/otelcol-test (the collector's own
// OTLP receiver and the contrib file exporter), built once and cached in
// bin/, run as a process, writing what it receives to files the test reads.
package telemetrytest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// TB is the part of testing.TB the helpers use (tests and benchmarks).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// root finds the repository (the directory holding internal/otelcol-test).
func root() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "internal", "otelcol-test", "go.mod")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("internal/otelcol-test not found above the working directory")
		}
		d = up
	}
}

var buildOnce sync.Mutex

// Binary builds the collector (once; bin/otelcol-test is reused while its
// sources are unchanged, and Go's build cache keeps a rebuild cheap) and
// returns its path.
func Binary() (string, error) {
	buildOnce.Lock()
	defer buildOnce.Unlock()
	r, err := root()
	if err != nil {
		return "", err
	}
	src := filepath.Join(r, "internal", "otelcol-test")
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	stamp := hex.EncodeToString(h.Sum(nil))
	bin := filepath.Join(r, "bin", "otelcol-test")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	lk := flock.New(bin + ".lock") // test packages build in parallel
	if err := lk.Lock(); err != nil {
		return "", err
	}
	defer lk.Unlock()
	if old, err := os.ReadFile(bin + ".stamp"); err == nil && string(old) == stamp {
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the test collector: %v\n%s", err, out)
	}
	return bin, os.WriteFile(bin+".stamp", []byte(stamp), 0o644)
}

// Collector is a running collector process.
type Collector struct {
	t        TB
	nice     bool
	bin, dir string
	GRPCPort int
	HTTPPort int
	run      int
	cmd      *exec.Cmd
	stderr   *bytes.Buffer
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start builds and starts a collector on free loopback ports; it is killed
// at the test's end.
func Start(t TB) *Collector {
	t.Helper()
	return start(t, false)
}

// StartNiced is Start with the collector at the lowest CPU priority (nice
// 19), for benchmarks: a real collector runs on another machine, not on
// the cores whose throughput is being measured.
func StartNiced(t TB) *Collector {
	t.Helper()
	return start(t, true)
}

func start(t TB, nice bool) *Collector {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("%v", err)
	}
	c := &Collector{t: t, nice: nice, bin: bin, dir: t.TempDir(), GRPCPort: freePort(), HTTPPort: freePort()}
	c.Restart()
	t.Cleanup(c.Kill)
	return c
}

// HTTPEndpoint and GRPCEndpoint are the OTLP base URLs.
func (c *Collector) HTTPEndpoint() string { return "http://127.0.0.1:" + strconv.Itoa(c.HTTPPort) }
func (c *Collector) GRPCEndpoint() string { return "http://127.0.0.1:" + strconv.Itoa(c.GRPCPort) }

// Restart starts the collector again (after Kill) on the same ports,
// writing to new files (the test reads them all).
func (c *Collector) Restart() {
	c.t.Helper()
	c.run++
	out := func(sig string) string { return filepath.Join(c.dir, fmt.Sprintf("%s-%d.json", sig, c.run)) }
	// rotation makes the file exporter write each batch before the
	// receiver answers (without it, it buffers for a second, and a killed
	// collector loses what it had acknowledged).
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:%d"}
      http: {endpoint: "127.0.0.1:%d"}
exporters:
  file/logs: {path: %q, rotation: {max_megabytes: 2000}}
  file/traces: {path: %q, rotation: {max_megabytes: 2000}}
  file/metrics: {path: %q, rotation: {max_megabytes: 2000}}
service:
  telemetry:
    metrics: {level: none}
    logs: {level: warn}
  pipelines:
    logs: {receivers: [otlp], exporters: [file/logs]}
    traces: {receivers: [otlp], exporters: [file/traces]}
    metrics: {receivers: [otlp], exporters: [file/metrics]}
`, c.GRPCPort, c.HTTPPort, out("logs"), out("traces"), out("metrics"))
	path := filepath.Join(c.dir, fmt.Sprintf("config-%d.yaml", c.run))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		c.t.Fatalf("%v", err)
	}
	c.stderr = &bytes.Buffer{}
	c.cmd = exec.Command(c.bin, "--config", "file:"+path)
	if c.nice {
		// nice(1) sets the priority and execs the collector: every thread
		// it starts inherits it, and the process id stays the collector's.
		c.cmd = exec.Command("nice", "-n", "19", c.bin, "--config", "file:"+path)
	}
	c.cmd.Stdout, c.cmd.Stderr = c.stderr, c.stderr
	if err := c.cmd.Start(); err != nil {
		c.t.Fatalf("start the collector: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.HTTPPort)); err == nil {
			cn.Close()
			if cn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.GRPCPort)); err == nil {
				cn.Close()
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("the collector did not listen within 30s:\n%s", c.stderr)
}

// Kill ends the collector at once (SIGKILL), as a crash would.
func (c *Collector) Kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	c.cmd = nil
}

// Lines returns every JSON line the collector wrote for signal (logs,
// traces or metrics), over all its runs.
func (c *Collector) Lines(signal string) [][]byte {
	var out [][]byte
	for r := 1; r <= c.run; r++ {
		f, err := os.Open(filepath.Join(c.dir, fmt.Sprintf("%s-%d.json", signal, r)))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 256<<20)
		for sc.Scan() {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
		f.Close()
	}
	return out
}

// LogRecord is one exported log record, flattened.
type LogRecord struct {
	Resource map[string]string
	Attrs    map[string]string
	Body     string
	TraceID  string
	SpanID   string
}

// Span is one exported span, flattened.
type Span struct {
	Resource        map[string]string
	Name            string
	Kind            int
	TraceID, SpanID string
	ParentSpanID    string
	Start, End      string
	Attrs           map[string]string
	StatusCode      int
	StatusMessage   string
}

type kv struct {
	Key   string `json:"key"`
	Value struct {
		S *string  `json:"stringValue"`
		I *string  `json:"intValue"`
		D *float64 `json:"doubleValue"`
		B *bool    `json:"boolValue"`
	} `json:"value"`
}

func flat(kvs []kv) map[string]string {
	m := map[string]string{}
	for _, a := range kvs {
		switch v := a.Value; {
		case v.S != nil:
			m[a.Key] = *v.S
		case v.I != nil:
			m[a.Key] = *v.I
		case v.D != nil:
			m[a.Key] = strconv.FormatFloat(*v.D, 'f', -1, 64)
		case v.B != nil:
			m[a.Key] = strconv.FormatBool(*v.B)
		}
	}
	return m
}

// Logs parses every exported log record.
func (c *Collector) Logs() []LogRecord {
	var out []LogRecord
	for _, l := range c.Lines("logs") {
		var doc struct {
			ResourceLogs []struct {
				Resource  struct{ Attributes []kv } `json:"resource"`
				ScopeLogs []struct {
					LogRecords []struct {
						Attributes []kv `json:"attributes"`
						Body       struct {
							S string `json:"stringValue"`
						} `json:"body"`
						TraceID string `json:"traceId"`
						SpanID  string `json:"spanId"`
					} `json:"logRecords"`
				} `json:"scopeLogs"`
			} `json:"resourceLogs"`
		}
		if json.Unmarshal(l, &doc) != nil {
			continue
		}
		for _, rl := range doc.ResourceLogs {
			res := flat(rl.Resource.Attributes)
			for _, sl := range rl.ScopeLogs {
				for _, r := range sl.LogRecords {
					out = append(out, LogRecord{Resource: res, Attrs: flat(r.Attributes), Body: r.Body.S, TraceID: r.TraceID, SpanID: r.SpanID})
				}
			}
		}
	}
	return out
}

// Spans parses every exported span.
func (c *Collector) Spans() []Span {
	var out []Span
	for _, l := range c.Lines("traces") {
		var doc struct {
			ResourceSpans []struct {
				Resource   struct{ Attributes []kv } `json:"resource"`
				ScopeSpans []struct {
					Spans []struct {
						TraceID      string `json:"traceId"`
						SpanID       string `json:"spanId"`
						ParentSpanID string `json:"parentSpanId"`
						Name         string `json:"name"`
						Kind         int    `json:"kind"`
						Start        string `json:"startTimeUnixNano"`
						End          string `json:"endTimeUnixNano"`
						Attributes   []kv   `json:"attributes"`
						Status       struct {
							Code    int    `json:"code"`
							Message string `json:"message"`
						} `json:"status"`
					} `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		}
		if json.Unmarshal(l, &doc) != nil {
			continue
		}
		for _, rs := range doc.ResourceSpans {
			res := flat(rs.Resource.Attributes)
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out = append(out, Span{Resource: res, Name: s.Name, Kind: s.Kind, TraceID: s.TraceID, SpanID: s.SpanID,
						ParentSpanID: s.ParentSpanID, Start: s.Start, End: s.End, Attrs: flat(s.Attributes),
						StatusCode: s.Status.Code, StatusMessage: s.Status.Message})
				}
			}
		}
	}
	return out
}

// MetricNames lists the metric names exported (with the last data point's
// value of sums, as text, for counters).
func (c *Collector) Metrics() map[string]float64 {
	out := map[string]float64{}
	for _, l := range c.Lines("metrics") {
		var doc struct {
			ResourceMetrics []struct {
				ScopeMetrics []struct {
					Metrics []struct {
						Name string `json:"name"`
						Sum  *struct {
							DataPoints []struct {
								AsInt *string `json:"asInt"`
							} `json:"dataPoints"`
						} `json:"sum"`
						Histogram *struct {
							DataPoints []struct {
								Count string `json:"count"`
							} `json:"dataPoints"`
						} `json:"histogram"`
						Gauge *struct {
							DataPoints []struct {
								AsInt *string `json:"asInt"`
							} `json:"dataPoints"`
						} `json:"gauge"`
					} `json:"metrics"`
				} `json:"scopeMetrics"`
			} `json:"resourceMetrics"`
		}
		if json.Unmarshal(l, &doc) != nil {
			continue
		}
		for _, rm := range doc.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					total := 0.0
					switch {
					case m.Sum != nil:
						for _, d := range m.Sum.DataPoints {
							if d.AsInt != nil {
								n, _ := strconv.ParseFloat(*d.AsInt, 64)
								total += n
							}
						}
					case m.Histogram != nil:
						for _, d := range m.Histogram.DataPoints {
							n, _ := strconv.ParseFloat(d.Count, 64)
							total += n
						}
					case m.Gauge != nil:
						for _, d := range m.Gauge.DataPoints {
							if d.AsInt != nil {
								n, _ := strconv.ParseFloat(*d.AsInt, 64)
								total += n
							}
						}
					}
					out[m.Name] = total // cumulative: the last export holds the totals
				}
			}
		}
	}
	return out
}
