package gateway

import (
	"fmt"
	"testing"
)

func TestAssignNames(t *testing.T) {
	t.Parallel()
	servers := []string{"github", "linear", "local"}
	cases := []struct {
		name   string
		items  []item
		always bool
		want   []string // exposed names; "-" for dropped
	}{
		{"unique names are kept", []item{{0, "list_issues", ""}, {1, "list_projects", ""}}, false,
			[]string{"list_issues", "list_projects"}},
		{"collisions are prefixed on every side", []item{{0, "search", ""}, {1, "search", ""}, {2, "echo", ""}}, false,
			[]string{"github_search", "linear_search", "echo"}},
		{"always prefixes everything but renames", []item{{0, "search", ""}, {1, "find", "lin_find"}}, true,
			[]string{"github_search", "lin_find"}},
		{"a rename is final and pushes the other name to its prefix", []item{{0, "list_issues", "issues"}, {1, "issues", ""}}, false,
			[]string{"issues", "linear_issues"}},
		{"a rename may take a colliding name away", []item{{0, "search", "gh_search"}, {1, "search", ""}}, false,
			[]string{"gh_search", "search"}},
		{"what still collides after prefixing is served once", []item{{0, "x", ""}, {1, "github_x", ""}, {1, "x", ""}}, false,
			[]string{"github_x", "-", "linear_x"}},
		{"two renames to one name: the first wins", []item{{0, "a", "same"}, {1, "b", "same"}}, false,
			[]string{"same", "-"}},
	}
	for _, tc := range cases {
		got := assignNames(servers, tc.items, tc.always)
		var names []string
		for _, a := range got {
			if a.exposed == "" {
				names = append(names, "-")
				if a.dropped == "" {
					t.Errorf("%s: %s dropped without a reason", tc.name, a.name)
				}
				continue
			}
			names = append(names, a.exposed)
		}
		if fmt.Sprint(names) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, names, tc.want)
		}
	}
}
