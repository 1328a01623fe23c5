package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"keyport/app"
)

// TestEveryMethodRoundTrips: each Core method reaches the Backend with its
// arguments and brings its result back intact.
func TestEveryMethodRoundTrips(t *testing.T) {
	t.Parallel()
	fb := newFake()
	var opened atomic.Value
	_, path := served(t, fb, ServeOptions{OpenURL: func(u string) error { opened.Store(u); return nil }})
	c := dial(t, path)
	ctx := context.Background()
	ret := func(v any, err error) (any, error) { return v, err }
	tests := []struct {
		name     string
		call     func() (any, error)
		wantCall string
		want     any
	}{
		{"SetProxyEnabled", func() (any, error) { return nil, c.SetProxyEnabled(ctx, "acme", true) },
			"SetProxyEnabled acme true", nil},
		{"SetSecret", func() (any, error) { return nil, c.SetSecret("acme", "header/X-Key", "s3cr\"et\n") },
			"SetSecret acme header/X-Key s3cr\"et\n", nil},
		{"ClearSecrets", func() (any, error) { return nil, c.ClearSecrets("acme") }, "ClearSecrets acme", nil},
		{"SignIn", func() (any, error) {
			return nil, c.SignIn(ctx, "acme", func(string) error { return errors.New("the window's opener must not run") })
		}, "SignIn acme", nil},
		{"SetToolPolicy", func() (any, error) { return nil, c.SetToolPolicy("acme", []string{"search*"}, nil) },
			`SetToolPolicy acme ["search*"] []`, nil},
		{"Tools", func() (any, error) { return ret(c.Tools(ctx, "acme")) }, "Tools acme",
			[]app.Tool{{Name: "search", Description: "search things", Allowed: true}, {Name: "delete_all"}}},
		{"CheckPolicy", func() (any, error) { return ret(c.CheckPolicy([]string{"*"}, []string{"d*"}, []string{"a", "b"})) },
			`CheckPolicy ["*"] ["d*"] ["a" "b"]`, []string{"a"}},
		{"CheckPolicy keeps an empty list empty", func() (any, error) { return ret(c.CheckPolicy(nil, nil, []string{})) },
			`CheckPolicy [] [] []`, []string{}},
		{"ToolReview", func() (any, error) { return ret(c.ToolReview("acme")) }, "ToolReview acme",
			app.ToolReview{Server: "acme", Mode: "hold", Approved: 1, Changes: []app.ToolChange{{Tool: "search", Kind: "changed",
				OldHash: "sha256:aa", NewHash: "sha256:bb", Old: app.ToolText{Description: "old"}, New: app.ToolText{Description: "new"},
				DescriptionDiff: []app.DiffRow{{Op: "~", Old: "old", New: "new"}}, Flags: []string{"instruction: x"},
				Seen: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}}}},
		{"ApproveTools", func() (any, error) { return ret(c.ApproveTools("acme", []string{"search"}, false)) }, `ApproveTools acme ["search"] false`,
			[]app.ToolDecision{{Tool: "search", OldHash: "sha256:aa", NewHash: "sha256:bb"}}},
		{"BlockTools", func() (any, error) { return ret(c.BlockTools("acme", nil, true)) }, `BlockTools acme [] true`,
			[]app.ToolDecision{{Tool: "search", NewHash: "sha256:bb"}}},
		{"ResetPins", func() (any, error) { return ret(c.ResetPins("acme")) }, "ResetPins acme", 3},
		{"Audit", func() (any, error) { return ret(c.Audit("acme", 50)) }, "Audit acme 50",
			[]app.AuditEntry{{Time: time.Date(2025, 3, 1, 12, 0, 0, 5, time.UTC), Event: "request",
				Method: "tools/call", Tool: "search", Outcome: "ok", Duration: 1500 * time.Microsecond,
				Raw: `{"event":"request"}`}}},
		{"AuditPath", func() (any, error) { return c.AuditPath("acme"), nil }, "AuditPath acme", "/audit/acme.jsonl"},
		{"Clients", func() (any, error) { return c.Clients("acme"), nil }, "Clients acme",
			[]app.ClientView{{ID: "cursor", Name: "Cursor", Path: "/home/u/.cursor/mcp.json", Detected: true,
				State: app.ClientStale, Detail: "port differs", CanUndo: true}}},
		{"PreviewClient", func() (any, error) { return ret(c.PreviewClient("cursor", "acme", false)) },
			"PreviewClient cursor acme false", app.ClientChange{Path: "/p/cursor", Diff: "+ acme"}},
		{"ApplyClient", func() (any, error) { return ret(c.ApplyClient("claude", "acme", true)) },
			"ApplyClient claude acme true", app.ClientChange{Path: "/p/claude", Diff: "+ acme", Wrote: true}},
		{"UndoClient", func() (any, error) { return nil, c.UndoClient("vscode") }, "UndoClient vscode", nil},
		{"AddServer", func() (any, error) {
			return nil, c.AddServer(app.NewServer{Name: "acme", URL: "https://acme.example.com/mcp", AuthType: "headers",
				Labels: map[string]string{"team": "x"}, Headers: map[string]string{"X-Org": "1"},
				Secrets: map[string]string{"header/X-Key": "k"}})
		}, "AddServer acme https://acme.example.com/mcp headers map[team:x] map[X-Org:1] map[header/X-Key:k]", nil},
		{"RemoveServer", func() (any, error) { return nil, c.RemoveServer("acme") }, "RemoveServer acme", nil},
		{"SearchRegistry", func() (any, error) { return ret(c.SearchRegistry(ctx, "weather")) }, "SearchRegistry weather",
			[]app.RegistryResult{{ID: "io.example/weather", Name: "weather", URL: "https://{tenant}.example.com/mcp",
				Questions: []app.RegistryQuestion{{Key: "tenant", Required: true, Choices: []string{"a", "b"}}}}}},
		{"ImportFromRegistry", func() (any, error) {
			return nil, c.ImportFromRegistry(ctx, app.RegistryResult{ID: "io.example/w"}, map[string]string{"tenant": "a"})
		}, "ImportFromRegistry io.example/w map[tenant:a]", nil},
		{"SetDemoHidden", func() (any, error) { return nil, c.SetDemoHidden(true) }, "SetDemoHidden true", nil},
		{"Autostart", func() (any, error) { return c.Autostart(), nil }, "Autostart", true},
		{"SetAutostart", func() (any, error) { return nil, c.SetAutostart(false) }, "SetAutostart false", nil},
		{"WindowPrefs", func() (any, error) { return c.WindowPrefs(), nil }, "WindowPrefs", app.WindowPrefs{Width: 1200, Height: 760, Split: 0.4}},
		{"SetWindowPrefs", func() (any, error) {
			return nil, c.SetWindowPrefs(app.WindowPrefs{Width: 1000, Height: 700, Split: 0.35})
		},
			"SetWindowPrefs 1000x700 0.35", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if call := fb.lastCall(); call != tt.wantCall {
				t.Errorf("backend got %q, want %q", call, tt.wantCall)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result = %#v, want %#v", got, tt.want)
			}
		})
	}
	if u, _ := opened.Load().(string); u != "https://auth.example.com/authorize?server=acme" {
		t.Errorf("SignIn opened %q with the server's opener", u)
	}
	if fb.closed {
		t.Error("a client method closed the backend")
	}
}

