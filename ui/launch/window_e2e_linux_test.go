package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	_ "image/png" // screenshots
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/ui"
)

// TestFirstMinuteInTheRealWindow is a new user's first minute, driven as a
// person drives it: the real bin/keyport (the tray process, which starts
// the window process) on an X server of the test's own, the session's real
// keychain (scripts/session.sh), X11 pointer clicks and key presses sent
// with xdotool at the places the window reports for its named widgets
// (KEYPORT_TEST_LAYOUT), and a screenshot at each step.
//
// It checks that the window opens at a size that fits the screen, that
// the demo greets the user without a warning, that its switch starts a
// proxy that keyport-cli reports and that injects the demo's token (whoami
// through a go-sdk client), that the switch stops it, that Escape closes
// the Add server dialog, and that the window's size and divider position
// survive closing and reopening it.
//
// The screenshots are kept (their folder is logged) when the test fails,
// or always in KEYPORT_E2E_SHOTS when that names a folder.
func TestFirstMinuteInTheRealWindow(t *testing.T) {
	bin := os.Getenv("KEYPORT_BIN")
	need(t, "KEYPORT_BIN is not set (the keyport binary to launch)", bin != "")
	cli := filepath.Join(filepath.Dir(bin), "keyport-cli")
	_, errCLI := os.Stat(cli)
	need(t, "keyport-cli is not built beside KEYPORT_BIN (make build)", errCLI == nil)
	for _, tool := range []string{"Xvfb", "xdotool", "import"} {
		_, err := exec.LookPath(tool)
		need(t, tool+" is not installed (make deps)", err == nil)
	}
	need(t, "no session D-Bus with a keychain (run under scripts/session.sh)",
		os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" && os.Getenv("KEYPORT_TEST_KEYRING") == "1")

	w := newRealWindow(t, bin, cli, "1600x1000")
	w.start()

	// The window fits the screen's work area and uses a good part of it
	// (it opened at 900×600 on any screen).
	width, height := w.geometry()
	if width < 1200 || height < 800 || width > 1600 || height > 1000 {
		t.Errorf("the window opened at %d×%d on a 1600×1000 screen", width, height)
	}

	// First run: the demo, and no warning anywhere.
	l := w.layout()
	row, ok := l.Widgets["row:demo"]
	if !ok {
		t.Fatalf("the demo's row is not on screen; widgets: %v", names(l))
	}
	if row.Tone != "" || l.Widgets["detail.status"].Tone != "" || l.Widgets["detail.credential"].Tone == "warning" {
		t.Errorf("the first run shows a warning: row %+v, status %+v, credential %+v",
			row, l.Widgets["detail.status"], l.Widgets["detail.credential"])
	}
	shot := w.screenshot("1-first-run")
	if n := countColour(shot, warningColours); n > 30 {
		t.Errorf("the first run's window has %d pixels in the warning colour (screenshot %s)", n, w.path("1-first-run"))
	}

	// Flip the demo's switch: keyport-cli sees the proxy running.
	w.click(l, "switch:demo")
	var url string
	w.waitFor("keyport-cli ls to report the demo's proxy running", func() bool {
		s := w.lsDemo()
		url = s.Proxy
		return s.ProxyState == "running" && url != ""
	})
	w.waitFor("the row to turn green", func() bool { return w.layout().Widgets["detail.status"].Tone == "success" })
	shot = w.screenshot("2-demo-on")
	if n := countColour(shot, successColours); n < 50 {
		t.Errorf("the running demo shows %d green pixels; want its status in green (screenshot %s)", n, w.path("2-demo-on"))
	}
	if c := w.layout().Widgets["detail.credential"]; !strings.Contains(c.Text, "keychain") || strings.Contains(c.Text, "()") {
		t.Errorf("the demo's credential says %q", c.Text)
	}

	// whoami through the proxy: Keyport injected the token from the keychain.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "first-minute", Version: "1.0.0"}, nil)
	sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	sess.Close()
	if err != nil || res.IsError {
		t.Fatalf("whoami through the proxy: %v %+v", err, res)
	}
	if txt := res.Content[0].(*mcp.TextContent).Text; !strings.HasPrefix(txt, "Authenticated") {
		t.Errorf("whoami through the proxy says %q", txt)
	}

	// And off again.
	w.click(w.layout(), "switch:demo")
	w.waitFor("keyport-cli ls to report the demo's proxy stopped", func() bool { return w.lsDemo().ProxyState == "stopped" })
	w.screenshot("3-demo-off")

	// Add server opens a dialog; Escape closes it.
	w.click(w.layout(), "button:Add server")
	w.waitFor("the Add server dialog", func() bool { return strings.Join(w.layout().Dialogs, ",") == "Add server" })
	w.screenshot("4-add-server")
	w.key("Escape")
	w.waitFor("Escape to close the dialog", func() bool { return len(w.layout().Dialogs) == 0 })
	w.screenshot("5-escape")

	// Resize the window and drag the divider, close the window (Ctrl+W;
	// this desktop shows no tray icon, so Keyport says it keeps running:
	// Enter is "Keep running"), launch Keyport again: the window comes back
	// as it was left.
	w.xdotool("windowsize", w.wid, "1100", "720")
	w.waitFor("the window to take its new size", func() bool { l := w.layout(); return l.Width == 1100 && l.Height == 720 })
	l = w.layout()
	div, ok := l.Widgets["divider"]
	if !ok {
		t.Fatalf("divider not found; widgets: %v", names(l))
	}
	x, y := div.Center()
	w.xdotool("mousemove", "--window", w.wid, strconv.Itoa(x), strconv.Itoa(y), "mousedown", "1")
	w.xdotool("mousemove", "--window", w.wid, strconv.Itoa(x+120), strconv.Itoa(y), "mouseup", "1")
	var split float64
	w.waitFor("the divider to move", func() bool { split = w.layout().Split; return math.Abs(split-l.Split) > 0.05 })
	w.screenshot("6-resized")
	w.key("ctrl+w")
	w.waitFor("the window to say Keyport keeps running", func() bool {
		return strings.Join(w.layout().Dialogs, ",") == "Keyport keeps running"
	})
	w.screenshot("7-keeps-running")
	w.key("Return")
	w.waitFor("the window process to end", func() bool { return !alive(w.windowPID) })

	again := exec.Command(bin)
	again.Env = w.env
	if out, err := again.CombinedOutput(); err != nil {
		t.Fatalf("launching Keyport again: %v\n%s", err, out)
	}
	w.waitWindow()
	w.waitFor("the reopened window's size", func() bool { width, height = w.geometry(); return width == 1100 && height == 720 })
	if got := w.layout().Split; math.Abs(got-split) > 0.01 {
		t.Errorf("the reopened window's divider is at %.3f, was left at %.3f", got, split)
	}
	w.screenshot("8-reopened")
}

// realWindow is bin/keyport running on an X server of the test's own.
type realWindow struct {
	t         *testing.T
	bin, cli  string
	env       []string
	shots     string // screenshots folder
	ready     string // KEYPORT_READY_FILE
	layoutAt  string // KEYPORT_TEST_LAYOUT
	logs      bytes.Buffer
	tray      *exec.Cmd
	exited    chan error
	windowPID int
	wid       string // the X window
	seq       int    // the last layout read
}

func newRealWindow(t *testing.T, bin, cli, screen string) *realWindow {
	// KEYPORT_E2E_SHOTS=DIR keeps the screenshots there whatever the outcome.
	keep := os.Getenv("KEYPORT_E2E_SHOTS")
	shots, err := os.MkdirTemp(keep, "keyport-first-minute-")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	w := &realWindow{t: t, bin: bin, cli: cli, shots: shots,
		ready: filepath.Join(home, "ready"), layoutAt: filepath.Join(home, "layout.json")}
	t.Cleanup(func() {
		if t.Failed() {
			_ = os.WriteFile(filepath.Join(shots, "keyport.log"), w.logs.Bytes(), 0o600)
			t.Logf("screenshots and the app's log are kept in %s", shots)
		} else if keep == "" {
			os.RemoveAll(shots)
		}
	})
	display := startXvfbSized(t, screen)
	if err := os.Mkdir(filepath.Join(home, "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	w.env = append(os.Environ(),
		"DISPLAY="+display,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"),
		"KEYPORT_CONFIG_DIR="+filepath.Join(home, "kp"),
		"KEYPORT_SCREENSHOTS=",
		"KEYPORT_READY_FILE="+w.ready,
		EnvTestLayout+"="+w.layoutAt,
	)
	return w
}

// start launches the tray process and waits for its window.
func (w *realWindow) start() {
	t := w.t
	w.tray = exec.Command(w.bin)
	w.tray.Env = w.env
	w.tray.Stdout, w.tray.Stderr = &w.logs, &w.logs
	w.tray.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := w.tray.Start(); err != nil {
		t.Fatal(err)
	}
	w.exited = make(chan error, 1)
	go func() { w.exited <- w.tray.Wait() }()
	t.Cleanup(func() {
		// Quit as the tray's Quit does (SIGTERM: proxies stop gracefully),
		// then make sure nothing is left.
		_ = w.tray.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.exited:
		case <-time.After(10 * time.Second):
			t.Error("Keyport did not quit on SIGTERM")
		}
		syscall.Kill(-w.tray.Process.Pid, syscall.SIGKILL)
	})
	w.waitWindow()
}

// waitWindow waits for a (new) window process and its X window.
func (w *realWindow) waitWindow() {
	t := w.t
	t.Helper()
	old := w.windowPID
	// A new window process counts its layouts from 1.
	os.Remove(w.layoutAt)
	w.seq = 0
	waitUntil(t, 60*time.Second, w.exited, "the window process", func() bool {
		b, err := os.ReadFile(w.ready)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 0 || pid == old {
			return false
		}
		w.windowPID = pid
		return true
	})
	waitUntil(t, 20*time.Second, w.exited, "Keyport's X window", func() bool {
		cmd := exec.Command("xdotool", "search", "--onlyvisible", "--name", "^Keyport$")
		cmd.Env = w.env
		out, err := cmd.Output()
		ids := strings.Fields(string(out))
		if err != nil || len(ids) == 0 {
			return false
		}
		w.wid = ids[len(ids)-1]
		return true
	})
	// The first frames take a moment under a software renderer.
	w.waitFor("the window to lay out", func() bool { return len(w.layout().Widgets) > 0 })
}

// layout asks the window process where its widgets are (SIGUSR1) and
// reads the answer.
func (w *realWindow) layout() ui.Layout {
	t := w.t
	t.Helper()
	if err := syscall.Kill(w.windowPID, syscall.SIGUSR1); err != nil {
		t.Fatalf("ask the window for its layout: %v", err)
	}
	var got struct {
		Seq int `json:"seq"`
		ui.Layout
	}
	waitUntil(t, 10*time.Second, w.exited, "the window's layout", func() bool {
		b, err := os.ReadFile(w.layoutAt)
		if err != nil || json.Unmarshal(b, &got) != nil {
			return false
		}
		return got.Seq > w.seq
	})
	w.seq = got.Seq
	return got.Layout
}

// click clicks the middle of the named widget, or fails saying it is not
// on screen.
func (w *realWindow) click(l ui.Layout, name string) {
	w.t.Helper()
	b, ok := l.Widgets[name]
	if !ok {
		w.t.Fatalf("%s not found in the window; on screen: %v", strings.Replace(name, ":", " ", 1), names(l))
	}
	x, y := b.Center()
	w.xdotool("mousemove", "--window", w.wid, strconv.Itoa(x), strconv.Itoa(y), "click", "1")
}

// key presses a key in the window (X11 key events, with the focus on it).
func (w *realWindow) key(k string) {
	w.t.Helper()
	w.xdotool("windowfocus", "--sync", w.wid)
	w.xdotool("key", "--clearmodifiers", k)
}

func (w *realWindow) xdotool(args ...string) {
	w.t.Helper()
	cmd := exec.Command("xdotool", args...)
	cmd.Env = w.env
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("xdotool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// geometry is the X window's size.
func (w *realWindow) geometry() (width, height int) {
	w.t.Helper()
	cmd := exec.Command("xdotool", "getwindowgeometry", "--shell", w.wid)
	cmd.Env = w.env
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("xdotool getwindowgeometry: %v", err)
	}
	for _, line := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(line, "WIDTH="); ok {
			width, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(line, "HEIGHT="); ok {
			height, _ = strconv.Atoi(v)
		}
	}
	return width, height
}

func (w *realWindow) path(name string) string { return filepath.Join(w.shots, name+".png") }

// screenshot captures the window as the X server shows it.
func (w *realWindow) screenshot(name string) image.Image {
	w.t.Helper()
	time.Sleep(300 * time.Millisecond) // let the frame after the last change draw
	cmd := exec.Command("import", "-window", w.wid, w.path(name))
	cmd.Env = w.env
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("screenshot %s: %v\n%s", name, err, out)
	}
	f, err := os.Open(w.path(name))
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		w.t.Fatalf("screenshot %s: %v", name, err)
	}
	return img
}

