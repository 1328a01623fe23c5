package remote

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"keyport/app"
	"keyport/app/internal/apptest"
	"keyport/app/secrets"
)

// realCore is a started *app.App over a temp home, served on a real socket.
type realCore struct {
	app     *app.App
	srv     *Server
	sock    string
	kc      secrets.Backend
	service string
	quit    chan struct{}
}

func newRealCore(t *testing.T) *realCore {
	t.Helper()
	home := shortDir(t)
	dir := filepath.Join(home, ".config", "keyport")
	kc, service := apptest.Keychain(t)
	env := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, ".config")}
	a, err := app.New(app.Options{
		ConfigDir: dir, Home: home, Keychain: kc, KeychainService: service,
		Executable: "/opt/keyport/bin/keyport", AutostartDir: filepath.Join(home, "autostart"),
		Env: func(k string) string { return env[k] }, Logger: quietLog,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close the core: %v", err)
		}
	})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	rc := &realCore{app: a, sock: SocketPath(dir), kc: kc, service: service, quit: make(chan struct{})}
	rc.srv = Serve(ln, a, ServeOptions{Logger: quietLog, OnQuit: func() { close(rc.quit) },
		OpenURL: func(string) error { return errors.New("no browser in tests") }})
	t.Cleanup(func() { rc.srv.Close() })
	return rc
}

