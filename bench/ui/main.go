// Command ui benchmarks the Keyport GUI as a user meets it: the real binary
// under Xvfb, in a fresh HOME and config dir.
//
//	go run ./bench/ui -bin bin/keyport          (make build first)
//
// It reports, each against a baseline measured in the same run:
//
//   - start-up: launch to "window shown" (KEYPORT_READY_FILE, written by
//     ui/launch once the event loop runs) with 200 servers, median of
//     -runs warm launches; the baseline is the same binary's `version` verb
//     under the same xvfb-run (process, runtime and Xvfb start-up).
//     Target ≤ 1 s.
//   - idle CPU: user+system CPU time over -idle (30 s), read from /proc
//     (Linux), of the window process and the tray process while the window
//     is open, then of the tray process alone once the window is closed
//     (where Keyport spends its days); the baseline is a bare fyne window
//     (-hello) idling at the same time. Target ≈ 0.
//   - RSS with -proxies (10) proxies turned on, each in front of an
//     in-process go-sdk MCP server, read from /proc/PID/status once they
//     run: Keyport started at login (--background), in the tray. Target
//     ≤ 120 MiB; the baseline is the bare fyne window's RSS.
//
// The filtering target (≤ 50 ms for 1,000 servers) is a go test benchmark:
// go test -run '^$' -bench SearchKeystroke ./ui
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	bin := flag.String("bin", os.Getenv("KEYPORT_BIN"), "the keyport binary (or ui/launch/fakeapp)")
	hello := flag.String("hello", "", "the baseline fyne app (go build -o hello ./bench/ui/hello); empty: skip")
	servers := flag.Int("servers", 200, "servers in the catalog for the start-up run")
	runs := flag.Int("runs", 5, "start-up runs (the median is reported; the first warms caches)")
	idle := flag.Duration("idle", 30*time.Second, "how long to measure idle CPU")
	proxies := flag.Int("proxies", 10, "proxies to turn on for the RSS measurement")
	flag.Parse()
	if *bin == "" {
		fail(errors.New("set -bin or KEYPORT_BIN to the keyport binary (make build)"))
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fail(err)
	}
	*bin = abs

	base := medianOf(*runs, func() time.Duration { return timeVersion(*bin) })
	fmt.Printf("baseline: `keyport version` under xvfb-run: %v (median of %d)\n", base.Round(time.Millisecond), *runs)

	var starts []time.Duration
	var pid int
	var stop func()
	for i := 0; i < *runs; i++ {
		env := newEnv(*servers, nil)
		d, p, s := launch(*bin, env, false)
		if i < *runs-1 {
			s()
			env.cleanup()
		} else {
			pid, stop = p, func() { s(); env.cleanup() }
		}
		starts = append(starts, d)
	}
	start := median(starts)
	fmt.Printf("start-up with %d servers: %v (median of %d; %v over the baseline) — target ≤ 1 s\n",
		*servers, start.Round(time.Millisecond), *runs, (start - base).Round(time.Millisecond))

	// Idle CPU and RSS of both processes with the window open, next to the
	// baseline fyne app running at the same time; then the tray alone.
	tray := ppid(pid)
	var hpid int
	hstop := func() {}
	if *hello != "" {
		henv := newEnv(0, nil)
		_, hpid, hstop = launch(*hello, henv, false)
		defer henv.cleanup()
	}
	time.Sleep(2 * time.Second) // let the start-up work settle
	w0, t0 := cpuTime(pid), cpuTime(tray)
	var h0 time.Duration
	if hpid != 0 {
		h0 = cpuTime(hpid)
	}
	time.Sleep(*idle)
	wUsed, tUsed := cpuTime(pid)-w0, cpuTime(tray)-t0
	fmt.Printf("window open, idle over %v: window process %s, tray process %s; RSS window %.1f MiB + tray %.1f MiB (%d servers)\n",
		*idle, pct(wUsed, *idle), pct(tUsed, *idle), rssMiB(pid), rssMiB(tray), *servers)
	var hUsed time.Duration
	var hRSS float64
	if hpid != 0 {
		hUsed, hRSS = cpuTime(hpid)-h0, rssMiB(hpid)
		fmt.Printf("  baseline (bare fyne window): idle CPU %s, RSS %.1f MiB; window/baseline CPU ratio %.2f\n",
			pct(hUsed, *idle), rssMiB(hpid), wUsed.Seconds()/max(hUsed.Seconds(), 0.01))
	}
	hstop()
	// The user closes the window: its process ends, the tray stays.
	_ = syscall.Kill(pid, syscall.SIGTERM)
	waitGone(pid)
	time.Sleep(time.Second)
	t1 := cpuTime(tray)
	time.Sleep(*idle)
	tIdle := cpuTime(tray) - t1
	fmt.Printf("window closed (Keyport in the tray), idle over %v: %s of a core (%v); RSS %.1f MiB — target ≈ 0\n",
		*idle, pct(tIdle, *idle), tIdle, rssMiB(tray))
	if hpid != 0 {
		fmt.Printf("  tray/baseline idle CPU ratio %.3f\n", tIdle.Seconds()/max(hUsed.Seconds(), 0.01))
	}
	stop()

	// RSS with proxies on, each in front of a real go-sdk MCP server:
	// started at login (in the tray), then with the window opened.
	var upstreams []string
	for i := 0; i < *proxies; i++ {
		u, closeFn := mcpServer()
		defer closeFn()
		upstreams = append(upstreams, u)
	}
	env := newEnv(0, upstreams)
	_, tray, stop = launch(*bin, env, true)
	time.Sleep(5 * time.Second) // proxies start in the background
	listening := countListeners(env.ports)
	fmt.Printf("RSS with %d proxies on (%d listening), in the tray: %.1f MiB (peak %.1f MiB) — target ≤ 120 MiB\n",
		*proxies, listening, rssMiB(tray), hwmMiB(tray))
	if hpid != 0 {
		fmt.Printf("  baseline (bare fyne window) %.1f MiB: tray/baseline %.2f\n", hRSS, rssMiB(tray)/hRSS)
	}
	stop()
	env.cleanup()
}

