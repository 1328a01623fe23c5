// Command profile benchmarks a Keyport profile endpoint (proxymgr/gateway)
// against the baselines of bench/proxy, in one run, on in-process go-sdk
// upstreams:
//
//	direct    a go-sdk client talking to the server itself
//	bare hop  the same client through a bare httputil.ReverseProxy
//	keyport   through the server's Keyport proxy (policy and audit log on)
//	profile   through a one-server profile: the gateway, then that proxy
//
// Each hop runs in a child process. Rounds alternate the paths; the report
// gives medians of:
//
//   - tools/call round trip p50 and throughput at 1 and 16 concurrent
//     sessions, each path's added latency (p50 - direct p50), and the
//     profile's against the bare hop's (targets: added <= 2x the bare hop's
//     at 1 session, throughput >= 80% of the bare hop's at 16);
//   - tools/list over a profile of 10 servers, whose lists take 1..10 ms,
//     against the slowest server's own tools/list through its proxy
//     (target <= 1.2x);
//   - the profile endpoint's idle memory beyond its member proxies
//     (target <= 2 MiB).
//
// Run it with:
//
//	go run ./bench/profile -rounds 5
package main

import (
	"bufio"
	"context"
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
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr"
	"keyport/proxymgr/gateway"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		os.Exit(child(os.Args[2:]))
	}
	var (
		rounds   = flag.Int("rounds", 5, "rounds; each runs every path once, in rotating order")
		duration = flag.Duration("duration", 2*time.Second, "length of each tools/call run")
		concs    = flag.String("concurrency", "1,16", "comma-separated numbers of concurrent sessions")
		members  = flag.Int("members", 10, "servers of the tools/list profile")
	)
	flag.Parse()
	log.SetFlags(0)
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "bench-profile-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	fmt.Printf("bench/profile: %d rounds, %s per tools/call run, GOMAXPROCS %d, %s/%s, %s\n",
		*rounds, *duration, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())

	up := startUpstream(0, 4)
	bare := spawn(self, "bare", up, filepath.Join(dir, "a"))
	kp := spawn(self, "keyport", up, filepath.Join(dir, "k.jsonl"))
	prof := spawn(self, "profile", up, filepath.Join(dir, "p.jsonl"))
	urls := []string{up, bare.url, kp.url, prof.url}
	var calls []callResult
	for _, cs := range strings.Split(*concs, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(cs))
		if err != nil || c < 1 {
			log.Fatalf("-concurrency: %q", cs)
		}
		calls = append(calls, benchCalls(c, *rounds, *duration, urls))
	}
	bare.stop()
	kp.stop()
	prof.stop()

	// tools/list over many members, against the slowest member alone.
	var ups []string
	for i := range *members {
		ups = append(ups, startUpstream(time.Duration(i+1)*time.Millisecond, 20))
	}
	many := spawn(self, "many", strings.Join(ups, ","), dir)
	lists := benchLists(*rounds, many.url, many.extra)
	mem := many.mem()
	many.stop()
	printReport(os.Stdout, calls, lists, *members, mem)
}

var pathNames = []string{"direct", "bare hop", "keyport", "profile"}

type echoIn struct {
	Text string `json:"text,omitempty"`
}

// startUpstream serves a go-sdk server with n tools (echo first) whose
// tools/list takes delay, and returns its URL.
func startUpstream(delay time.Duration, n int) string {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-upstream", Version: "1"}, nil)
	for i := range n {
		name := "echo"
		if i > 0 {
			name = fmt.Sprintf("tool_%d", i)
		}
		mcp.AddTool(s, &mcp.Tool{Name: name, Description: "echoes its text; a tool of a benchmark server with a description of realistic length"},
			func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
			})
	}
	if delay > 0 {
		s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
			return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
				if method == "tools/list" {
					time.Sleep(delay)
				}
				return next(ctx, method, req)
			}
		})
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	return "http://" + ln.Addr().String() + "/mcp"
}

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func keyportConfig(name, upstream, audit string) proxymgr.Config {
	return proxymgr.Config{
		Name: name, Upstream: upstream, Logger: quiet(),
		Policy: proxymgr.ToolPolicy{Deny: []string{"delete_*", "^admin_.*$"}},
		Audit:  proxymgr.AuditConfig{File: audit, Params: proxymgr.AuditParamsRedacted},
	}
}

func startProxy(cfg proxymgr.Config) *proxymgr.Proxy {
	p, err := proxymgr.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	return p
}

