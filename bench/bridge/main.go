// Command bridge benchmarks `keyport connect` (the stdio bridge) against
// the ways a stdio or HTTP client can reach the same streamable-HTTP MCP
// server:
//
//	direct      a go-sdk client over HTTP, no hop (the ceiling)
//	hop         a go-sdk client over HTTP through a bare httputil.ReverseProxy
//	            in its own process (the floor for any extra hop)
//	keyport     a go-sdk client over stdio through `keyport-cli connect`
//	            (bin/keyport-cli: what Keyport writes into stdio clients)
//	keyport-app the same through the app's binary (bin/keyport, with the GUI
//	            toolkit linked: the fallback when keyport-cli is missing)
//	lean        the bridge engine alone (proxymgr/bridge), without Keyport's
//	            CLI around it
//	mcp-remote  a go-sdk client over stdio through npm mcp-remote (Node 22)
//
// All of them talk to one in-process go-sdk server (stateful, event-stream
// responses) in the same run. Rounds alternate the contenders (rotating the
// order), and the report gives medians: start-up (spawn to the first
// tools/list answer), sequential tools/call throughput, and the peak RSS of
// the bridge (or hop) process.
//
//	make build && go run ./bench/bridge -rounds 7
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
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr/bridge"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "child-bridge": // the lean bridge: bench/bridge child-bridge URL
			os.Exit(childBridge(os.Args[2]))
		case "child-hop": // the hop: bench/bridge child-hop TARGET
			os.Exit(childHop(os.Args[2]))
		}
	}
	var (
		keyport  = flag.String("keyport", "bin/keyport-cli", "the binary stdio clients run for connect (keyport-cli; empty: skip)")
		app      = flag.String("app", "bin/keyport", "the app's binary, whose connect is the fallback when keyport-cli is missing (empty: skip)")
		rounds   = flag.Int("rounds", 7, "rounds; each runs every contender once, in rotating order")
		duration = flag.Duration("duration", 3*time.Second, "length of each throughput run")
		starts   = flag.Int("starts", 3, "start-up samples per contender per round")
		peers    = flag.String("peers", os.Getenv("KEYPORT_PEERS"), "node_modules holding mcp-remote (empty: skip it)")
		node     = flag.String("node", envOr("KEYPORT_NODE", "node"), "Node 22 binary for mcp-remote")
		only     = flag.String("only", "", "comma-separated contenders to run (default: all available)")
	)
	flag.Parse()
	log.SetFlags(0)

	upstreamURL, stop := startUpstream()
	defer stop()

	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	home, err := os.MkdirTemp("", "bench-bridge-home-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)

	var contenders []contender
	contenders = append(contenders, contender{name: "direct"})
	contenders = append(contenders, contender{name: "hop", hop: true, cmd: func() *exec.Cmd {
		return exec.Command(self, "child-hop", upstreamURL)
	}})
	for _, k := range []struct{ name, bin string }{{"keyport", *keyport}, {"keyport-app", *app}} {
		if k.bin == "" {
			continue
		}
		abs, err := filepath.Abs(k.bin)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			log.Printf("skipping %s: %v (run make build, or pass -keyport / -app)", k.name, err)
			continue
		}
		contenders = append(contenders, contender{name: k.name, cmd: func() *exec.Cmd {
			return exec.Command(abs, "connect", "bench", "--url", upstreamURL)
		}})
	}
	contenders = append(contenders, contender{name: "lean", cmd: func() *exec.Cmd {
		return exec.Command(self, "child-bridge", upstreamURL)
	}})
	if *peers != "" {
		script := filepath.Join(*peers, "mcp-remote", "dist", "proxy.js")
		if _, err := os.Stat(script); err == nil {
			contenders = append(contenders, contender{name: "mcp-remote", cmd: func() *exec.Cmd {
				return exec.Command(*node, script, upstreamURL, "--transport", "http-only", "--allow-http")
			}})
		} else {
			log.Printf("skipping mcp-remote: %v", err)
		}
	} else {
		log.Printf("skipping mcp-remote: set KEYPORT_PEERS or -peers")
	}
	if *only != "" {
		keep := strings.Split(*only, ",")
		contenders = slices.DeleteFunc(contenders, func(c contender) bool { return !slices.Contains(keep, c.name) })
	}
	for i := range contenders {
		c := &contenders[i]
		c.home = home
		c.upstream = upstreamURL
	}

	fmt.Printf("bench/bridge: %d rounds, %s per throughput run, %d start-ups per round; upstream %s\n",
		*rounds, *duration, *starts, upstreamURL)
	for r := range *rounds {
		for i := range contenders {
			c := &contenders[(r+i)%len(contenders)]
			if err := c.round(*duration, *starts); err != nil {
				log.Fatalf("round %d, %s: %v", r+1, c.name, err)
			}
		}
		fmt.Printf("round %d/%d done\n", r+1, *rounds)
	}
	report(contenders)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// contender is one way of reaching the upstream, and its samples.
type contender struct {
	name     string
	hop      bool             // cmd is an HTTP hop, not a stdio bridge
	cmd      func() *exec.Cmd // nil: direct
	home     string
	upstream string

	startup    []time.Duration
	throughput []float64 // calls per second
	rssKB      []int64
}

var clientImpl = &mcp.Implementation{Name: "bench", Version: "1.0.0"}

// The bridges are compared on the 2025-11-25 wire (sessions, GET stream),
// which every contender speaks.
var sessionOpts = &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"}