func pct(d, over time.Duration) string {
	return fmt.Sprintf("%.2f%%", 100*d.Seconds()/over.Seconds())
}

// ppid is a process's parent.
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fail(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	p, _ := strconv.Atoi(fields[1]) // ppid: field 4
	return p
}

// waitGone waits for a process to exit.
func waitGone(pid int) {
	for i := 0; i < 500; i++ {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	fail(fmt.Errorf("process %d did not exit", pid))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/ui:", err)
	os.Exit(1)
}

// env is a fresh HOME and config dir with a generated catalog.
type env struct {
	home, cfg string
	ports     []int
}

// newEnv writes n generated servers, or one server per upstream URL with its
// proxy enabled in state.json.
func newEnv(n int, upstreams []string) *env {
	home, err := os.MkdirTemp("", "kp-bench")
	if err != nil {
		fail(err)
	}
	e := &env{home: home, cfg: filepath.Join(home, "kp")}
	if err := os.MkdirAll(e.cfg, 0o700); err != nil {
		fail(err)
	}
	var b strings.Builder
	b.WriteString("servers:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: server-%04d\n    description: Generated server %d\n    url: https://mcp%d.example.com/mcp\n    labels: {team: t%d, env: prod}\n", i, i, i, i%7)
	}
	state := `{"version": 1, "proxies": {`
	for i, u := range upstreams {
		fmt.Fprintf(&b, "  - name: up-%02d\n    url: %s\n", i, u)
		port := freePort()
		e.ports = append(e.ports, port)
		if i > 0 {
			state += ","
		}
		state += fmt.Sprintf(`"up-%02d": {"enabled": true, "port": %d}`, i, port)
	}
	state += "}}\n"
	if err := os.WriteFile(filepath.Join(e.cfg, "servers.yaml"), []byte(b.String()), 0o600); err != nil {
		fail(err)
	}
	if len(upstreams) > 0 {
		if err := os.WriteFile(filepath.Join(e.cfg, "state.json"), []byte(state), 0o600); err != nil {
			fail(err)
		}
	}
	return e
}

func (e *env) cleanup() { os.RemoveAll(e.home) }

// environ is os.Environ with the env's dirs and extra appended (later
// entries win in exec).
func (e *env) environ(extra ...string) []string {
	return append(append(os.Environ(),
		"HOME="+e.home,
		"XDG_CONFIG_HOME="+filepath.Join(e.home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(e.home, ".local", "share"),
		"XDG_CACHE_HOME="+filepath.Join(e.home, ".cache"),
		"KEYPORT_CONFIG_DIR="+e.cfg,
	), extra...)
}

func xvfb(args ...string) *exec.Cmd {
	cmd := exec.Command("xvfb-run", append([]string{"-a", "-s", "-screen 0 1280x800x24"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

func timeVersion(bin string) time.Duration {
	cmd := xvfb(bin, "version")
	cmd.Stdout, cmd.Stderr = nil, nil
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		fail(fmt.Errorf("%s version: %w", bin, err))
	}
	return time.Since(t0)
}

// launch starts the GUI and waits for its ready file; it returns the time
// to ready, the GUI's pid and a stop function.
func launch(bin string, e *env, background bool) (time.Duration, int, func()) {
	ready := filepath.Join(e.home, "ready")
	cmd := xvfb(bin)
	if background {
		cmd = xvfb(bin, "--background")
	}
	cmd.Env = e.environ(
		"KEYPORT_READY_FILE=" + ready,
	)
	log, _ := os.Create(filepath.Join(os.TempDir(), "kp-bench-app.log"))
	cmd.Stdout, cmd.Stderr = log, log
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		log.Close()
	}
	for {
		if b, err := os.ReadFile(ready); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				fail(fmt.Errorf("ready file: %w", err))
			}
			return time.Since(t0), pid, stop
		}
		if time.Since(t0) > 60*time.Second {
			stop()
			fail(fmt.Errorf("no window after 60 s; see %s", log.Name()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cpuTime is a process's user+system CPU time from /proc/PID/stat.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fail(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64) // utime: field 14
	st, _ := strconv.ParseInt(fields[12], 10, 64) // stime: field 15
	const hz = 100                                // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

func statusField(pid int, key string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		fail(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func rssMiB(pid int) float64 { return statusField(pid, "VmRSS") }
func hwmMiB(pid int) float64 { return statusField(pid, "VmHWM") }

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func countListeners(ports []int) int {
	n := 0
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			n++
		}
	}
	return n
}

// mcpServer starts an in-process go-sdk MCP server with one tool and
// returns its URL.
func mcpServer() (string, func()) {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-upstream", Version: "1.0.0"}, nil)
	type args struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echo the text."},
		func(ctx context.Context, req *mcp.CallToolRequest, a args) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: a.Text}}}, nil, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String() + "/mcp", func() { _ = srv.Close() }
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func medianOf(n int, f func() time.Duration) time.Duration {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		ds = append(ds, f())
	}
	return median(ds)
}