// TestErrorsKeepTheirText: the UI shows err.Error(), so it must arrive as is;
// a GUI-goroutine read that fails returns its zero value.
func TestErrorsKeepTheirText(t *testing.T) {
	t.Parallel()
	fb := newFake()
	fb.fail = errFake
	_, path := served(t, fb, ServeOptions{})
	c := dial(t, path)
	calls := map[string]func() error{
		"SetProxyEnabled": func() error { return c.SetProxyEnabled(context.Background(), "nope", true) },
		"SetSecret":       func() error { return c.SetSecret("nope", "bearer", "x") },
		"Tools":           func() error { _, err := c.Tools(context.Background(), "nope"); return err },
		"ApplyClient":     func() error { _, err := c.ApplyClient("cursor", "nope", true); return err },
	}
	for name, call := range calls {
		if err := call(); err == nil || err.Error() != errFake.Error() {
			t.Errorf("%s error = %v, want %q", name, err, errFake)
		}
	}
	// A panic in the core fails the request, not the tray process.
	fb.fail = nil
	if _, err := c.Tools(context.Background(), "panic"); err == nil || !strings.Contains(err.Error(), "the tool list exploded") {
		t.Errorf("panicking Tools = %v", err)
	}
	if _, err := c.Tools(context.Background(), "acme"); err != nil {
		t.Errorf("after a panic: %v", err)
	}
	// Quit without OnQuit says what to do instead.
	if err := c.Quit(); err == nil || !strings.Contains(err.Error(), "tray") {
		t.Errorf("Quit without OnQuit = %v", err)
	}
}