// lsServer is a row of keyport-cli ls --format json.
type lsServer struct {
	Name       string `json:"name"`
	Proxy      string `json:"proxy"`
	ProxyState string `json:"proxy_state"`
}

// lsDemo is the demo's row as keyport-cli reports it.
func (w *realWindow) lsDemo() lsServer {
	w.t.Helper()
	cmd := exec.Command(w.cli, "ls", "--format", "json")
	cmd.Env = w.env
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("keyport-cli ls: %v", err)
	}
	var rows []lsServer
	if err := json.Unmarshal(out, &rows); err != nil {
		w.t.Fatalf("keyport-cli ls --format json: %v\n%s", err, out)
	}
	for _, r := range rows {
		if r.Name == "demo" {
			return r
		}
	}
	w.t.Fatalf("keyport-cli ls lists no demo:\n%s", out)
	return lsServer{}
}

func (w *realWindow) waitFor(what string, cond func() bool) {
	w.t.Helper()
	waitUntil(w.t, 20*time.Second, w.exited, what, cond)
}

// names lists the named widgets of a layout, for failure messages.
func names(l ui.Layout) string {
	var out []string
	for n := range l.Widgets {
		out = append(out, n)
	}
	return fmt.Sprint(out)
}

// The status colours of Keyport's theme (ui/theme.go), light and dark.
var (
	warningColours = []color.NRGBA{{0xb4, 0x53, 0x09, 0xff}, {0xfb, 0x92, 0x3c, 0xff}}
	successColours = []color.NRGBA{{0x15, 0x80, 0x3d, 0xff}, {0x4a, 0xde, 0x80, 0xff}}
)

// countColour counts the pixels within a small distance of one of cs (text
// is anti-aliased: its cores have the colour itself).
func countColour(img image.Image, cs []color.NRGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			for _, c := range cs {
				if absDiff(p.R, c.R)+absDiff(p.G, c.G)+absDiff(p.B, c.B) < 24 {
					n++
					break
				}
			}
		}
	}
	return n
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
