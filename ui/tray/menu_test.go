package tray

import (
	"fmt"
	"slices"
	"testing"

	"fyne.io/fyne/v2"

	"keyport/app"
	"keyport/assets"
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

func TestMenu(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		servers []app.ServerView
		want    []string
		icon    Aggregate
		tip     string
	}{
		{"no servers", nil,
			[]string{"(disabled) No servers yet", "---", "[ ] Open Keyport", "[ ] Quit"}, Idle, "Keyport: no proxy running"},
		{"all stopped", []app.ServerView{{Name: "a", State: app.ProxyStopped}, {Name: "b", State: app.ProxyStopped}},
			[]string{"[ ] a — Stopped", "[ ] b — Stopped", "---", "[ ] Open Keyport", "[ ] Quit"}, Idle, "Keyport: no proxy running"},
		{"one running", []app.ServerView{{Name: "a", Enabled: true, State: app.ProxyRunning}, {Name: "b"}},
			[]string{"[x] a — Running", "[ ] b — Stopped", "---", "[ ] Open Keyport", "[ ] Quit"}, Running, "Keyport: 1 proxy running"},
		{"starting", []app.ServerView{{Name: "a", Enabled: true, State: app.ProxyStarting}, {Name: "b", Enabled: true, State: app.ProxyRunning}},
			[]string{"[x] a — Starting…", "[x] b — Running", "---", "[ ] Open Keyport", "[ ] Quit"}, Running, "Keyport: 2 proxies running"},
		{"error and unreachable", []app.ServerView{
			{Name: "a", Enabled: true, State: app.ProxyError, LastError: "port taken"},
			{Name: "b", Enabled: true, State: app.ProxyUnreachable},
			{Name: "c", Enabled: true, State: app.ProxyRunning}},
			[]string{"[x] a — Error", "[x] b — Upstream unreachable", "[x] c — Running", "---", "[ ] Open Keyport", "[ ] Quit"},
			Failing, "Keyport: 1 running, 2 in trouble"},
		{"sign in needed", []app.ServerView{
			{Name: "linear", AuthType: "oauth", Credential: app.CredentialStatus{Needed: true, SignInNeeded: true}},
			{Name: "b", Enabled: true, State: app.ProxyRunning}},
			[]string{"[ ] linear — Stopped", "[x] b — Running", "---", "[ ] Sign in to linear…", "---", "[ ] Open Keyport", "[ ] Quit"},
			Running, "Keyport: 1 proxy running"},
		{"tool changes to review", []app.ServerView{
			{Name: "a", Enabled: true, State: app.ProxyRunning, ToolChanges: 2},
			{Name: "b", ToolChanges: 1}, {Name: "c"}},
			[]string{"[x] a — Running", "[ ] b — Stopped", "[ ] c — Stopped", "---", "[ ] a: 2 tool changes to review…", "[ ] b: 1 tool change to review…", "---", "[ ] Open Keyport", "[ ] Quit"},
			Running, "Keyport: 1 proxy running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			act := Actions{
				Toggle: func(n string, on bool) { got = append(got, fmt.Sprintf("toggle %s %t", n, on)) },
				SignIn: func(n string) { got = append(got, "signin "+n) },
				Open:   func() { got = append(got, "open") },
				Quit:   func() { got = append(got, "quit") },
				Review: func(n string) { got = append(got, "review "+n) },
			}
			m := Menu(tt.servers, act)
			if lines := menuLines(m); !slices.Equal(lines, tt.want) {
				t.Errorf("menu =\n%q\nwant\n%q", lines, tt.want)
			}
			if icon := AggregateState(tt.servers); icon != tt.icon {
				t.Errorf("aggregate = %v, want %v", icon, tt.icon)
			}
			if tip := Tooltip(tt.servers); tip != tt.tip {
				t.Errorf("tooltip = %q, want %q", tip, tt.tip)
			}
			if !m.Items[len(m.Items)-1].IsQuit {
				t.Error("the last item must be the Quit item")
			}
			// Every item acts: a server's item toggles it to the other state.
			for _, it := range m.Items {
				if it.Action != nil && !it.Disabled {
					it.Action()
				}
			}
			var want []string
			for _, s := range tt.servers {
				want = append(want, fmt.Sprintf("toggle %s %t", s.Name, !s.Enabled))
			}
			for _, s := range tt.servers {
				if s.Credential.SignInNeeded {
					want = append(want, "signin "+s.Name)
				}
			}
			for _, s := range tt.servers {
				if s.ToolChanges > 0 {
					want = append(want, "review "+s.Name)
				}
			}
			want = append(want, "open", "quit")
			if !slices.Equal(got, want) {
				t.Errorf("actions = %q, want %q", got, want)
			}
		})
	}
}

func TestMenuIsPure(t *testing.T) {
	t.Parallel()
	servers := []app.ServerView{{Name: "a", Enabled: true, State: app.ProxyRunning}}
	before := fmt.Sprint(servers)
	act := Actions{Toggle: func(string, bool) {}, SignIn: func(string) {}, Open: func() {}, Quit: func() {}}
	if menuKey(Menu(servers, act)) != menuKey(Menu(servers, act)) {
		t.Error("the same servers gave two different menus")
	}
	if fmt.Sprint(servers) != before {
		t.Error("Menu changed its input")
	}
}