// secret reads a credential straight from the keychain.
func (rc *realCore) secret(t *testing.T, server, kind string) (string, bool) {
	t.Helper()
	v, err := secrets.New(secrets.Options{Backend: rc.kc, Service: rc.service}).Get(server, kind)
	if errors.Is(err, secrets.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

// until waits for events until cond holds on the client's snapshot: it is
// checked after each event, so the snapshot must be fresh when one arrives.
func until(t *testing.T, events <-chan app.Event, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for !cond() {
		select {
		case <-events:
		case <-timeout:
			t.Fatalf("no event brought %s", what)
		}
	}
}

func serverIn(vs []app.ServerView, name string) (app.ServerView, bool) {
	i := slices.IndexFunc(vs, func(v app.ServerView) bool { return v.Name == name })
	if i < 0 {
		return app.ServerView{}, false
	}
	return vs[i], true
}

// TestRealCore drives the real core through the socket: a proxy turned on
// through the client really runs and serves MCP, the snapshot follows it,
// secrets reach the keychain, errors keep their text, closing the window's
// client leaves the proxy running, Quit and the server's end reach the
// client.
func TestRealCore(t *testing.T) {
	rc := newRealCore(t)
	up := apptest.NewUpstream(t, "tok-remote")
	ctx := context.Background()

	win := dial(t, rc.sock)
	events, cancel := win.Subscribe()
	defer cancel()

	// Add a server; its bearer token goes to the keychain.
	err := win.AddServer(app.NewServer{Name: "acme", URL: up.URL, AuthType: "bearer",
		Labels: map[string]string{"team": "infra"}, Secrets: map[string]string{"bearer": "tok-remote"}})
	if err != nil {
		t.Fatal(err)
	}
	until(t, events, "acme into the snapshot", func() bool { _, ok := serverIn(win.Servers(), "acme"); return ok })
	if v, ok := rc.secret(t, "acme", "bearer"); !ok || v != "tok-remote" {
		t.Errorf("keychain bearer = %q, %v", v, ok)
	}

	// Turn its proxy on through the client: it really runs.
	if err := win.SetProxyEnabled(ctx, "acme", true); err != nil {
		t.Fatal(err)
	}
	until(t, events, "acme running", func() bool {
		v, _ := serverIn(win.Servers(), "acme")
		return v.State == app.ProxyRunning && v.LocalURL != ""
	})
	v, _ := serverIn(win.Servers(), "acme")
	if names := apptest.ToolNames(t, apptest.Connect(t, v.LocalURL)); strings.Join(slices.Sorted(slices.Values(names)), ",") != "delete_all,search" {
		t.Errorf("tools through the proxy = %v", names)
	}
	if !up.SawOnly("Bearer tok-remote") {
		t.Errorf("upstream saw %v", up.Auths())
	}
	tools, err := win.Tools(ctx, "acme")
	if err != nil || len(tools) != 2 {
		t.Errorf("Tools over the socket = %+v, %v", tools, err)
	}
	if got, want := win.Clients("acme"), rc.app.Clients("acme"); len(got) == 0 || !slices.Equal(got, want) {
		t.Errorf("Clients = %+v, want %+v", got, want)
	}

	// Closing the window's client leaves the tray's proxy running.
	if err := win.Close(); err != nil {
		t.Fatal(err)
	}
	if names, err := apptest.TryToolNames(v.LocalURL); err != nil || len(names) != 2 {
		t.Fatalf("after the window closed, the proxy answers %v, %v", names, err)
	}

	// A new window sees the running proxy at once, and turns it off.
	win2 := dial(t, rc.sock)
	events2, cancel2 := win2.Subscribe()
	defer cancel2()
	if w, _ := serverIn(win2.Servers(), "acme"); w.State != app.ProxyRunning || w.Port != v.Port {
		t.Errorf("new window's first snapshot: %+v", w)
	}
	if err := win2.SetProxyEnabled(ctx, "acme", false); err != nil {
		t.Fatal(err)
	}
	until(t, events2, "acme stopped", func() bool {
		w, _ := serverIn(win2.Servers(), "acme")
		return w.State == app.ProxyStopped && !w.Enabled
	})
	if _, err := apptest.TryToolNames(v.LocalURL); err == nil {
		t.Error("the proxy still answers after SetProxyEnabled(false)")
	}

	// Secrets reach the keychain and leave it.
	if err := win2.SetSecret("acme", "bearer", "tok-rotated"); err != nil {
		t.Fatal(err)
	}
	if got, _ := rc.secret(t, "acme", "bearer"); got != "tok-rotated" {
		t.Errorf("keychain bearer after SetSecret = %q", got)
	}
	if err := win2.ClearSecrets("acme"); err != nil {
		t.Fatal(err)
	}
	if _, ok := rc.secret(t, "acme", "bearer"); ok {
		t.Error("ClearSecrets left the bearer in the keychain")
	}
	until(t, events2, "the missing credential in the snapshot", func() bool {
		w, _ := serverIn(win2.Servers(), "acme")
		return w.Credential.Needed && !w.Credential.Set
	})

	// The core's errors arrive with their text.
	tests := []struct {
		name   string
		remote func() error
		direct func() error
	}{
		{"unknown server", func() error { return win2.SetProxyEnabled(ctx, "nope", true) },
			func() error { return rc.app.SetProxyEnabled(ctx, "nope", true) }},
		{"bad policy pattern", func() error { _, err := win2.CheckPolicy([]string{"[x"}, nil, []string{"a"}); return err },
			func() error { _, err := rc.app.CheckPolicy([]string{"[x"}, nil, []string{"a"}); return err }},
		{"duplicate server", func() error { return win2.AddServer(app.NewServer{Name: "acme", URL: up.URL}) },
			func() error { return rc.app.AddServer(app.NewServer{Name: "acme", URL: up.URL}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.direct()
			if want == nil {
				t.Fatal("the core accepted it directly")
			}
			if got := tt.remote(); got == nil || got.Error() != want.Error() {
				t.Errorf("over the socket: %v; directly: %v", got, want)
			}
		})
	}

	// Quit asks the tray process to quit.
	if err := win2.Quit(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rc.quit:
	case <-time.After(5 * time.Second):
		t.Fatal("OnQuit was not called")
	}

	// The tray process stops: the window learns it and calls fail clearly.
	if err := rc.srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-win2.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done did not close when the server stopped")
	}
	if err := win2.RemoveServer("acme"); !errors.Is(err, ErrBackendQuit) {
		t.Errorf("call after the server stopped = %v", err)
	}
	if _, err := rc.app.Server("acme"); err != nil {
		t.Errorf("closing the server touched the core: %v", err)
	}
}
