// Command proxy benchmarks Keyport's local MCP proxy (package proxymgr)
// against the two baselines any proxy is measured by, on one upstream in the
// same run:
//
//	direct    a go-sdk client talking to the server itself (no hop)
//	bare hop  the same client through a bare httputil.ReverseProxy (the floor
//	          any proxy pays for an extra loopback hop)
//	keyport   the same client through Keyport's proxy, with a tool policy
//	          and the audit log on
//
// The upstream is an in-process go-sdk server (stateful, event-stream
// answers, the 2025-11-25 wire). Each hop runs in its own child process (as
// Keyport's proxy does), so its memory can be read on its own. Rounds
// alternate the paths in rotating order; the report gives medians over
// rounds of:
//
//   - tools/call round trip p50 and throughput at 1 and 32 concurrent
//     sessions, and each hop's added latency (p50 - direct p50);
//   - SSE pass-through: how much later than direct each event of a stream
//     reaches the client (p50 and p99);
//   - memory per idle proxy (Go heap + stacks, 100 proxies in one process);
//   - memory of 1,000 open GET streams through one proxy (Go heap + stacks
//     and RSS of the proxy's process), against the bare hop's;
//   - tool pinning (pinning.go): tools/list of 500 tools and tools/call
//     through Keyport with pinning on against pinning off.
//
// Keyport's proxy injects a bearer token (a JWT-like value the upstream
// ignores), so the redaction of injected credentials from answers is on.
// With -baseline-bin, a fourth path runs the same harness built from
// another revision ("keyport (baseline)"), alternating with the others, so
// a change's cost is measured in one run:
//
//	git archive BASE | tar -x -C /tmp/base
//	cp bench/proxy/main.go /tmp/base/bench/proxy/
//	(cd /tmp/base && go build -o /tmp/bench-base ./bench/proxy)
//	go run ./bench/proxy -rounds 5 -baseline-bin /tmp/bench-base
//
// Run it with:
//
//	go run ./bench/proxy -rounds 5
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		os.Exit(child(os.Args[2:]))
	}
	var (
		rounds    = flag.Int("rounds", 5, "rounds; each runs every path once, in rotating order")
		duration  = flag.Duration("duration", 2*time.Second, "length of each tools/call run")
		concs     = flag.String("concurrency", "1,32", "comma-separated numbers of concurrent sessions")
		events    = flag.Int("events", 300, "SSE events per pass-through sample")
		idle      = flag.Int("idle", 100, "idle proxies for the per-proxy memory figure")
		streams   = flag.Int("streams", 1000, "open GET streams for the stream memory figure")
		skipMem   = flag.Bool("skip-memory", false, "skip the memory figures")
		skipCalls = flag.Bool("skip-calls", false, "skip the tools/call figures")
		barePool  = flag.Bool("bare-pool", false, "give the bare hop a BufferPool (a tuned rather than bare ReverseProxy)")
		otel      = flag.Bool("telemetry", false, "only the OpenTelemetry export figures (export on vs off; memory while the collector is down)")
		otelConc  = flag.Int("telemetry-sessions", 8, "concurrent sessions for the telemetry figures")
		otelDown  = flag.Int("telemetry-events", 100000, "events while the collector is down (0 skips it)")
		otelNice  = flag.Bool("telemetry-nice", true, "run the collector at nice 19 (a real one runs on another machine, not on the measured cores)")
		baseline  = flag.String("baseline-bin", "", "this benchmark built from another revision: its keyport path runs as a fourth path")
		pinTools  = flag.Int("pin-tools", 500, "tools of the upstream for the tool pinning figure (0 skips it)")
		onlyPins  = flag.Bool("only-pinning", false, "measure only tool pinning")
	)
	flag.Parse()
	log.SetFlags(0)
	if *barePool {
		os.Setenv("BENCH_BARE_POOL", "1") // the children read it
	}

	up := startUpstream()
	if *otel {
		benchTelemetry(up.mcpURL, *rounds, *duration, *otelConc, *otelDown, *otelNice)
		return
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "bench-proxy-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	fmt.Printf("bench/proxy: %d rounds, %s per tools/call run, GOMAXPROCS %d, %s/%s, %s, bare hop BufferPool %v\n",
		*rounds, *duration, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), *barePool)

	if *baseline != "" {
		pathNames = append(pathNames, "keyport (baseline)")
	}
	// hops starts the proxies of every path but the direct one.
	hops := func(upstreamURL, audit string) []*childProc {
		ps := []*childProc{spawn(self, "bare", upstreamURL, ""), spawn(self, "keyport", upstreamURL, audit)}
		if *baseline != "" {
			ps = append(ps, spawn(*baseline, "keyport", upstreamURL, audit+".baseline"))
		}
		return ps
	}
	urls := func(direct string, ps []*childProc) []string {
		u := []string{direct}
		for _, p := range ps {
			u = append(u, p.url)
		}
		return u
	}
	stopAll := func(ps []*childProc) {
		for _, p := range ps {
			p.stop()
		}
	}

	var rep report
	if *pinTools > 0 {
		rep.pins = benchPinning(self, dir, *pinTools, *rounds, *duration)
	}
	if *onlyPins {
		rep.print(os.Stdout)
		return
	}
	if !*skipCalls {
		ps := hops(up.mcpURL, filepath.Join(dir, "audit.jsonl"))
		for _, cs := range strings.Split(*concs, ",") {
			c, err := strconv.Atoi(strings.TrimSpace(cs))
			if err != nil || c < 1 {
				log.Fatalf("-concurrency: %q is not a positive number", cs)
			}
			rep.calls = append(rep.calls, benchCalls(c, *rounds, *duration, urls(up.mcpURL, ps)))
		}
		stopAll(ps)
		if b, err := os.ReadFile(filepath.Join(dir, "audit.jsonl")); err == nil {
			rep.auditLines = strings.Count(string(b), "\n")
		}
	}

	ticksURL := up.ticksURL + "?n=" + strconv.Itoa(*events)
	psT := hops(ticksURL, filepath.Join(dir, "audit-ticks.jsonl"))
	rep.sse = benchSSE(*rounds, *events, urls(ticksURL, psT))
	stopAll(psT)

	if !*skipMem {
		rep.idle = benchIdle(self, up.mcpURL, dir, *idle)
		rep.streams = benchStreams(self, up, dir, *streams)
	}
	rep.print(os.Stdout)
}

