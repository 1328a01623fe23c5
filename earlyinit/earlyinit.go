// Package earlyinit prepares the process environment before any other
// package's init runs; keyport's main imports it for that side effect.
//
// Why a module of its own: Go initializes packages in dependency order,
// taking the first ready one by import path. fyne's lang package reads the
// locale in its init (to load its translations), and in the C locale most
// containers and minimal sessions use (LANG=C.UTF-8) it logs "Fyne error:
// Error parsing user locale C" — three lines on stderr for every keyport
// command, `keyport connect` included. Code in module keyport initializes
// after fyne.io/..., too late; this module's path sorts before fyne.io, and
// it imports only the standard library, so its init runs first.
package earlyinit

import (
	"os"
	"strings"
)

func init() { plainCLocale() }

// plainCLocale sets LANGUAGE=en when the locale is C or POSIX (what the C
// locale means anyway) and LANGUAGE is unset: fyne's locale lookup then
// reads "en" instead of the unparsable tag "C". Any other locale, or a
// LANGUAGE the user set, is left alone. Child processes inherit it.
func plainCLocale() {
	if os.Getenv("LANGUAGE") != "" {
		return
	}
	var locale string
	for _, env := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if locale = os.Getenv(env); locale != "" {
			break
		}
	}
	base, _, _ := strings.Cut(locale, ".")
	if base == "C" || base == "POSIX" {
		os.Setenv("LANGUAGE", "en")
	}
}