func startGateway(name string, members []gateway.Member) *gateway.Gateway {
	g, err := gateway.New(gateway.Config{Name: name, Members: members, Logger: quiet()})
	if err != nil {
		log.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	return g
}

// child runs a hop: bare|keyport|profile UPSTREAM AUDIT, or many
// UPSTREAM,UPSTREAM,... DIR (member proxies, then a profile over them). It
// prints "URL u [extra]" once serving, answers "mem" on stdin with "MEM
// before after" (Go heap+stacks and RSS before and after the gateway of
// many started) and exits at EOF.
func child(args []string) int {
	mode, upstream, extra := args[0], args[1], args[2]
	if f := os.Getenv("BENCH_CPUPROFILE"); f != "" && mode == "profile" {
		out, err := os.Create(f)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if f := os.Getenv("BENCH_MEMPROFILE"); f != "" && mode == "profile" {
		// Every allocation's site, written when the child exits.
		runtime.MemProfileRate = 4096
		defer func() {
			out, err := os.Create(f)
			if err != nil {
				log.Fatal(err)
			}
			defer out.Close()
			if err := pprof.Lookup("allocs").WriteTo(out, 0); err != nil {
				log.Fatal(err)
			}
		}()
	}
	var before, after memStat
	switch mode {
	case "bare":
		target, _ := url.Parse(upstream)
		rp := &httputil.ReverseProxy{
			Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.URL.Path = target.Path },
			FlushInterval: -1,
			Transport:     &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 90 * time.Second, DisableCompression: true},
			ErrorLog:      log.New(io.Discard, "", 0),
		}
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		go http.Serve(ln, rp)
		fmt.Printf("URL http://%s/mcp\n", ln.Addr())
	case "keyport":
		fmt.Printf("URL %s\n", startProxy(keyportConfig("bench", upstream, extra)).URL())
	case "profile":
		p := startProxy(keyportConfig("bench", upstream, extra))
		g := startGateway("bench", []gateway.Member{{Server: "bench", URL: p.URL()}})
		fmt.Printf("URL %s\n", g.URL())
	case "many":
		var members []gateway.Member
		var slowest string
		for i, u := range strings.Split(upstream, ",") {
			name := fmt.Sprintf("server%d", i)
			p := startProxy(keyportConfig(name, u, filepath.Join(extra, name+".jsonl")))
			members = append(members, gateway.Member{Server: name, URL: p.URL()})
			slowest = p.URL()
		}
		time.Sleep(300 * time.Millisecond) // the proxies' reachability probes
		before = memNow()
		g := startGateway("many", members)
		time.Sleep(300 * time.Millisecond)
		after = memNow()
		fmt.Printf("URL %s %s\n", g.URL(), slowest)
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "mem" {
			fmt.Printf("MEM %d %d %d %d\n", before.goMem, before.rss, after.goMem, after.rss)
		}
	}
	return 0
}

type memStat struct{ goMem, rss int64 }

func memNow() memStat {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memStat{goMem: int64(ms.HeapInuse + ms.StackInuse), rss: rssBytes()}
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
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
	cmd        *exec.Cmd
	in         io.WriteCloser
	out        *bufio.Reader
	url, extra string
}

func spawn(self, mode, upstream, extra string) *childProc {
	cmd := exec.Command(self, "child", mode, upstream, extra)
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	c := &childProc{cmd: cmd, in: in, out: bufio.NewReader(out)}
	f := strings.Fields(c.line())
	if len(f) < 2 || f[0] != "URL" {
		log.Fatalf("child %s: %v", mode, f)
	}
	c.url = f[1]
	if len(f) > 2 {
		c.extra = f[2]
	}
	return c
}

func (c *childProc) line() string {
	l, err := c.out.ReadString('\n')
	if err != nil {
		log.Fatalf("child: %v", err)
	}
	return strings.TrimSpace(l)
}

func (c *childProc) mem() [2]memStat {
	fmt.Fprintln(c.in, "mem")
	var m [2]memStat
	if _, err := fmt.Sscanf(c.line(), "MEM %d %d %d %d", &m[0].goMem, &m[0].rss, &m[1].goMem, &m[1].rss); err != nil {
		log.Fatal(err)
	}
	return m
}

func (c *childProc) stop() {
	c.in.Close()
	_ = c.cmd.Wait()
}

var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second}}

func connect(u string) *mcp.ClientSession {
	c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: u, HTTPClient: httpClient}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		log.Fatalf("connect %s: %v", u, err)
	}
	return cs
}

type callResult struct {
	conc       int
	p50        [4][]time.Duration
	throughput [4][]float64
}

