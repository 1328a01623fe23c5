//go:build linux

package launch

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"go.yaml.in/yaml/v3"
)

// fakeWatcher is a minimal org.kde.StatusNotifierWatcher: it records who
// registers a tray item.
type fakeWatcher struct {
	mu    sync.Mutex
	items []registration
}

type registration struct{ sender, path string }

// RegisterStatusNotifierItem is the watcher method tray items call.
func (w *fakeWatcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.items = append(w.items, registration{string(sender), service})
	return nil
}

func (w *fakeWatcher) registered() []registration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.items)
}

// fakeNotifications is a minimal org.freedesktop.Notifications: it records
// the notifications sent.
type fakeNotifications struct {
	mu   sync.Mutex
	sent []string // "summary: body"
}

// Notify is the method desktop notifications are sent with.
func (n *fakeNotifications) Notify(app string, replaces uint32, icon, summary, body string,
	actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, summary+": "+body)
	return uint32(len(n.sent)), nil
}

func (n *fakeNotifications) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.sent)
}

// privateBus starts a dbus-daemon of our own and returns its address.
func privateBus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bus.conf")
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:dir=` + dir + `</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>`
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+cfg, "--nofork", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// needTools skips (or fails under CI) when a tool the test runs is missing.
func need(t *testing.T, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: required under CI", what)
	}
	t.Skipf("%s (make test provides it)", what)
}

// menuItem is one dbusmenu item, flattened.
type menuItem struct {
	id      int32
	label   string
	checked bool
}

// trayMenu reads the tray item's menu over com.canonical.dbusmenu.
func readMenu(conn *dbus.Conn, dest string) ([]menuItem, error) {
	var rev uint32
	var layout struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	err := conn.Object(dest, "/StatusNotifierMenu").Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &layout)
	if err != nil {
		return nil, err
	}
	var items []menuItem
	for _, c := range layout.Children {
		fields, ok := c.Value().([]any)
		if !ok || len(fields) < 2 {
			return nil, fmt.Errorf("unexpected layout child %v", c)
		}
		props, _ := fields[1].(map[string]dbus.Variant)
		it := menuItem{id: fields[0].(int32)}
		if l, ok := props["label"]; ok {
			it.label, _ = l.Value().(string)
		}
		if ts, ok := props["toggle-state"]; ok {
			v, _ := ts.Value().(int32)
			it.checked = v == 1
		}
		if it.label != "" {
			items = append(items, it)
		}
	}
	return items, nil
}

// TestTrayOverDBus launches the real app (KEYPORT_BIN, built by make test)
// under Xvfb on a private D-Bus with a fake StatusNotifierWatcher, checks
// that its tray item registers and that the menu lists the fixture's servers
// with their states, then clicks a server's item and sees it turn on.
func TestTrayOverDBus(t *testing.T) {
	bin := os.Getenv("KEYPORT_BIN")
	need(t, "KEYPORT_BIN is not set (the keyport binary to launch)", bin != "")
	_, errD := exec.LookPath("dbus-daemon")
	need(t, "dbus-daemon is not installed", errD == nil)
	_, errX := exec.LookPath("xvfb-run")
	need(t, "xvfb-run is not installed", errX == nil)

	// The fixture catalog, in a fresh config dir and HOME.
	fixture, err := os.ReadFile(filepath.Join("..", "..", "testdata", "screenshot", "servers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cat struct{ Servers []struct{ Name string } }
	if err := yaml.Unmarshal(fixture, &cat); err != nil || len(cat.Servers) < 3 {
		t.Fatalf("fixture: %v (%d servers)", err, len(cat.Servers))
	}
	home, err := os.MkdirTemp("", "kp-tray")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	cfg := filepath.Join(home, "kp")
	if err := os.MkdirAll(cfg, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "servers.yaml"), fixture, 0o600); err != nil {
		t.Fatal(err)
	}
	// warehouse's proxy asks for a port another program holds: turning it
	// on fails, and the tray says so in a desktop notification.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	state := fmt.Sprintf(`{"version": 1, "proxies": {"warehouse": {"enabled": false, "port": %d}}}`, taken.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(filepath.Join(cfg, "state.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}

	addr := privateBus(t)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connect to the private bus: %v", err)
	}
	defer conn.Close()
	w := &fakeWatcher{}
	if err := conn.Export(w, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.kde.StatusNotifierWatcher: %v (%v)", err, reply)
	}

	notes := &fakeNotifications{}
	if err := conn.Export(notes, "/org/freedesktop/Notifications", "org.freedesktop.Notifications"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.freedesktop.Notifications", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.Notifications: %v (%v)", err, reply)
	}

	cmd := exec.Command("xvfb-run", "-a", "-s", "-screen 0 1280x800x24", bin)
	cmd.Env = append(os.Environ(),
		"DBUS_SESSION_BUS_ADDRESS="+addr,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"KEYPORT_CONFIG_DIR="+cfg,
		"KEYPORT_SCREENSHOTS=",
		"KEYPORT_READY_FILE="+filepath.Join(home, "ready"),
		// The locale of most containers: fyne must not complain about it.
		"LANG=C.UTF-8", "LC_ALL=", "LC_MESSAGES=", "LANGUAGE=",
	)
	var logs strings.Builder
	var logMu sync.Mutex
	cmd.Stdout = &lockedWriter{&logs, &logMu}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("app output:\n%s", logs.String())
			logMu.Unlock()
		}
	})

	// 1. The tray item registers with the watcher.
	var reg registration
	waitUntil(t, 60*time.Second, exited, "the tray item to register", func() bool {
		if r := w.registered(); len(r) > 0 {
			reg = r[0]
			return true
		}
		return false
	})
	if reg.path != "/StatusNotifierItem" {
		t.Errorf("registered path %q, want /StatusNotifierItem", reg.path)
	}

	// 2. Its menu lists every server with its state, then Open and Quit.
	var items []menuItem
	waitUntil(t, 30*time.Second, exited, "the menu to list the servers", func() bool {
		items, err = readMenu(conn, reg.sender)
		if err != nil {
			return false
		}
		for _, s := range cat.Servers {
			if findItem(items, s.Name) == nil {
				return false
			}
		}
		return true
	})
	var labels []string
	for _, it := range items {
		labels = append(labels, it.label)
	}
	t.Logf("tray menu: %q", labels)
	for _, s := range cat.Servers {
		it := findItem(items, s.Name)
		if it.label != s.Name+" — Stopped" || it.checked {
			t.Errorf("item %q (checked %t), want %q unchecked", it.label, it.checked, s.Name+" — Stopped")
		}
	}
	if n := len(labels); n < 2 || labels[n-2] != "Open Keyport" || labels[n-1] != "Quit" {
		t.Errorf("menu = %q, want it to end with Open Keyport, Quit", labels)
	}

	// 3. Clicking a server's item turns its proxy on: the item gets its check.
	target := findItem(items, "local-tools")
	name := strings.SplitN(target.label, " — ", 2)[0]
	call := conn.Object(reg.sender, "/StatusNotifierMenu").Call("com.canonical.dbusmenu.Event", 0,
		target.id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
	if call.Err != nil {
		t.Fatalf("click %q: %v", target.label, call.Err)
	}
	waitUntil(t, 30*time.Second, exited, name+"'s item to be checked", func() bool {
		items, err = readMenu(conn, reg.sender)
		it := findItem(items, name)
		return err == nil && it != nil && it.checked
	})
	t.Logf("after the click: %q", findItem(items, name).label)
	if it := findItem(items, name); it.label == name+" — Stopped" {
		t.Errorf("%s is checked but reads %q", name, it.label)
	}

	// 4. A proxy that cannot start: a desktop notification says why.
	target = findItem(items, "warehouse")
	call = conn.Object(reg.sender, "/StatusNotifierMenu").Call("com.canonical.dbusmenu.Event", 0,
		target.id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
	if call.Err != nil {
		t.Fatalf("click %q: %v", target.label, call.Err)
	}
	waitUntil(t, 30*time.Second, exited, "a notification about warehouse", func() bool {
		for _, n := range notes.all() {
			if strings.HasPrefix(n, "Could not start warehouse: ") {
				return true
			}
		}
		return false
	})
	t.Logf("notifications: %q", notes.all())

	// 5. The window is a process of its own: closing it leaves the tray
	// (and the proxies) running, and a second launch opens it again.
	readyPID := func() int {
		b, err := os.ReadFile(filepath.Join(home, "ready"))
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return 0
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	var window int
	waitUntil(t, 30*time.Second, exited, "the window process", func() bool { window = readyPID(); return window > 0 })
	if err := syscall.Kill(window, syscall.SIGTERM); err != nil {
		t.Fatalf("close the window process %d: %v", window, err)
	}
	waitUntil(t, 10*time.Second, exited, "the window process to end", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", window))
		return err != nil || strings.Contains(string(b), ") Z ")
	})
	if items, err = readMenu(conn, reg.sender); err != nil || findItem(items, "local-tools") == nil || !findItem(items, "local-tools").checked {
		t.Fatalf("after the window closed the tray reads %v (%v); want it running with local-tools on", items, err)
	}
	again := exec.Command(bin)
	again.Env = append(slices.Clone(cmd.Env), "DISPLAY=:0")
	if out, err := again.CombinedOutput(); err != nil || !strings.Contains(string(out), "already running") {
		t.Fatalf("second launch: %v\n%s", err, out)
	}
	waitUntil(t, 30*time.Second, exited, "a new window process", func() bool {
		if pid := readyPID(); pid > 0 && pid != window {
			window = pid
			return true
		}
		return false
	})

	// 6. Quit in the tray ends Keyport: the proxies stop, the window closes.
	items, err = readMenu(conn, reg.sender)
	quit := findLabel(items, "Quit")
	if err != nil || quit == nil {
		t.Fatalf("no Quit item: %v %v", items, err)
	}
	call = conn.Object(reg.sender, "/StatusNotifierMenu").Call("com.canonical.dbusmenu.Event", 0,
		quit.id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
	if call.Err != nil {
		t.Fatalf("click Quit: %v", call.Err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("Keyport exited with %v after Quit", err)
		}
		exited <- err // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("Keyport still runs 20 s after Quit")
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", window)); err == nil {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", window))
		if !strings.Contains(string(b), ") Z ") {
			t.Errorf("the window process %d outlived Quit", window)
		}
	}
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logs.String(), "Error parsing user locale") {
		t.Error("fyne complained about the C.UTF-8 locale")
	}
}

func findLabel(items []menuItem, label string) *menuItem {
	for i := range items {
		if items[i].label == label {
			return &items[i]
		}
	}
	return nil
}

func findItem(items []menuItem, server string) *menuItem {
	for i := range items {
		if strings.HasPrefix(items[i].label, server+" — ") {
			return &items[i]
		}
	}
	return nil
}

// waitUntil polls cond until it holds, the app exits, or the time is up.
func waitUntil(t *testing.T, d time.Duration, exited <-chan error, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		select {
		case err := <-exited:
			t.Fatalf("the app exited (%v) before %s", err, what)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

type lockedWriter struct {
	b  *strings.Builder
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