var pathNames = []string{"direct", "bare hop", "keyport"}

// ---------------------------------------------------------------- upstream

type upstream struct {
	mcpURL, ticksURL string
}

type echoIn struct {
	Text string `json:"text,omitempty"`
}

// startUpstream serves a go-sdk MCP server at /mcp and a timed SSE stream at
// /ticks on a loopback port.
func startUpstream() *upstream {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-upstream", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes its text"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	mux.HandleFunc("/ticks", ticks)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, mux)
	base := "http://" + ln.Addr().String()
	return &upstream{mcpURL: base + "/mcp", ticksURL: base + "/ticks"}
}

// ticks streams ?n= progress notifications 2 ms apart, each carrying the
// time it was written, like a long tool call reporting progress.
func ticks(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	if n <= 0 {
		n = 300
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for i := range n {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		fmt.Fprintf(w, "id: %d\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"t\",\"progress\":%d,\"sent\":%d}}\n\n",
			i, i, time.Now().UnixNano())
		_ = rc.Flush()
	}
}

// ---------------------------------------------------------------- children

// child runs a hop in this process: child bare|keyport UPSTREAM [AUDIT],
// or child idle UPSTREAM DIR. It prints "PORT n" once listening, then
// answers "mem" on stdin with "MEM heap stack goroutines rss" and exits at EOF.
func child(args []string) int {
	mode, upstreamURL := args[0], args[1]
	if f := os.Getenv("BENCH_CPUPROFILE"); f != "" && mode == "keyport" {
		out, err := os.Create(fmt.Sprintf("%s.%d", f, os.Getpid()))
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	var mgr *proxymgr.Manager
	switch mode {
	case "bare":
		target, err := url.Parse(upstreamURL)
		if err != nil {
			log.Fatal(err)
		}
		rp := &httputil.ReverseProxy{
			Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.URL.Path = target.Path },
			FlushInterval: -1,
			Transport:     &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 90 * time.Second, DisableCompression: true},
			ErrorLog:      log.New(io.Discard, "", 0),
		}
		if os.Getenv("BENCH_BARE_POOL") != "" {
			rp.BufferPool = &bufferPool{}
		}
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		go http.Serve(ln, rp)
		fmt.Printf("PORT %d\n", ln.Addr().(*net.TCPAddr).Port)
	case "keyport", "keyport-pins":
		cfg := keyportConfig("bench", upstreamURL, args[2])
		if mode == "keyport-pins" {
			audit, dir, _ := strings.Cut(args[2], "|")
			cfg = pinnedConfig("bench", upstreamURL, audit, dir)
		}
		p, err := proxymgr.New(cfg)
		if err != nil {
			log.Fatal(err)
		}
		if err := p.Start(context.Background()); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("PORT %d\n", p.Port())
	case "idle":
		mgr = proxymgr.NewManager(proxymgr.ManagerOptions{Logger: slog.New(slog.DiscardHandler)})
		fmt.Printf("PORT 0\n")
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "mem":
			fmt.Println(memLine())
		case len(f) == 2 && f[0] == "start" && mgr != nil: // start N idle proxies
			n, _ := strconv.Atoi(f[1])
			for i := range n {
				name := fmt.Sprintf("idle%d", i)
				if _, err := mgr.Start(context.Background(), keyportConfig(name, upstreamURL, filepath.Join(args[2], name+".jsonl"))); err != nil {
					log.Fatal(err)
				}
			}
			time.Sleep(500 * time.Millisecond) // let the reachability probes finish
			fmt.Println("OK")
		}
	}
	return 0
}

