package app

import (
	"context"
	"strings"
	"testing"

	"keyport/app/internal/apptest"
	"keyport/proxymgr"
)

// TestAppTakesThePortOverFromABridge: a bridge (or keyport proxy) serves a
// server on its assigned port before the tray app starts; the app, told to
// run that proxy, says another Keyport process serves it (clients work)
// and takes the port over once that process ends, on the same port.
func TestAppTakesThePortOverFromABridge(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t)
	up := apptest.NewUpstream(t, "tok-takeover")
	writeServers(t, te, serversYAML(acmeYAML(up.URL, "")))
	other := newTestApp(t, te) // the other process
	other.SetSecret("acme", "bearer", "tok-takeover")
	u, stop, err := other.ServeProxy("acme", 0, nil)
	if err != nil {
		t.Fatal(err)
	}

	tray := newTestApp(t, te)
	if err := tray.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tray.SetProxyEnabled(context.Background(), "acme", true); err != nil {
		t.Fatalf("turning acme on while another process serves it: %v", err)
	}
	v, _ := tray.Server("acme")
	if v.State != ProxyRunning || v.LocalURL != u || !strings.Contains(v.LastError, "another Keyport process") {
		t.Fatalf("view while another process serves acme: state %s, url %s (other %s), note %q", v.State, v.LocalURL, u, v.LastError)
	}
	if st, ok := tray.manager().Status("acme"); ok && st.State == proxymgr.StateRunning {
		t.Fatal("the app's own proxy runs although the port is taken")
	}

	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the app to take the port over", func() bool {
		st, ok := tray.manager().Status("acme")
		v, _ := tray.Server("acme")
		return ok && st.State == proxymgr.StateRunning && v.LastError == ""
	})
	v, _ = tray.Server("acme")
	if v.LocalURL != u || v.LastError != "" {
		t.Errorf("after the takeover: url %s (want %s), note %q", v.LocalURL, u, v.LastError)
	}
	if got := apptest.ToolNames(t, apptest.Connect(t, u)); len(got) != 2 {
		t.Errorf("tools at the same URL after the takeover = %v", got)
	}
}
