package redact

import "strings"

// LooksLikeToken reports whether word, found after "Bearer" or "Basic" in
// free text, looks like a credential rather than a word of a sentence
// ("no bearer credential for x", "the bearer token expired"): it has a
// digit, a symbol of the token68 alphabet (- _ ~ + / = %, or an inner .),
// an upper-case letter after the first, or 16 letters or more. Trailing
// sentence punctuation is not part of it. Pattern-based redaction (the
// audit log's, the keychain's) uses it; known values are matched exactly
// whatever they look like.
func LooksLikeToken(word string) bool {
	word = strings.TrimRight(word, ".,;:!?")
	if len(word) < 4 {
		return false
	}
	letters := 0
	for i := 0; i < len(word); i++ {
		c := word[i]
		switch {
		case '0' <= c && c <= '9':
			return true
		case 'A' <= c && c <= 'Z':
			if i > 0 {
				return true
			}
			letters++
		case 'a' <= c && c <= 'z':
			letters++
		case strings.IndexByte("-_~+/=%.", c) >= 0:
			return true
		default:
			return true // anything else is no English word either
		}
	}
	return letters >= 16
}
