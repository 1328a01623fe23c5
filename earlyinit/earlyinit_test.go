package earlyinit

import (
	"os"
	"testing"
)

func TestPlainCLocale(t *testing.T) {
	for _, c := range []struct {
		lcAll, lang, language, want string
	}{
		{"", "C.UTF-8", "", "en"},
		{"", "C", "", "en"},
		{"POSIX", "de_DE.UTF-8", "", "en"},
		{"", "de_DE.UTF-8", "", ""},
		{"C.UTF-8", "", "fr", "fr"}, // the user's choice stays
		{"", "", "", ""},
	} {
		t.Setenv("LC_ALL", c.lcAll)
		t.Setenv("LC_MESSAGES", "")
		t.Setenv("LANG", c.lang)
		t.Setenv("LANGUAGE", c.language)
		plainCLocale()
		if got := os.Getenv("LANGUAGE"); got != c.want {
			t.Errorf("LC_ALL=%q LANG=%q LANGUAGE=%q: LANGUAGE became %q, want %q", c.lcAll, c.lang, c.language, got, c.want)
		}
	}
}