// bufferPool is an httputil.BufferPool of 32 KiB buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// benchToken is the credential the benchmarked proxy injects: a JWT-like
// value, whose first bytes ("ey") are frequent in JSON text, so the
// redaction of answers meets many candidates.
const benchToken = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"

// keyportConfig is the benchmarked configuration: a bearer token injected
// (so answers are redacted), a tool policy and the audit log (redacted
// params) on.
func keyportConfig(name, upstreamURL, auditFile string) proxymgr.Config {
	return proxymgr.Config{
		Name:     name,
		Upstream: upstreamURL,
		Credentials: func(context.Context) (http.Header, error) {
			return http.Header{"Authorization": {"Bearer " + benchToken}}, nil
		},
		Policy: proxymgr.ToolPolicy{Deny: []string{"delete_*", "^admin_.*$"}},
		Audit:  proxymgr.AuditConfig{File: auditFile, Params: proxymgr.AuditParamsRedacted},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func memLine() string {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("MEM %d %d %d %d", ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine(), rssBytes(os.Getpid()))
}

// rssBytes reads a process's resident set size (Linux; 0 elsewhere).
func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

type childProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	url string
}

func spawn(self, mode, upstreamURL, extra string) *childProc {
	cmd := exec.Command(self, "child", mode, upstreamURL, extra)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		log.Fatal(err)
	}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	c := &childProc{cmd: cmd, in: in, out: bufio.NewReader(outR)}
	line := c.line()
	port, ok := strings.CutPrefix(line, "PORT ")
	if !ok {
		log.Fatalf("child %s: %q", mode, line)
	}
	c.url = "http://127.0.0.1:" + port + "/mcp"
	return c
}

func (c *childProc) line() string {
	l, err := c.out.ReadString('\n')
	if err != nil {
		log.Fatalf("child: %v", err)
	}
	return strings.TrimSpace(l)
}

