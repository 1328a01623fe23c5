package proxymgr

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestFoldRuneIsEqualFold checks foldRune over every rune: it maps each
// rune into its own fold orbit and is constant on the orbit, which together
// mean foldKey(a) == foldKey(b) exactly when strings.EqualFold(a, b).
func TestFoldRuneIsEqualFold(t *testing.T) {
	t.Parallel()
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		f := foldRune(r)
		if !strings.EqualFold(string(f), string(r)) {
			t.Fatalf("foldRune(%U) = %U, outside its fold orbit", r, f)
		}
		if g := foldRune(unicode.SimpleFold(r)); g != f {
			t.Fatalf("foldRune(%U) = %U but foldRune(SimpleFold) = %U", r, f, g)
		}
	}
}

// foldAlphabet holds runes with non-trivial case-fold orbits (and their
// look-alikes that fold to nothing), for building colliding keys.
var foldAlphabet = []rune{
	'p', 'a', 'r', 'm', 's', 'P', 'A', 'R', 'M', 'S', 'k', 'K', 'i', 'I', 'n', 'e', 'd', 'E', 'N', 'D',
	'ſ',      // U+017F LATIN SMALL LETTER LONG S ~ s
	'\u212a', // KELVIN SIGN ~ k
	'\u212b', // ANGSTROM SIGN ~ å
	'å', 'Å',
	'İ', 'ı', // Turkish dotted capital I and dotless small i: no simple fold to i
	'Σ', 'σ', 'ς', // Greek sigma forms
	'µ', 'μ', 'Μ', // micro sign and mu
	'ß', 'ẞ', // sharp s (no simple fold to "ss")
	'Ǆ', 'ǅ', 'ǆ', // a three-member orbit with a title case
	'θ', 'ϑ', 'Θ',
	'Ａ', 'ａ', 'Ｓ', 'ｓ', // full-width letters
	'_', '0', 'é', 'É',
}

// keysFrom turns fuzz bytes into keys over foldAlphabet: 0xff separates
// keys, other bytes pick runes.
func keysFrom(data []byte) []string {
	var keys []string
	var b strings.Builder
	for _, c := range data {
		if c == 0xff {
			keys = append(keys, b.String())
			b.Reset()
			continue
		}
		b.WriteRune(foldAlphabet[int(c)%len(foldAlphabet)])
	}
	return append(keys, b.String())
}

// FuzzCheckDuplicates is the differential test of the duplicate check: for
// any keys and member counts on both sides of its small-object threshold,
// it rejects exactly when two keys are equal under strings.EqualFold, and
// lookup finds a member exactly when EqualFold would.
func FuzzCheckDuplicates(f *testing.F) {
	for _, seed := range []string{
		"\x00\x01\x02\x03\x04\xff\x00\x01\x02\x03\x14", // "parms" and "parmſ"
		"a\xffb\xffc\xffd\xffe\xfff\xffg\xffh\xffi",    // 9 keys
		"\x09\xff\x15", "\x18\xff\x19", "\x19\xff\x1a", "\x1b\xff\x1c\xff\x1d",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys := keysFrom(data)
		if len(keys) > 40 {
			keys = keys[:40]
		}
		ms := make([]member, len(keys))
		for i, k := range keys {
			ms[i] = member{key: k}
		}
		want := false
		for i := range keys {
			for j := i + 1; j < len(keys); j++ {
				if strings.EqualFold(keys[i], keys[j]) {
					want = true
				}
			}
		}
		if got := checkDuplicates(ms) != nil; got != want {
			t.Fatalf("checkDuplicates(%q) rejected=%v, EqualFold says %v", keys, got, want)
		}
		if want {
			return
		}
		for _, name := range []string{"params", "method", "id", "name", keys[0]} {
			found := false
			for _, k := range keys {
				found = found || strings.EqualFold(k, name)
			}
			if _, ok := lookup(ms, name); ok != found {
				t.Fatalf("lookup(%q, %q) = %v, EqualFold says %v", keys, name, ok, found)
			}
		}
	})
}

// TestCheckDuplicatesThresholds runs the collisions through both
// paths of checkDuplicates (up to 8 members, and more).
func TestCheckDuplicatesThresholds(t *testing.T) {
	t.Parallel()
	pairs := [][2]string{
		{"params", "param\u017f"}, {"k", "\u212a"}, {"\u00e5", "\u212b"}, {"\u03c3", "\u03c2"},
		{"\u01c4", "\u01c6"}, {"\u00b5", "\u039c"}, {"ID", "id"}, {"\uff41", "\uff21"},
	}
	for _, pair := range pairs {
		for filler := 0; filler <= 10; filler++ {
			keys := []string{pair[0]}
			for i := range filler {
				keys = append(keys, "x"+string(rune('a'+i)))
			}
			keys = append(keys, pair[1])
			ms := make([]member, len(keys))
			for i, k := range keys {
				ms[i] = member{key: k}
			}
			if checkDuplicates(ms) == nil {
				t.Errorf("%q and %q with %d other members: not rejected", pair[0], pair[1], filler)
			}
		}
	}
	// Not equal under EqualFold: Turkish i forms and sharp s stay distinct.
	for _, pair := range [][2]string{{"id", "\u0130d"}, {"id", "\u0131d"}, {"ss", "\u00df"}} {
		ms := []member{{key: pair[0]}, {key: "a"}, {key: "b"}, {key: "c"}, {key: "d"}, {key: "e"}, {key: "f"}, {key: "g"}, {key: "h"}, {key: pair[1]}}
		if err := checkDuplicates(ms); err != nil || checkDuplicates([]member{ms[0], ms[9]}) != nil {
			t.Errorf("%q and %q are different keys: %v", pair[0], pair[1], err)
		}
	}
}