// round takes one set of samples.
func (c *contender) round(d time.Duration, starts int) error {
	ctx := context.Background()
	endpoint := c.upstream
	var hop *exec.Cmd
	if c.hop {
		var err error
		hop, endpoint, err = startHop(c.cmd())
		if err != nil {
			return err
		}
	}
	connect := func() (*mcp.ClientSession, *exec.Cmd, error) {
		client := mcp.NewClient(clientImpl, nil)
		if c.cmd == nil || c.hop {
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint}, sessionOpts)
			return cs, nil, err
		}
		cmd := c.cmd()
		cmd.Env = []string{"HOME=" + c.home, "PATH=" + os.Getenv("PATH")}
		cmd.Stderr = io.Discard
		cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, sessionOpts)
		return cs, cmd, err
	}

	// Start-up: spawn (or connect) to the first tools/list answer.
	for range starts {
		t0 := time.Now()
		cs, _, err := connect()
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		if _, err := cs.ListTools(ctx, nil); err != nil {
			return fmt.Errorf("tools/list: %w", err)
		}
		c.startup = append(c.startup, time.Since(t0))
		cs.Close()
	}

	// Throughput: sequential tools/call for d, after a warm-up.
	cs, cmd, err := connect()
	if err != nil {
		return err
	}
	params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}}
	for range 50 {
		if _, err := cs.CallTool(ctx, params); err != nil {
			return fmt.Errorf("tools/call: %w", err)
		}
	}
	n := 0
	t0 := time.Now()
	for time.Since(t0) < d {
		if _, err := cs.CallTool(ctx, params); err != nil {
			return fmt.Errorf("tools/call: %w", err)
		}
		n++
	}
	c.throughput = append(c.throughput, float64(n)/time.Since(t0).Seconds())

	// Peak RSS of the bridge or hop process so far (the session is still
	// open, so this includes start-up and the whole throughput run).
	var proc *exec.Cmd
	if cmd != nil {
		proc = cmd
	} else if hop != nil {
		proc = hop
	}
	if proc != nil {
		kb, err := peakRSS(proc.Process.Pid)
		if err != nil {
			return err
		}
		c.rssKB = append(c.rssKB, kb)
	}
	cs.Close()
	if hop != nil {
		_ = hop.Process.Signal(syscall.SIGTERM)
		_ = hop.Wait()
	}
	return nil
}

// peakRSS reads VmHWM, the peak resident set of the process's own address
// space. (wait4's ru_maxrss is not used: Linux folds the parent's memory
// into it when the child was started with vfork semantics, as Go does.)
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w (the benchmark needs Linux /proc)", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			_, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb, err
		}
	}
	return 0, fmt.Errorf("peak RSS: no VmHWM in /proc/%d/status", pid)
}

// startHop starts the hop process and reads the address it listens on.
func startHop(cmd *exec.Cmd) (*exec.Cmd, string, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return nil, "", fmt.Errorf("hop: %w", err)
	}
	return cmd, strings.TrimSpace(line), nil
}

func report(cs []contender) {
	var base, hop, remote *contender
	for i := range cs {
		switch cs[i].name {
		case "direct":
			base = &cs[i]
		case "hop":
			hop = &cs[i]
		case "mcp-remote":
			remote = &cs[i]
		}
	}
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "contender\tstart-up (median)\ttools/call per s (median)\tpeak RSS (median)\t")
	for _, c := range cs {
		rss := "-"
		if len(c.rssKB) > 0 {
			rss = fmt.Sprintf("%.1f MB", float64(median(c.rssKB))/1024)
		}
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%s\t\n", c.name, median(c.startup).Round(100*time.Microsecond), median(c.throughput), rss)
	}
	w.Flush()
	fmt.Println()
	for _, c := range cs {
		if c.name != "keyport" && c.name != "keyport-app" && c.name != "lean" {
			continue
		}
		fmt.Printf("%s:\n", c.name)
		if remote != nil {
			fmt.Printf("  start-up      %5.1fx faster than mcp-remote (target >= 10x)\n",
				float64(median(remote.startup))/float64(median(c.startup)))
			fmt.Printf("  throughput    %5.2fx mcp-remote's (target >= 3x)\n", median(c.throughput)/median(remote.throughput))
			fmt.Printf("  peak RSS      %5.1fx smaller than mcp-remote's (target >= 5x)\n",
				float64(median(remote.rssKB))/float64(median(c.rssKB)))
		}
		if hop != nil {
			fmt.Printf("  throughput    %5.0f%% of the bare hop's (target >= 90%%)\n", 100*median(c.throughput)/median(hop.throughput))
		}
		if base != nil {
			fmt.Printf("  throughput    %5.0f%% of direct HTTP\n", 100*median(c.throughput)/median(base.throughput))
		}
	}
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// startUpstream serves the benchmark's MCP server in this process.
func startUpstream() (string, func()) {
	server := mcp.NewServer(&mcp.Implementation{Name: "bench-upstream", Version: "1.0.0"}, nil)
	type echoArgs struct {
		Text string `json:"text"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "echoes its text"},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/mcp", func() { srv.Close() }
}

// childBridge runs the bridge package on stdio, as keyport connect does,
// in a binary that does not link the GUI toolkit.
func childBridge(endpoint string) int {
	err := bridge.Run(context.Background(), bridge.Config{
		Name: "bench", URL: endpoint, In: os.Stdin, Out: os.Stdout, AutoReconnect: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childHop serves a bare reverse proxy to target and prints its URL.
func childHop(target string) int {
	u, err := url.Parse(target)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	proxy := &httputil.ReverseProxy{
		ErrorLog: log.New(io.Discard, "", 0), // clients closing streams is normal here
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host, r.Out.Host = u.Scheme, u.Host, u.Host
		},
		FlushInterval: -1,
	}
	fmt.Printf("http://%s%s\n", ln.Addr(), u.Path)
	srv := &http.Server{Handler: proxy}
	go func() { _ = srv.Serve(ln) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	srv.Close()
	return 0
}