// TestCancelAbortsASlowCall: ctx ends the wait at once and cancels the
// request on the server; other calls go on meanwhile.
func TestCancelAbortsASlowCall(t *testing.T) {
	t.Parallel()
	fb := newFake()
	fb.block = make(chan struct{})
	_, path := served(t, fb, ServeOptions{})
	c := dial(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Tools(ctx, "slow"); errc <- err }()
	waitFor(t, "the slow call to reach the backend", func() bool { return fb.lastCall() == "Tools slow" })
	// The connection is not blocked by the slow call.
	if err := c.SetSecret("acme", "bearer", "x"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call = %v, want context.Canceled", err)
	}
	select {
	case err := <-fb.ctxErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("backend ctx ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not cancel the backend's ctx")
	}
	// A deadline works the same way.
	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	if _, err := c.Tools(dctx, "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timed-out call = %v", err)
	}
	<-fb.ctxErr
	// An already cancelled ctx sends nothing.
	if err := c.SetProxyEnabled(ctx, "acme", true); !errors.Is(err, context.Canceled) {
		t.Errorf("call with a dead ctx = %v", err)
	}
}

// TestEventsFollowTheSnapshot: a subscriber that re-reads on an event sees
// the state the event announces; several subscribers each get it; cancel
// closes one channel only.
func TestEventsFollowTheSnapshot(t *testing.T) {
	t.Parallel()
	fb := newFake()
	fb.servers = []app.ServerView{{Name: "first", State: app.ProxyStopped}}
	_, path := served(t, fb, ServeOptions{})
	c := dial(t, path)
	if got := c.Servers(); len(got) != 1 || got[0].Name != "first" {
		t.Fatalf("initial snapshot = %+v", got)
	}
	ev1, cancel1 := c.Subscribe()
	ev2, cancel2 := c.Subscribe()
	defer cancel2()
	for i := range 30 {
		name := "s" + string(rune('a'+i%26))
		catErr := ""
		if i%2 == 1 {
			catErr = "servers.yaml line 3: bad"
		}
		want := []app.ServerView{{Name: name, State: app.ProxyRunning, Port: 9000 + i,
			Labels: map[string]string{"i": name}, Counters: app.Counters{Requests: int64(i), LatencyP50: time.Millisecond}}}
		fb.change(want, catErr, app.Event{Kind: app.EventServers, Server: name})
		for _, ch := range []<-chan app.Event{ev1, ev2} {
			select {
			case ev := <-ch:
				if ev.Server != name {
					t.Fatalf("event %+v, want server %s", ev, name)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no event")
			}
			if got := c.Servers(); !reflect.DeepEqual(got, want) || c.CatalogError() != catErr {
				t.Fatalf("after event %d: Servers = %+v (%q), want %+v (%q)", i, got, c.CatalogError(), want, catErr)
			}
		}
	}
	// Each call returns fresh values: a caller cannot corrupt the snapshot.
	got := c.Servers()
	got[0].Labels["i"] = "changed"
	if c.Servers()[0].Labels["i"] == "changed" {
		t.Error("Servers shares its maps between calls")
	}
	cancel1()
	cancel1()
	if _, ok := <-ev1; ok {
		t.Error("cancel did not close the channel")
	}
	fb.change(nil, "", app.Event{Kind: app.EventNotice, Title: "hi"})
	select {
	case ev := <-ev2:
		if ev.Kind != app.EventNotice || ev.Title != "hi" {
			t.Errorf("event = %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the other subscriber lost its events")
	}
}

// TestServerGoesAway: when the tray process stops (the user quits), pending
// and later calls fail with the clear error and Done closes; Err says it
// quit on purpose (the window then just closes).
func TestServerGoesAway(t *testing.T) {
	t.Parallel()
	fb := newFake()
	fb.block = make(chan struct{})
	srv, path := served(t, fb, ServeOptions{})
	c := dial(t, path)
	errc := make(chan error, 1)
	go func() { _, err := c.Tools(context.Background(), "slow"); errc <- err }()
	waitFor(t, "the call to reach the backend", func() bool { return fb.lastCall() == "Tools slow" })
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done did not close")
	}
	if err := <-errc; !errors.Is(err, ErrBackendQuit) {
		t.Errorf("pending call = %v", err)
	}
	if err := c.SetSecret("a", "bearer", "x"); !errors.Is(err, ErrBackendQuit) ||
		err.Error() != "Keyport quit; launch it again to use it" {
		t.Errorf("later call = %v", err)
	}
	if !errors.Is(c.Err(), ErrBackendQuit) {
		t.Errorf("Err = %v", c.Err())
	}
	if c.Clients("a") != nil || c.Autostart() || c.AuditPath("a") != "" {
		t.Error("reads after the server went away return data")
	}
	if fb.subscribers() != 0 {
		t.Errorf("%d subscriptions left on the backend", fb.subscribers())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after Close: %v", err)
	}
	if _, err := Dial(context.Background(), path); err == nil || !strings.Contains(err.Error(), "is Keyport running?") {
		t.Errorf("Dial after Close = %v", err)
	}
}

// TestServerCrashes: a tray process that vanishes without a word (it
// crashed or was killed) is told apart from one that quit: Err is
// ErrBackendGone, so the window can say so and offer to start Keyport.
func TestServerCrashes(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	path := filepath.Join(dir, "crash.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b, _ := json.Marshal(frame{Hello: &hello{Protocol: protocolVersion}, Snapshot: &snapshot{Seq: 1, Servers: json.RawMessage("[]")}})
		c.Write(append(b, '\n'))
		accepted <- c
	}()
	c := dial(t, path)
	(<-accepted).Close() // the process dies: its socket closes, nothing said
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done did not close")
	}
	if !errors.Is(c.Err(), ErrBackendGone) {
		t.Errorf("Err = %v, want ErrBackendGone", c.Err())
	}
}