func benchCalls(conc, rounds int, d time.Duration, urls []string) callResult {
	res := callResult{conc: conc}
	sessions := make([][]*mcp.ClientSession, len(urls))
	for i, u := range urls {
		for range conc {
			sessions[i] = append(sessions[i], connect(u))
		}
		runCalls(sessions[i], d/4)
	}
	for r := range rounds {
		for k := range urls {
			i := (r + k) % len(urls)
			lat, n := runCalls(sessions[i], d)
			res.p50[i] = append(res.p50[i], pct(lat, 50))
			res.throughput[i] = append(res.throughput[i], float64(n)/d.Seconds())
		}
		fmt.Printf("  tools/call, %d session(s): round %d/%d done\n", conc, r+1, rounds)
	}
	for _, ss := range sessions {
		for _, s := range ss {
			s.Close()
		}
	}
	return res
}

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

type listResult struct {
	profile, slowest []time.Duration // p50 per round
	tools            int
}

// benchLists times tools/list through the profile of many servers and
// through the slowest server's proxy alone, alternating.
func benchLists(rounds int, profileURL, slowestURL string) listResult {
	var res listResult
	ps, ss := connect(profileURL), connect(slowestURL)
	defer ps.Close()
	defer ss.Close()
	if r, err := ps.ListTools(context.Background(), nil); err == nil {
		res.tools = len(r.Tools)
	}
	time1 := func(cs *mcp.ClientSession) time.Duration {
		var lat []time.Duration
		for range 40 {
			t0 := time.Now()
			if _, err := cs.ListTools(context.Background(), nil); err != nil {
				log.Fatalf("tools/list: %v", err)
			}
			lat = append(lat, time.Since(t0))
		}
		return pct(lat, 50)
	}
	for r := range rounds {
		if r%2 == 0 {
			res.profile = append(res.profile, time1(ps))
			res.slowest = append(res.slowest, time1(ss))
		} else {
			res.slowest = append(res.slowest, time1(ss))
			res.profile = append(res.profile, time1(ps))
		}
	}
	fmt.Printf("  tools/list over the profile: %d rounds done\n", rounds)
	return res
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func medF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func printReport(w io.Writer, calls []callResult, lists listResult, members int, mem [2]memStat) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w)
	for _, c := range calls {
		fmt.Fprintf(tw, "tools/call, %d session(s)\tp50\tadded vs direct\tcalls/s\n", c.conc)
		direct := pct(c.p50[0], 50)
		for i, name := range pathNames {
			p := pct(c.p50[i], 50)
			added := "-"
			if i > 0 {
				added = ms(p - direct)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%.0f\n", name, ms(p), added, medF(c.throughput[i]))
		}
		bareAdded := pct(c.p50[1], 50) - direct
		profAdded := pct(c.p50[3], 50) - direct
		ratio := float64(profAdded) / float64(max(bareAdded, time.Microsecond))
		thr := medF(c.throughput[3]) / medF(c.throughput[1])
		fmt.Fprintf(tw, "  profile added / bare hop added\t%.2fx\t(target <= 2x at 1 session)\t%s\n", ratio, verdict(ratio <= 2 || c.conc != 1))
		fmt.Fprintf(tw, "  profile throughput / bare hop\t%.0f%%\t(target >= 80%% at 16)\t%s\n", thr*100, verdict(thr >= 0.8 || c.conc != 16))
		fmt.Fprintln(tw, "\t\t\t")
	}
	prof, slow := pct(lists.profile, 50), pct(lists.slowest, 50)
	r := float64(prof) / float64(slow)
	fmt.Fprintf(tw, "tools/list, profile of %d servers (%d tools; lists take 1..%d ms)\t%s\t\t\n", members, lists.tools, members, ms(prof))
	fmt.Fprintf(tw, "  the slowest server alone, through its proxy\t%s\t\t\n", ms(slow))
	fmt.Fprintf(tw, "  profile / slowest\t%.2fx\t(target <= 1.2x)\t%s\n", r, verdict(r <= 1.2))
	fmt.Fprintln(tw, "\t\t\t")
	goMem, rss := mem[1].goMem-mem[0].goMem, mem[1].rss-mem[0].rss
	fmt.Fprintf(tw, "idle profile endpoint beyond its %d member proxies\tGo heap+stacks %.2f MiB\tRSS %.2f MiB\t%s\n", members,
		float64(goMem)/(1<<20), float64(rss)/(1<<20), verdict(goMem <= 2<<20 && rss <= 2<<20))
	tw.Flush()
}
