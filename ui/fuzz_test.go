package ui

import (
	"strings"
	"testing"

	"keyport/app"
)

// FuzzParseLabels: labels typed in the Add server dialog never panic, and
// whatever parses has non-empty keys without surrounding space.
func FuzzParseLabels(f *testing.F) {
	for _, s := range []string{"env=prod, team=core", "", "a", "=b", "a=b=c", " , ,", "ü=ß"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parseLabels(s)
		if err != nil {
			return
		}
		for k, v := range l {
			if k == "" || strings.TrimSpace(k) != k || strings.TrimSpace(v) != v || strings.Contains(k, ",") {
				t.Fatalf("parseLabels(%q) gave label %q=%q", s, k, v)
			}
		}
	})
}

// FuzzParsePatterns: pattern fields never yield empty or padded patterns.
func FuzzParsePatterns(f *testing.F) {
	for _, s := range []string{"a, b_*, ^c$", ",,", " x "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range parsePatterns(s) {
			if p == "" || strings.TrimSpace(p) != p || strings.Contains(p, ",") {
				t.Fatalf("parsePatterns(%q) gave %q", s, p)
			}
		}
	})
}

// FuzzFilter: any query and label filter answers a subset, in order.
func FuzzFilter(f *testing.F) {
	f.Add("GIT hub", "env=prod")
	f.Add("", "")
	f.Add("\xff\xfe", "=")
	servers := []string{"github", "linear", "Ünïcode"}
	f.Fuzz(func(t *testing.T, q, label string) {
		list := filterServers(sampleViews(servers), q, label)
		if len(list) > len(servers) {
			t.Fatalf("filter grew the list")
		}
	})
}

func sampleViews(names []string) []app.ServerView {
	out := make([]app.ServerView, len(names))
	for i, n := range names {
		out[i] = app.ServerView{Name: n, Description: "desc " + n, Labels: map[string]string{"env": "prod"}}
	}
	return out
}
