package ui

import (
	"slices"
	"testing"

	"keyport/app"
)

func names(list []app.ServerView) []string {
	out := []string{}
	for _, s := range list {
		out = append(out, s.Name)
	}
	return out
}

func TestFilterServers(t *testing.T) {
	t.Parallel()
	servers := []app.ServerView{
		{Name: "github", Description: "Issues and code", UpstreamURL: "https://api.github.com/mcp", Labels: map[string]string{"env": "prod", "team": "core"}},
		{Name: "linear", Description: "Project tracker", UpstreamURL: "https://mcp.linear.app/mcp", Labels: map[string]string{"team": "product"}},
		{Name: "sentry", Description: "Errors", UpstreamURL: "https://mcp.sentry.dev/mcp", Labels: map[string]string{"env": "prod"}},
		{Name: "Ünïcode", Description: "Straße"},
	}
	tests := []struct {
		name, query, label string
		want               []string
	}{
		{"everything", "", "", []string{"github", "linear", "sentry", "Ünïcode"}},
		{"all labels option", "", allLabels, []string{"github", "linear", "sentry", "Ünïcode"}},
		{"name, any case", "GITHUB", "", []string{"github"}},
		{"description", "tracker", "", []string{"linear"}},
		{"url", "sentry.dev", "", []string{"sentry"}},
		{"label value", "product", "", []string{"linear"}},
		{"label pair", "env=prod", "", []string{"github", "sentry"}},
		{"every word must match", "prod errors", "", []string{"sentry"}},
		{"label filter", "", "env=prod", []string{"github", "sentry"}},
		{"label filter and query", "issues", "env=prod", []string{"github"}},
		{"label filter excludes", "linear", "env=prod", []string{}},
		{"unknown label", "", "env=dev", []string{}},
		{"no match", "nothing-like-this", "", []string{}},
		{"unicode", "straße", "", []string{"Ünïcode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := names(filterServers(servers, tt.query, tt.label))
			if !slices.Equal(got, tt.want) {
				t.Errorf("filter(%q, %q) = %v, want %v", tt.query, tt.label, got, tt.want)
			}
		})
	}
}

func TestLabelOptions(t *testing.T) {
	t.Parallel()
	got := labelOptions([]app.ServerView{
		{Labels: map[string]string{"team": "core", "env": "prod"}},
		{Labels: map[string]string{"env": "prod"}},
		{},
	})
	want := []string{allLabels, "env=prod", "team=core"}
	if !slices.Equal(got, want) {
		t.Errorf("labelOptions = %v, want %v", got, want)
	}
}

func TestToggleTool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		allow, deny       []string
		tool              string
		on                bool
		wantAllow, wantDe []string
	}{
		{"deny with no lists", nil, nil, "rm", false, nil, []string{"rm"}},
		{"deny removes literal allow", []string{"rm", "ls"}, nil, "rm", false, []string{"ls"}, []string{"rm"}},
		{"deny is idempotent", nil, []string{"rm"}, "rm", false, nil, []string{"rm"}},
		{"allow removes literal deny", nil, []string{"rm", "x_*"}, "rm", true, nil, []string{"x_*"}},
		{"allow joins an allow list", []string{"ls"}, nil, "cat", true, []string{"ls", "cat"}, nil},
		{"allow keeps an empty allow list empty", nil, nil, "cat", true, nil, nil},
	}
	for _, tt := range tests {
		a, d := toggleTool(slices.Clone(tt.allow), slices.Clone(tt.deny), tt.tool, tt.on)
		if !slices.Equal(a, tt.wantAllow) || !slices.Equal(d, tt.wantDe) {
			t.Errorf("%s: got allow=%v deny=%v, want allow=%v deny=%v", tt.name, a, d, tt.wantAllow, tt.wantDe)
		}
	}
}

func TestParsers(t *testing.T) {
	t.Parallel()
	if got := parsePatterns(" a, b_* ,, ^c$ "); !slices.Equal(got, []string{"a", "b_*", "^c$"}) {
		t.Errorf("parsePatterns = %q", got)
	}
	l, err := parseLabels("env=prod, team = core")
	if err != nil || l["env"] != "prod" || l["team"] != "core" || len(l) != 2 {
		t.Errorf("parseLabels = %v, %v", l, err)
	}
	if _, err := parseLabels("env"); err == nil {
		t.Error("parseLabels accepted a label without =")
	}
	for in, want := range map[string]string{
		"https://mcp.linear.app/mcp": "linear", "https://api.githubcopilot.com/mcp/": "githubcopilot",
		"http://localhost:8080/mcp": "localhost", "not a url": "",
		"http://127.0.0.1:9/mcp": "localhost", "http://[::1]:9/mcp": "localhost", "https://10.1.2.3/mcp": "",
	} {
		if got := suggestName(in); got != want {
			t.Errorf("suggestName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := humanBytes(2_457_600); got != "2.3 MiB" {
		t.Errorf("humanBytes = %q", got)
	}
}