// TestClientCloseAndQuit: Close ends only the connection; Quit calls OnQuit,
// which may close the server from inside.
func TestClientCloseAndQuit(t *testing.T) {
	t.Parallel()
	fb := newFake()
	quit := make(chan struct{})
	srvc := make(chan *Server, 1)
	srv, path := served(t, fb, ServeOptions{OnQuit: func() { (<-srvc).Close(); close(quit) }})
	srvc <- srv
	c1 := dial(t, path)
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	<-c1.Done()
	if err := c1.SetSecret("a", "bearer", "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close = %v", err)
	}
	if fb.closed {
		t.Error("Client.Close closed the backend")
	}
	waitFor(t, "the server to drop the closed connection", func() bool { return fb.subscribers() == 0 })

	c2 := dial(t, path)
	if err := c2.Quit(); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	select {
	case <-quit:
	case <-time.After(5 * time.Second):
		t.Fatal("OnQuit was not called")
	}
	<-c2.Done()
	if !errors.Is(c2.Err(), ErrBackendQuit) {
		t.Errorf("Err after Quit = %v", c2.Err())
	}
}

// TestBadInputHurtsNoOne: garbage, a frame without id, an unknown method, a
// duplicate id and an oversized request get errors or a closed connection;
// a well-behaved client on another connection never notices.
func TestBadInputHurtsNoOne(t *testing.T) {
	t.Parallel()
	fb := newFake()
	_, path := served(t, fb, ServeOptions{})
	good := dial(t, path)
	events, cancel := good.Subscribe()
	defer cancel()

	bad := rawConn(t, path)
	in := bufio.NewScanner(bad)
	in.Buffer(nil, maxResponse)
	next := func() frame {
		t.Helper()
		_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
		for in.Scan() {
			var f frame
			if err := json.Unmarshal(in.Bytes(), &f); err != nil {
				t.Fatalf("server sent %q: %v", in.Text(), err)
			}
			if f.Snapshot == nil {
				return f
			}
		}
		t.Fatalf("connection ended: %v", in.Err())
		return frame{}
	}
	tests := []struct{ send, wantErr string }{
		{"this is not json\n", "malformed request"},
		{"\x00\xff{{{\n", "malformed request"},
		{`{"method":"Tools"}` + "\n", "needs an id and a method"},
		{`{"id":7,"method":"DropDatabase"}` + "\n", `unknown method "DropDatabase"`},
		{`{"id":8,"method":"Tools","params":{"name":1}}` + "\n", "malformed parameters"},
		{`{"id":9,"method":"Tools","params":{"nmae":"x"}}` + "\n", "malformed parameters"},
		{`{"id":10,"method":"Tools","params":[1,2]}` + "\n", "malformed parameters"},
	}
	for _, tt := range tests {
		if _, err := bad.Write([]byte(tt.send)); err != nil {
			t.Fatal(err)
		}
		if f := next(); f.Err == nil || !strings.Contains(*f.Err, tt.wantErr) {
			t.Errorf("%q: answer %+v, want error containing %q", tt.send, f, tt.wantErr)
		}
		if err := good.SetSecret("acme", "bearer", "fine"); err != nil {
			t.Fatalf("the good client failed after %q: %v", tt.send, err)
		}
	}
	// An oversized request closes that connection only.
	huge := `{"id":11,"method":"SetSecret","params":{"name":"` + strings.Repeat("a", maxRequest) + `"}}` + "\n"
	go bad.Write([]byte(huge))
	if f := next(); f.Err == nil || !strings.Contains(*f.Err, "larger than") {
		t.Errorf("oversized request: %+v", f)
	}
	_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	for in.Scan() {
	}
	if err := in.Err(); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the oversized request's connection was not closed: %v", err)
	}
	if _, err := good.Tools(context.Background(), "acme"); err != nil {
		t.Errorf("the good client failed: %v", err)
	}
	fb.change(nil, "", app.Event{Kind: app.EventClients, Server: "acme"})
	select {
	case ev := <-events:
		if ev.Kind != app.EventClients {
			t.Errorf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Error("the good client lost its events")
	}
}

