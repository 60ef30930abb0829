// Package textcut shortens text to the limits forges put on comments,
// check-run output and commit status descriptions, without splitting a
// UTF-8 character.
package textcut

import "unicode/utf8"

// Bytes returns s cut to at most n bytes at a UTF-8 boundary (for limits
// counted in bytes, such as a comment body).
func Bytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Runes returns s cut to at most n characters, the last one "…" when cut
// (for limits counted in characters, such as a status description). n must
// be at least 1.
func Runes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
