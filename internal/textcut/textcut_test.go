package textcut

import (
	"testing"
	"unicode/utf8"
)

func TestBytes(t *testing.T) {
	tests := []struct {
		name, s string
		n       int
		want    string
	}{
		{name: "short", s: "abc", n: 5, want: "abc"},
		{name: "exact", s: "abc", n: 3, want: "abc"},
		{name: "ascii", s: "abcdef", n: 4, want: "abcd"},
		{name: "inside a character", s: "aé", n: 2, want: "a"}, // é is 2 bytes
		{name: "after a character", s: "aéb", n: 3, want: "aé"},
		{name: "inside a 4-byte character", s: "x🙂", n: 4, want: "x"},
		{name: "zero", s: "abc", n: 0, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Bytes(tt.s, tt.n)
			if got != tt.want || !utf8.ValidString(got) || len(got) > tt.n && got != tt.s {
				t.Errorf("Bytes(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}

func TestRunes(t *testing.T) {
	tests := []struct {
		name, s string
		n       int
		want    string
	}{
		{name: "short", s: "abc", n: 5, want: "abc"},
		{name: "exact", s: "ééé", n: 3, want: "ééé"},
		{name: "cut", s: "abcdef", n: 4, want: "abc…"},
		{name: "cut counts characters not bytes", s: "éééééé", n: 4, want: "ééé…"},
		{name: "one", s: "abc", n: 1, want: "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Runes(tt.s, tt.n)
			if got != tt.want || utf8.RuneCountInString(got) > tt.n {
				t.Errorf("Runes(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}
