package ui

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"keyport/app"
)

// This file holds the window's pure logic: filtering, label options and
// status texts.
// Nothing here touches a widget, so it is tested with plain table tests.

// allLabels is the label filter's "no filter" option.
const allLabels = "All labels"

// filterServers returns the servers whose name, description, URL or labels
// contain every word of query (case-insensitive) and that carry label (a
// "key=value" string; "" or allLabels means any). It keeps the input order.
func filterServers(servers []app.ServerView, query, label string) []app.ServerView {
	words := strings.Fields(strings.ToLower(query))
	key, value, byLabel := strings.Cut(label, "=")
	if label == "" || label == allLabels {
		byLabel = false
	}
	out := make([]app.ServerView, 0, len(servers))
	for _, s := range servers {
		if byLabel {
			if v, ok := s.Labels[key]; !ok || v != value {
				continue
			}
		}
		if len(words) > 0 && !matchesAll(s, words) {
			continue
		}
		out = append(out, s)
	}
	return out
}

func matchesAll(s app.ServerView, words []string) bool {
	for _, w := range words {
		if !serverHas(s, w) {
			return false
		}
	}
	return true
}

// serverHas reports whether the lower-case word appears in any searchable
// field of s, without allocating a joined haystack per server.
func serverHas(s app.ServerView, w string) bool {
	if containsFold(s.Name, w) || containsFold(s.Description, w) || containsFold(s.UpstreamURL, w) {
		return true
	}
	for k, v := range s.Labels {
		if containsFold(k, w) || containsFold(v, w) || containsFold(k+"="+v, w) {
			return true
		}
	}
	return false
}

// containsFold reports whether lower-case needle is in s, ignoring case.
func containsFold(s, needle string) bool {
	if len(needle) > len(s) {
		return false
	}
	for i := 0; i+len(needle) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(needle)], needle) {
			return true
		}
	}
	return false
}

// labelOptions lists every "key=value" label of servers, sorted, after the
// "All labels" option.
func labelOptions(servers []app.ServerView) []string {
	seen := map[string]bool{}
	for _, s := range servers {
		for k, v := range s.Labels {
			seen[k+"="+v] = true
		}
	}
	opts := make([]string, 0, len(seen)+1)
	for l := range seen {
		opts = append(opts, l)
	}
	sort.Strings(opts)
	return append([]string{allLabels}, opts...)
}

// sortedLabels returns a server's labels as sorted "key=value" strings.
func sortedLabels(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for k, v := range labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// statusTip is the hover text of a server's status dot: the state, and the
// reason when there is one.
func statusTip(s app.ServerView) string {
	t := s.State.Label()
	if s.LastError != "" && (s.State == app.ProxyError || s.State == app.ProxyUnreachable) {
		t += ": " + s.LastError
	}
	if s.State == app.ProxyRunning && s.LocalURL != "" {
		t += " on " + s.LocalURL
	}
	return t
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// indexOf returns the position of the server named name in list, or -1.
func indexOf(list []app.ServerView, name string) int {
	return slices.IndexFunc(list, func(s app.ServerView) bool { return s.Name == name })
}

// humanBytes formats a byte count for the counters panel.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
