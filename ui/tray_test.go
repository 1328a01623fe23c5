package ui

import (
	"fmt"
	"slices"
	"testing"

	"fyne.io/fyne/v2"

	"keyport/app"
)

// menuLines renders a menu as lines: "[x] label", "[ ] label", "---",
// "(disabled) label".
func menuLines(m *fyne.Menu) []string {
	var out []string
	for _, it := range m.Items {
		switch {
		case it.IsSeparator:
			out = append(out, "---")
		case it.Disabled:
			out = append(out, "(disabled) "+it.Label)
		case it.Checked:
			out = append(out, "[x] "+it.Label)
		default:
			out = append(out, "[ ] "+it.Label)
		}
	}
	return out
}

func TestTrayMenu(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		servers []app.ServerView
		want    []string
		icon    fyne.Resource
	}{
		{"no servers", nil,
			[]string{"(disabled) No servers yet", "---", "[ ] Open Keyport", "[ ] Quit"}, trayIdle},
		{"all stopped", []app.ServerView{{Name: "a", State: app.ProxyStopped}, {Name: "b", State: app.ProxyStopped}},
			[]string{"[ ] a — Stopped", "[ ] b — Stopped", "---", "[ ] Open Keyport", "[ ] Quit"}, trayIdle},
		{"one running", []app.ServerView{{Name: "a", Enabled: true, State: app.ProxyRunning}, {Name: "b"}},
			[]string{"[x] a — Running", "[ ] b — Stopped", "---", "[ ] Open Keyport", "[ ] Quit"}, trayActive},
		{"starting", []app.ServerView{{Name: "a", Enabled: true, State: app.ProxyStarting}},
			[]string{"[x] a — Starting…", "---", "[ ] Open Keyport", "[ ] Quit"}, trayActive},
		{"error and unreachable", []app.ServerView{
			{Name: "a", Enabled: true, State: app.ProxyError, LastError: "port taken"},
			{Name: "b", Enabled: true, State: app.ProxyUnreachable},
			{Name: "c", Enabled: true, State: app.ProxyRunning}},
			[]string{"[x] a — Error", "[x] b — Upstream unreachable", "[x] c — Running", "---", "[ ] Open Keyport", "[ ] Quit"}, trayError},
		{"sign in needed", []app.ServerView{
			{Name: "linear", AuthType: "oauth", Credential: app.CredentialStatus{Needed: true, SignInNeeded: true}},
			{Name: "b", Enabled: true, State: app.ProxyRunning}},
			[]string{"[ ] linear — Stopped", "[x] b — Running", "---", "[ ] Sign in needed: linear…", "---", "[ ] Open Keyport", "[ ] Quit"}, trayActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			act := trayActions{
				Toggle: func(n string, on bool) { got = append(got, fmt.Sprintf("toggle %s %t", n, on)) },
				SignIn: func(n string) { got = append(got, "signin "+n) },
				Open:   func() { got = append(got, "open") },
				Quit:   func() { got = append(got, "quit") },
			}
			m := trayMenu(tt.servers, act)
			if lines := menuLines(m); !slices.Equal(lines, tt.want) {
				t.Errorf("menu =\n%q\nwant\n%q", lines, tt.want)
			}
			if icon := trayIcon(tt.servers); icon != tt.icon {
				t.Errorf("icon = %s, want %s", icon.Name(), tt.icon.Name())
			}
			last := m.Items[len(m.Items)-1]
			if !last.IsQuit {
				t.Error("the last item must be the Quit item (IsQuit), or fyne adds a second one")
			}
			// Every item acts: a server's item toggles it to the other state.
			var want []string
			for _, it := range m.Items {
				if it.Action != nil && !it.Disabled {
					it.Action()
				}
			}
			for _, s := range tt.servers {
				want = append(want, fmt.Sprintf("toggle %s %t", s.Name, !s.Enabled))
			}
			for _, s := range tt.servers {
				if s.Credential.SignInNeeded {
					want = append(want, "signin "+s.Name)
				}
			}
			want = append(want, "open", "quit")
			if !slices.Equal(got, want) {
				t.Errorf("actions = %q, want %q", got, want)
			}
		})
	}
}

func TestTrayMenuIsPure(t *testing.T) {
	t.Parallel()
	servers := []app.ServerView{{Name: "a", Enabled: true, State: app.ProxyRunning}}
	before := fmt.Sprint(servers)
	act := trayActions{Toggle: func(string, bool) {}, SignIn: func(string) {}, Open: func() {}, Quit: func() {}}
	m1, m2 := trayMenu(servers, act), trayMenu(servers, act)
	if menuKey(m1) != menuKey(m2) {
		t.Error("the same servers gave two different menus")
	}
	if fmt.Sprint(servers) != before {
		t.Error("trayMenu changed its input")
	}
}