// TestDialRefusesStrangers: a listener that is not a Keyport core, or one of
// another protocol version, is refused with an error saying what to do.
func TestDialRefusesStrangers(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, first, wantErr string }{
		{"other version", `{"hello":{"protocol":99},"snapshot":{"servers":null}}`, "updated while running"},
		{"not a hello", `{"id":1,"result":null}`, "did not answer as Keyport"},
		{"garbage", `HTTP/1.1 400 Bad Request`, "garbled"},
		{"silent close", ``, "stopped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ln, err := Listen(shortDir(t))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				if tt.first != "" {
					c.Write([]byte(tt.first + "\n"))
					time.Sleep(100 * time.Millisecond)
				}
			}()
			c, err := Dial(context.Background(), ln.Addr().String())
			if err == nil {
				c.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Dial = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	// One that never answers: the ctx bounds the wait.
	ln, err := Listen(shortDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, ln.Addr().String()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial of a silent listener = %v", err)
	}
}

// TestListen: the socket is the owner's alone, replaces a stale file, and
// works from the temp dir when the config dir's path is too long.
func TestListen(t *testing.T) {
	t.Parallel()
	long := filepath.Join(shortDir(t), strings.Repeat("k", 110))
	tests := []struct {
		name  string
		dir   string
		stale bool
	}{
		{"fresh", filepath.Join(shortDir(t), "new"), false},
		{"stale socket file", shortDir(t), true},
		{"long dir", long, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := SocketPath(tt.dir)
			if tt.stale {
				if err := os.WriteFile(path, []byte("left by a crash"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ln, err := Listen(tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(tt.dir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("config dir: %v %v", fi.Mode(), err)
			}
			fi, err := os.Lstat(path)
			if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
				t.Fatalf("socket %s: mode %v, %v; want a 0600 socket", path, fi.Mode(), err)
			}
			if err := checkOwner(path); err != nil {
				t.Error(err)
			}
			s := Serve(ln, newFake(), ServeOptions{Logger: quietLog})
			c := dial(t, path)
			if err := c.SetDemoHidden(true); err != nil {
				t.Error(err)
			}
			s.Close()
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("socket left after Close: %v", err)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".kp*")); len(leftovers) != 0 {
				t.Errorf("private bind dirs left: %v", leftovers)
			}
		})
	}
	// A regular file where the socket should be is not a Keyport.
	f := filepath.Join(shortDir(t), "file")
	os.WriteFile(f, nil, 0o600)
	if err := checkOwner(f); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("checkOwner(regular file) = %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRaiseReachesEveryWindow: Server.Raise is delivered to each connected
// client, and raises that pile up while one is pending merge into it.
func TestRaiseReachesEveryWindow(t *testing.T) {
	t.Parallel()
	srv, path := served(t, newFake(), ServeOptions{})
	a, b := dial(t, path), dial(t, path)
	srv.Raise()
	for name, c := range map[string]*Client{"a": a, "b": b} {
		select {
		case <-c.Raised():
		case <-time.After(5 * time.Second):
			t.Fatalf("window %s was not raised", name)
		}
	}
	srv.Raise()
	srv.Raise()
	select {
	case <-a.Raised():
	case <-time.After(5 * time.Second):
		t.Fatal("the second raise did not arrive")
	}
	// At most one more is pending: the two raises merged or arrived apart.
	time.Sleep(50 * time.Millisecond)
	select {
	case <-a.Raised():
	default:
	}
	select {
	case <-a.Raised():
		t.Error("more raises arrived than were merged")
	case <-time.After(50 * time.Millisecond):
	}
}

// quietAdd is a backend whose AddServer changes the servers without any
// event: only the reply's snapshot can tell the window.
type quietAdd struct{ *fakeBackend }

func (q quietAdd) AddServer(s app.NewServer) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.servers = append(q.servers, app.ServerView{Name: s.Name})
	return nil
}

// TestChangeIsVisibleWhenTheCallReturns: after a call that changes the
// servers returns, Servers shows the change at once (as with the core
// in-process), before any event; a read-only call carries no snapshot.
func TestChangeIsVisibleWhenTheCallReturns(t *testing.T) {
	t.Parallel()
	_, path := served(t, quietAdd{newFake()}, ServeOptions{})
	c := dial(t, path)
	if len(c.Servers()) != 0 {
		t.Fatalf("servers before = %v", c.Servers())
	}
	if err := c.AddServer(app.NewServer{Name: "acme", URL: "https://acme.example/mcp"}); err != nil {
		t.Fatal(err)
	}
	if got := c.Servers(); len(got) != 1 || got[0].Name != "acme" {
		t.Fatalf("servers right after AddServer = %v, want acme", got)
	}
	for m := range changesServers {
		if _, ok := handlers[m]; !ok {
			t.Errorf("changesServers names %q, which is no method", m)
		}
	}
	for _, m := range []string{"Tools", "Audit", "Clients", "CheckPolicy", "SearchRegistry", "ToolReview"} {
		if changesServers[m] {
			t.Errorf("read-only %s must not carry a snapshot", m)
		}
	}
}

// TestProfilesOverTheSocket: the window sees the core's profiles in the
// snapshot and its profile calls reach the core.
func TestProfilesOverTheSocket(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.profiles = []app.ProfileView{{NewProfile: app.NewProfile{Name: "coding", Servers: []app.ProfileServer{{Server: "github", Tools: []string{"search"}}}}, State: app.ProxyRunning, Port: 4242}}
	_, path := served(t, f, ServeOptions{})
	c := dial(t, path)
	if got := c.Profiles(); len(got) != 1 || got[0].Name != "coding" || got[0].Port != 4242 || got[0].Servers[0].Tools[0] != "search" {
		t.Fatalf("profiles over the socket = %+v", got)
	}
	ctx := context.Background()
	if err := c.SetProfileEnabled(ctx, "coding", true); err != nil || f.lastCall() != "SetProfileEnabled coding true" {
		t.Errorf("SetProfileEnabled: %v, core saw %q", err, f.lastCall())
	}
	if err := c.SetProfile(app.NewProfile{Name: "x", Servers: []app.ProfileServer{{Server: "a"}}}, true); err != nil || f.lastCall() != "SetProfile x 1 true" {
		t.Errorf("SetProfile: %v, core saw %q", err, f.lastCall())
	}
	if tools, err := c.ProfileTools(ctx, "github"); err != nil || len(tools) != 1 || tools[0].Bytes != 120 {
		t.Errorf("ProfileTools: %v %v", tools, err)
	}
	if err := c.RemoveProfile("x"); err != nil || f.lastCall() != "RemoveProfile x" {
		t.Errorf("RemoveProfile: %v, core saw %q", err, f.lastCall())
	}
}
