// Package textcut shortens text to a limit without splitting a UTF-8
// character: the limits forges put on comments, check-run output and
// commit status descriptions, and the bounded reasons and lines of stage
// backends. It is cccp's one UTF-8 cutter.
package textcut

import "unicode/utf8"

// Bytes returns s cut to at most n bytes at a UTF-8 boundary (for limits
// counted in bytes, such as a comment body).
// n <= 0 gives "". Invalid UTF-8 with no character start near n is cut
// at n.
func Bytes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	// Cut before the character that straddles n: back up to a character
	// start, at most UTFMax-1 bytes.
	for j := n; j >= 0 && j > n-utf8.UTFMax; j-- {
		if utf8.RuneStart(s[j]) {
			return s[:j]
		}
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
