package policy

import (
	"strings"
	"testing"
)

func TestAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		allow, deny []string
		yes, no     []string
	}{
		{name: "empty allows all", yes: []string{"a", "delete_repo", ""}},
		{name: "literal allow", allow: []string{"search"}, yes: []string{"search"}, no: []string{"Search", "search2", "xsearch"}},
		{name: "literal deny", deny: []string{"rm"}, yes: []string{"ls", "rmdir"}, no: []string{"rm"}},
		{name: "glob star", allow: []string{"github_*"}, yes: []string{"github_", "github_list/issues"}, no: []string{"gitlab_x", "xgithub_a"}},
		{name: "glob question", allow: []string{"read_?"}, yes: []string{"read_a", "read_é"}, no: []string{"read_", "read_ab"}},
		{name: "glob class", allow: []string{"[a-c]x", "[!a]y"}, yes: []string{"ax", "cx", "by"}, no: []string{"dx", "ay"}},
		{name: "glob meta quoted", allow: []string{"a.b*"}, yes: []string{"a.b", "a.bc"}, no: []string{"axb"}},
		{name: "regexp", allow: []string{"^(get|list)_.*$"}, yes: []string{"get_x", "list_"}, no: []string{"set_x", "xget_y"}},
		{name: "deny wins", allow: []string{"*"}, deny: []string{"delete_*"}, yes: []string{"create_repo"}, no: []string{"delete_repo"}},
		{name: "deny wins over literal allow", allow: []string{"delete_repo"}, deny: []string{"^delete_.*$"}, no: []string{"delete_repo"}},
		{name: "newline in name", allow: []string{"a*"}, yes: []string{"a\nb"}},
		{name: "regexp anchored", deny: []string{"^rm$"}, yes: []string{"rmx", "xrm"}, no: []string{"rm"}},
		// Deny ignores case (a server may look tools up ignoring it); allow does not.
		{name: "deny literal folds", deny: []string{"rm"}, yes: []string{"rmx"}, no: []string{"RM", "Rm"}},
		{name: "deny glob folds", deny: []string{"delete_*"}, yes: []string{"undelete_x"}, no: []string{"DELETE_repo", "Delete_X", "delete_Key"}},
		{name: "deny regexp folds", deny: []string{"^drop_.*$"}, no: []string{"DROP_TABLE", "drop_ſchema"}},
		{name: "deny class folds", deny: []string{"[a-c]x"}, no: []string{"AX", "Bx"}},
		{name: "allow stays exact", allow: []string{"search", "get_*"}, yes: []string{"search", "get_x"}, no: []string{"SEARCH", "GET_x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Compile(tc.allow, tc.deny)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.yes {
				if !p.Allowed(n) {
					t.Errorf("Allowed(%q) = false, want true (%s)", n, p)
				}
			}
			for _, n := range tc.no {
				if p.Allowed(n) {
					t.Errorf("Allowed(%q) = true, want false (%s)", n, p)
				}
			}
		})
	}
}

func TestCompileErrorsNameThePattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		allow, deny []string
		want        []string
	}{
		{allow: []string{"ok", ""}, want: []string{"allow pattern 2", "empty pattern"}},
		{deny: []string{"^(unclosed$"}, want: []string{"deny pattern 1", `"^(unclosed$"`, "regular expression"}},
		{allow: []string{"[abc"}, want: []string{"allow pattern 1", "unclosed ["}},
		{deny: []string{"x[]"}, want: []string{"deny pattern 1"}},
	}
	for _, tc := range tests {
		_, err := Compile(tc.allow, tc.deny)
		if err == nil {
			t.Errorf("Compile(%q, %q) succeeded, want an error", tc.allow, tc.deny)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Compile(%q, %q) error %q does not mention %q", tc.allow, tc.deny, err, w)
			}
		}
	}
}

func TestNilAndString(t *testing.T) {
	t.Parallel()
	var p *Policy
	if !p.Allowed("x") || !p.Empty() || p.String() != "all tools allowed" {
		t.Fatal("nil policy must allow everything")
	}
	q := MustCompile([]string{"a*"}, []string{"ab"})
	if q.Empty() || q.String() != `allow ["a*"], deny ["ab"]` {
		t.Fatalf("String() = %q", q.String())
	}
	if got := q.Allow(); len(got) != 1 || got[0] != "a*" {
		t.Fatalf("Allow() = %q", got)
	}
}

func FuzzGlob(f *testing.F) {
	for _, s := range []string{"a*", "[a-c]?", "[!x]", "[]]", "[", "*?*", "a.b+c", `\`, "[^-]"} {
		f.Add(s, "abc")
	}
	f.Fuzz(func(t *testing.T, pat, name string) {
		p, err := Compile([]string{pat}, nil)
		if err != nil {
			return
		}
		_ = p.Allowed(name)
		if !strings.ContainsAny(pat, "*?[") && !strings.HasPrefix(pat, "^") && p.Allowed(name) != (pat == name) {
			t.Fatalf("literal %q vs %q mismatch", pat, name)
		}
	})
}