func TestIcons(t *testing.T) {
	t.Parallel()
	seen := map[string]Aggregate{}
	for _, a := range []Aggregate{Idle, Running, Failing} {
		png := Icon(a)
		if len(png) < 8 || string(png[1:4]) != "PNG" {
			t.Fatalf("icon %v is not a PNG", a)
		}
		if prev, dup := seen[string(png)]; dup {
			t.Errorf("states %v and %v share an icon", prev, a)
		}
		seen[string(png)] = a
	}
	if string(Icon(Idle)) != string(assets.TrayIdle) {
		t.Error("idle must use the idle tray icon")
	}
}

func TestAggregateState(t *testing.T) {
	t.Parallel()
	s := func(states ...app.ProxyState) []app.ServerView {
		var out []app.ServerView
		for _, st := range states {
			out = append(out, app.ServerView{State: st})
		}
		return out
	}
	tests := []struct {
		name    string
		servers []app.ServerView
		want    Aggregate
	}{
		{"no servers", nil, Idle},
		{"all stopped", s(app.ProxyStopped, app.ProxyStopped), Idle},
		{"one running", s(app.ProxyStopped, app.ProxyRunning), Running},
		{"starting counts as running", s(app.ProxyStarting), Running},
		{"an error wins", s(app.ProxyRunning, app.ProxyError), Failing},
		{"unreachable is an error", s(app.ProxyUnreachable, app.ProxyRunning), Failing},
	}
	for _, tt := range tests {
		if got := AggregateState(tt.servers); got != tt.want {
			t.Errorf("%s: aggregate = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	sv := func(name string, st app.ProxyState, why string) app.ServerView {
		return app.ServerView{Name: name, State: st, LastError: why, UpstreamURL: "https://x.example/mcp"}
	}
	tests := []struct {
		name       string
		prev, next []app.ServerView
		want       []string // titles
	}{
		{"first snapshot is silent", nil, []app.ServerView{sv("a", app.ProxyError, "boom")}, nil},
		{"no change", []app.ServerView{sv("a", app.ProxyRunning, "")}, []app.ServerView{sv("a", app.ProxyRunning, "")}, nil},
		{"start is silent", []app.ServerView{sv("a", app.ProxyStopped, "")}, []app.ServerView{sv("a", app.ProxyRunning, "")}, nil},
		{"user stop is silent", []app.ServerView{sv("a", app.ProxyRunning, "")}, []app.ServerView{sv("a", app.ProxyStopped, "")}, nil},
		{"failure", []app.ServerView{sv("a", app.ProxyStarting, "")}, []app.ServerView{sv("a", app.ProxyError, "port taken")}, []string{"a: proxy failed"}},
		{"unreachable", []app.ServerView{sv("a", app.ProxyRunning, "")}, []app.ServerView{sv("a", app.ProxyUnreachable, "")}, []string{"a: upstream unreachable"}},
		{"recovery", []app.ServerView{sv("a", app.ProxyUnreachable, "")}, []app.ServerView{sv("a", app.ProxyRunning, "")}, []string{"a: recovered"}},
		{"error to unreachable", []app.ServerView{sv("a", app.ProxyError, "")}, []app.ServerView{sv("a", app.ProxyUnreachable, "")}, []string{"a: upstream unreachable"}},
		{"two servers", []app.ServerView{sv("a", app.ProxyRunning, ""), sv("b", app.ProxyError, "")},
			[]app.ServerView{sv("a", app.ProxyError, ""), sv("b", app.ProxyRunning, "")}, []string{"a: proxy failed", "b: recovered"}},
	}
	for _, tt := range tests {
		var got []string
		for _, n := range Transitions(tt.prev, tt.next) {
			got = append(got, n.Title)
			if n.Body == "" {
				t.Errorf("%s: notice %q has no body", tt.name, n.Title)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: notices = %v, want %v", tt.name, got, tt.want)
		}
	}
	// The failure's body carries the reason.
	n := Transitions([]app.ServerView{sv("a", app.ProxyRunning, "")}, []app.ServerView{sv("a", app.ProxyError, "port 4100 taken")})
	if len(n) != 1 || n[0].Body != "port 4100 taken" {
		t.Errorf("failure notice = %+v, want the reason as body", n)
	}
}

// TestMenuShowsProfiles: profiles follow the servers, checked when on, and
// choosing one toggles its endpoint.
func TestMenuShowsProfiles(t *testing.T) {
	t.Parallel()
	var got string
	m := MenuWithProfiles([]app.ServerView{{Name: "github", State: app.ProxyRunning, Enabled: true}},
		[]app.ProfileView{{NewProfile: app.NewProfile{Name: "coding"}, Enabled: true, State: app.ProxyRunning}, {NewProfile: app.NewProfile{Name: "research"}, State: app.ProxyStopped}},
		Actions{ToggleProfile: func(name string, on bool) { got = fmt.Sprint(name, " ", on) }, Open: func() {}, Quit: func() {}})
	var labels []string
	for _, it := range m.Items {
		labels = append(labels, it.Label)
	}
	if !slices.Contains(labels, "Profile coding — Running") || !slices.Contains(labels, "Profile research — Stopped") {
		t.Fatalf("menu = %q", labels)
	}
	for _, it := range m.Items {
		if it.Label == "Profile research — Stopped" {
			if it.Checked {
				t.Error("a stopped profile is checked")
			}
			it.Action()
		}
	}
	if got != "research true" {
		t.Errorf("choosing research toggled %q", got)
	}
}
