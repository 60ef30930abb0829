package types

// IsCommitID reports whether s is a whole git object ID as git prints it:
// 40 (SHA-1) or 64 (SHA-256) lowercase hex digits. An abbreviation is
// refused: a stranger can grind a commit whose ID starts like the one a
// maintainer reviewed, and git resolves a short hex string to a ref of
// that name before an object. None can read as a command-line option.
func IsCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