// mem asks the child for its memory.
func (c *childProc) mem() memStat {
	fmt.Fprintln(c.in, "mem")
	var m memStat
	if _, err := fmt.Sscanf(c.line(), "MEM %d %d %d %d", &m.heap, &m.stack, &m.goroutines, &m.rss); err != nil {
		log.Fatalf("child mem: %v", err)
	}
	return m
}

func (c *childProc) stop() {
	c.in.Close()
	_ = c.cmd.Wait()
}

type memStat struct{ heap, stack, goroutines, rss int64 }

func (m memStat) goMem() int64 { return m.heap + m.stack }

// ---------------------------------------------------------------- tools/call

type callResult struct {
	conc       int
	p50        [4][]time.Duration // per path, per round
	throughput [4][]float64
}

var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second}}

func benchCalls(conc, rounds int, d time.Duration, urls []string) callResult {
	ctx := context.Background()
	res := callResult{conc: conc}
	sessions := make([][]*mcp.ClientSession, len(urls))
	for i, u := range urls {
		for range conc {
			c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
			cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: u, HTTPClient: httpClient}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
			if err != nil {
				log.Fatalf("connect %s: %v", pathNames[i], err)
			}
			defer cs.Close()
			sessions[i] = append(sessions[i], cs)
		}
		runCalls(sessions[i], d/4) // warm up connections and caches
	}
	for r := range rounds {
		for k := range urls {
			i := (r + k) % len(urls)
			lat, n := runCalls(sessions[i], d)
			res.p50[i] = append(res.p50[i], percentile(lat, 50))
			res.throughput[i] = append(res.throughput[i], float64(n)/d.Seconds())
		}
		fmt.Printf("  tools/call, %d session(s): round %d/%d done\n", conc, r+1, rounds)
	}
	return res
}

