// Package peertest runs clients as another OS user, for tests of the
// same-user check (package peercred) from the attacker's side.
//
// A client is the test binary itself, re-executed with a helper mode in its
// environment under another uid (syscall.Credential): importing this package
// gives every test binary that mode (see init), so no extra program is built
// and nothing like curl is needed. The binary is linked (or copied) into a
// directory every user may enter, since the go tool's build directories are
// private to the user running the tests.
//
// Switching users needs root: RequireRoot skips a test with a clear message
// otherwise (CI and the development VM run the tests as root).
package peertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Nobody is the uid other-user clients run as (Debian's nobody).
const Nobody = 65534

// Owner, as a uid argument, runs the client as this process's user.
const Owner = -1

const (
	envMode = "KEYPORT_PEERTEST_MODE"
	envArg  = "KEYPORT_PEERTEST_ARG"
)

func init() {
	if mode := os.Getenv(envMode); mode != "" {
		os.Exit(helper(mode, os.Getenv(envArg)))
	}
}

// RequireRoot skips t unless this process may start processes as another
// user.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipping: starting a client as another OS user (uid %d) needs root; run the tests as root (CI does) to check that other users are refused", Nobody)
	}
}

// Request is one HTTP request of a client.
type Request struct {
	Method string // default POST
	URL    string
	Header map[string]string // Content-Type and Accept default to MCP's
	Body   string
	// CloseAfterSend: write the request on a new connection and close it at
	// once without reading the answer (fire and forget).
	CloseAfterSend bool
}

// Response is what the client got.
type Response struct {
	Status int
	Header http.Header
	Body   string
	Err    string // the client's error, if it got no answer
}

// Do runs requests in order as user uid (Owner: this process's user), on
// one keep-alive connection where possible, like an MCP client: the
// Mcp-Session-Id of an answer is sent with the following requests.
func Do(t testing.TB, uid int, reqs ...Request) []Response {
	t.Helper()
	arg, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := command(t, uid, "http", string(arg))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("client as uid %d: %v; stderr: %s", uid, err, errb.String())
	}
	var resps []Response
	if err := json.Unmarshal(out.Bytes(), &resps); err != nil {
		t.Fatalf("client as uid %d printed %q: %v; stderr: %s", uid, out.String(), err, errb.String())
	}
	return resps
}

// Hold connects as user uid to addr (network tcp4 or tcp6) and keeps the
// connection open until the test ends or release is called. It returns the
// client's local address, so the test can find the connection it accepts.
func Hold(t testing.TB, uid int, network, addr string) (client netip.AddrPort, release func()) {
	t.Helper()
	cmd := command(t, uid, "hold", network+" "+addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a client as uid %d: %v", uid, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			stdin.Close()
			cmd.Wait()
		})
	}
	t.Cleanup(release)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		release()
		t.Fatalf("client as uid %d did not connect: %v; stderr: %s", uid, err, errb.String())
	}
	client, err = netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		release()
		t.Fatalf("client as uid %d: %q: %v", uid, line, err)
	}
	return client, release
}

// Cmdline reads, as user uid, the command line of process pid from /proc
// (Linux): what any user of the machine can see of another user's
// processes. It returns "" when it cannot be read.
func Cmdline(t testing.TB, uid, pid int) string {
	t.Helper()
	cmd := command(t, uid, "cmdline", fmt.Sprint(pid))
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(out)
}

var exes sync.Map // testing.TB -> string: the test's copy of the binary

// command prepares the test binary in helper mode as user uid.
func command(t testing.TB, uid int, mode, arg string) *exec.Cmd {
	t.Helper()
	exe := os.Args[0]
	attr, err := sysProcAttr(uid)
	if err != nil {
		t.Skip(err)
	}
	if uid != Owner {
		exe = sharedExe(t)
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{envMode + "=" + mode, envArg + "=" + arg, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = attr
	cmd.Dir = "/"
	return cmd
}

// sharedExe returns the test binary at a path every user may execute.
func sharedExe(t testing.TB) string {
	t.Helper()
	if p, ok := exes.Load(t); ok {
		return p.(string)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "keyport-peertest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(self))
	if err := os.Link(self, dst); err != nil {
		if err := copyFile(self, dst); err != nil {
			t.Fatalf("copy the test binary where another user can run it: %v", err)
		}
	}
	if err := os.Chmod(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	exes.Store(t, dst)
	t.Cleanup(func() { exes.Delete(t) })
	return dst
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// helper is the client side, run in the re-executed binary.
func helper(mode, arg string) int {
	switch mode {
	case "http":
		var reqs []Request
		if err := json.Unmarshal([]byte(arg), &reqs); err != nil {
			fmt.Fprintln(os.Stderr, "peertest:", err)
			return 2
		}
		out, _ := json.Marshal(doAll(reqs))
		os.Stdout.Write(out)
		return 0
	case "cmdline":
		b, err := os.ReadFile("/proc/" + arg + "/cmdline")
		if err != nil {
			fmt.Fprintln(os.Stderr, "peertest:", err)
			return 1
		}
		os.Stdout.Write(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		return 0
	case "hold":
		network, addr, _ := strings.Cut(arg, " ")
		c, err := net.DialTimeout(network, addr, 5*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "peertest:", err)
			return 1
		}
		fmt.Println(c.LocalAddr().(*net.TCPAddr).AddrPort())
		io.Copy(io.Discard, os.Stdin) // until the test releases it
		c.Close()
		return 0
	}
	fmt.Fprintf(os.Stderr, "peertest: unknown mode %q\n", mode)
	return 2
}

func doAll(reqs []Request) []Response {
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	sid := ""
	var out []Response
	for _, rq := range reqs {
		if rq.Method == "" {
			rq.Method = http.MethodPost
		}
		h := http.Header{}
		if rq.Method == http.MethodPost {
			h.Set("Content-Type", "application/json")
			h.Set("Accept", "application/json, text/event-stream")
		}
		if sid != "" {
			h.Set("Mcp-Session-Id", sid)
		}
		for k, v := range rq.Header {
			h.Set(k, v)
		}
		if rq.CloseAfterSend {
			out = append(out, sendAndClose(rq, h))
			continue
		}
		req, err := http.NewRequest(rq.Method, rq.URL, strings.NewReader(rq.Body))
		if err != nil {
			out = append(out, Response{Err: err.Error()})
			continue
		}
		req.Header = h
		resp, err := client.Do(req)
		if err != nil {
			out = append(out, Response{Err: err.Error()})
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
		if err != nil {
			r.Err = err.Error()
		}
		if s := resp.Header.Get("Mcp-Session-Id"); s != "" {
			sid = s
		}
		out = append(out, r)
	}
	return out
}

// sendAndClose writes the request on a new connection and closes it at
// once.
func sendAndClose(rq Request, h http.Header) Response {
	req, err := http.NewRequest(rq.Method, rq.URL, strings.NewReader(rq.Body))
	if err != nil {
		return Response{Err: err.Error()}
	}
	req.Header = h
	c, err := net.DialTimeout("tcp", req.URL.Host, 5*time.Second)
	if err != nil {
		return Response{Err: err.Error()}
	}
	err = req.Write(c)
	c.Close()
	if err != nil {
		return Response{Err: err.Error()}
	}
	return Response{}
}
