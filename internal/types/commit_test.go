package types

import (
	"strings"
	"testing"
)

func TestIsCommitID(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
		want bool
	}{
		{"sha-1", strings.Repeat("0123456789", 4), true},
		{"sha-256", strings.Repeat("abcdef0123456789", 4), true},
		{"abbreviated", "0123456", false},
		{"one short", strings.Repeat("a", 39), false},
		{"between the lengths", strings.Repeat("a", 50), false},
		{"upper case", strings.Repeat("A", 40), false},
		{"not hex", strings.Repeat("g", 40), false},
		{"an option", "--upload-pack=x" + strings.Repeat("a", 25), false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsCommitID(tc.s); got != tc.want {
				t.Errorf("IsCommitID(%q) = %v, want %v", tc.s, got, tc.want)
			}
		})
	}
}