// runCalls has every session call echo back to back for d; it returns every
// round-trip time and the number of calls.
func runCalls(sessions []*mcp.ClientSession, d time.Duration) ([]time.Duration, int) {
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello from the benchmark"}}
	for _, cs := range sessions {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if _, err := cs.CallTool(context.Background(), params); err != nil {
					log.Fatalf("tools/call: %v", err)
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, len(all)
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func medianD(d []time.Duration) time.Duration { return percentile(d, 50) }

func medianF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// ---------------------------------------------------------------- SSE

type sseResult struct {
	p50, p99 [4][]time.Duration // transit per path per round
}

func benchSSE(rounds, n int, urls []string) sseResult {
	var res sseResult
	for r := range rounds {
		for k := range urls {
			i := (r + k) % len(urls)
			lat, err := streamTransit(urls[i], n)
			if err != nil {
				log.Fatalf("SSE %s: %v", pathNames[i], err)
			}
			res.p50[i] = append(res.p50[i], percentile(lat, 50))
			res.p99[i] = append(res.p99[i], percentile(lat, 99))
		}
	}
	fmt.Printf("  SSE pass-through: %d rounds done\n", rounds)
	return res
}

// streamTransit reads a /ticks stream and returns, per event, the time from
// the server writing it to the client reading it.
func streamTransit(u string, n int) ([]time.Duration, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	rd := bufio.NewReader(resp.Body)
	var out []time.Duration
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		now := time.Now().UnixNano()
		i := strings.Index(line, `"sent":`)
		if i < 0 {
			continue
		}
		sent, err := strconv.ParseInt(strings.TrimRight(line[i+7:], "}\n"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse %q: %v", line, err)
		}
		out = append(out, time.Duration(now-sent))
	}
	if len(out) != n {
		return nil, fmt.Errorf("got %d events, want %d", len(out), n)
	}
	return out, nil
}

// ---------------------------------------------------------------- memory

type idleResult struct {
	n                 int
	perProxy          int64 // Go heap + stacks per idle proxy
	perProxyRSS       int64
	goroutinesPerProx float64
}

func benchIdle(self, upstreamURL, dir string, n int) idleResult {
	c := spawn(self, "idle", upstreamURL, dir)
	defer c.stop()
	before := c.mem()
	fmt.Fprintf(c.in, "start %d\n", n)
	if l := c.line(); l != "OK" {
		log.Fatalf("idle child: %q", l)
	}
	after := c.mem()
	fmt.Printf("  idle proxies: %d started\n", n)
	return idleResult{
		n:                 n,
		perProxy:          (after.goMem() - before.goMem()) / int64(n),
		perProxyRSS:       (after.rss - before.rss) / int64(n),
		goroutinesPerProx: float64(after.goroutines-before.goroutines) / float64(n),
	}
}

type streamsResult struct {
	n          int
	goMem, rss [2]int64 // bare hop, keyport: growth with the streams open
	goroutines [2]int64
}

// benchStreams opens n GET streams (n sessions) through each hop and reads
// how much the hop's process grew.
func benchStreams(self string, up *upstream, dir string, n int) streamsResult {
	res := streamsResult{n: n}
	tr := &http.Transport{MaxIdleConns: n + 64, MaxIdleConnsPerHost: n + 64, IdleConnTimeout: 90 * time.Second}
	client := &http.Client{Transport: tr}
	for i, mode := range []string{"bare", "keyport"} {
		c := spawn(self, mode, up.mcpURL, filepath.Join(dir, "streams.jsonl"))
		sids := make([]string, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for k := range n {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				sids[k] = initSession(client, c.url)
			})
		}
		wg.Wait()
		before := c.mem()
		ctx, cancel := context.WithCancel(context.Background())
		var open atomic.Int64
		for k := range n {
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
				req.Header.Set("Accept", "text/event-stream")
				req.Header.Set("Mcp-Session-Id", sids[k])
				req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						log.Fatalf("GET stream: %v", err)
					}
					return
				}
				if resp.StatusCode != 200 {
					log.Fatalf("GET stream: status %d", resp.StatusCode)
				}
				open.Add(1)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		for open.Load() < int64(n) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		after := c.mem()
		res.goMem[i] = after.goMem() - before.goMem()
		res.rss[i] = after.rss - before.rss
		res.goroutines[i] = after.goroutines - before.goroutines
		cancel()
		wg.Wait()
		c.stop()
		tr.CloseIdleConnections()
		fmt.Printf("  %d GET streams through the %s: measured\n", n, pathNames[i+1])
	}
	return res
}

func initSession(client *http.Client, u string) string {
	post := func(sid, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		resp, err := client.Do(req)
		if err != nil {
			log.Fatalf("initialize: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	if sid == "" {
		log.Fatalf("initialize: no session (status %d)", resp.StatusCode)
	}
	post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return sid
}

// ---------------------------------------------------------------- report

type report struct {
	auditLines int // lines Keyport's audit log got during the tools/call runs
	calls      []callResult
	sse        sseResult
	idle       idleResult
	streams    streamsResult
	pins       pinResult
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

func mib(b int64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }

func (r report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w)
	r.pins.print(w)
	for _, c := range r.calls {
		fmt.Fprintf(tw, "tools/call, %d session(s)\tp50\tadded vs direct\tcalls/s\n", c.conc)
		direct := medianD(c.p50[0])
		for i, name := range pathNames {
			if len(c.p50[i]) == 0 {
				continue
			}
			p50 := medianD(c.p50[i])
			added := "-"
			if i > 0 {
				added = ms(p50 - direct)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%.0f\n", name, ms(p50), added, medianF(c.throughput[i]))
		}
		bareAdded, kpAdded := medianD(c.p50[1])-direct, medianD(c.p50[2])-direct
		ratio := float64(kpAdded) / float64(max(bareAdded, time.Microsecond))
		thr := medianF(c.throughput[2]) / medianF(c.throughput[1])
		fmt.Fprintf(tw, "  keyport added / bare hop added\t%.2fx (target <= 1.2x)\t%s\t\n", ratio, verdict(ratio <= 1.2))
		fmt.Fprintf(tw, "  keyport throughput / bare hop\t%.0f%% (target >= 90%% at 32)\t%s\t\n", thr*100, verdict(thr >= 0.9 || c.conc != 32))
		if len(c.p50[3]) > 0 {
			baseAdded := medianD(c.p50[3]) - direct
			vsBase := medianF(c.throughput[2]) / medianF(c.throughput[3])
			fmt.Fprintf(tw, "  keyport added - baseline added\t%s\t\t\n", ms(kpAdded-baseAdded))
			fmt.Fprintf(tw, "  keyport throughput / baseline\t%.1f%% (target >= 95%%)\t%s\t\n", vsBase*100, verdict(vsBase >= 0.95))
		}
		fmt.Fprintln(tw, "\t\t\t")
	}
	if len(r.calls) > 0 {
		fmt.Fprintf(tw, "keyport's audit log got %d lines during the tools/call runs\t\t\t\n", r.auditLines)
		fmt.Fprintln(tw, "\t\t\t")
	}
	if len(r.sse.p50[0]) > 0 {
		fmt.Fprintf(tw, "SSE pass-through (event written -> read)\tp50\tp99\tadded p50 / p99\n")
		d50, d99 := medianD(r.sse.p50[0]), medianD(r.sse.p99[0])
		for i, name := range pathNames {
			if len(r.sse.p50[i]) == 0 {
				continue
			}
			p50, p99 := medianD(r.sse.p50[i]), medianD(r.sse.p99[i])
			added := "-"
			if i > 0 {
				added = ms(p50-d50) + " / " + ms(p99-d99)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", name, ms(p50), ms(p99), added)
		}
		kp50, kp99, bare99 := medianD(r.sse.p50[2])-d50, medianD(r.sse.p99[2])-d99, medianD(r.sse.p99[1])-d99
		fmt.Fprintf(tw, "  keyport added per event, p50 (target < 1 ms)\t%s\t%s\t\n", ms(kp50), verdict(kp50 < time.Millisecond))
		fmt.Fprintf(tw, "  keyport added per event, p99 (bare hop: %s)\t%s\t%s\t\n", ms(bare99), ms(kp99), verdict(kp99 < time.Millisecond))
		if len(r.sse.p50[3]) > 0 {
			base50 := medianD(r.sse.p50[3]) - d50
			fmt.Fprintf(tw, "  keyport added p50 - baseline added p50 (target <= 0.05 ms)\t%s\t%s\t\n", ms(kp50-base50), verdict(kp50-base50 <= 50*time.Microsecond))
		}
		fmt.Fprintln(tw, "\t\t\t")
	}
	if r.idle.n > 0 {
		fmt.Fprintf(tw, "memory per idle proxy (%d proxies)\tGo heap+stacks\tRSS\tgoroutines\n", r.idle.n)
		fmt.Fprintf(tw, "  keyport (policy + audit log)\t%s\t%s\t%.1f\n", kib(r.idle.perProxy), kib(r.idle.perProxyRSS), r.idle.goroutinesPerProx)
		fmt.Fprintf(tw, "  target <= 2 MiB\t%s\t\t\n", verdict(r.idle.perProxy <= 2<<20 && r.idle.perProxyRSS <= 2<<20))
		fmt.Fprintln(tw, "\t\t\t")
	}
	if r.streams.n > 0 {
		fmt.Fprintf(tw, "%d open GET streams, growth of the hop's process\tGo heap+stacks\tRSS\tgoroutines\n", r.streams.n)
		for i, name := range pathNames[1:3] {
			fmt.Fprintf(tw, "  %s\t%s (%s/stream)\t%s\t%d\n", name, mib(r.streams.goMem[i]), kib(r.streams.goMem[i]/int64(r.streams.n)), mib(r.streams.rss[i]), r.streams.goroutines[i])
		}
	}
	tw.Flush()
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
