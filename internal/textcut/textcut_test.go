package textcut

import (
	"strings"
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
		{name: "negative", s: "abc", n: -1, want: ""},
		{name: "in 4-byte rune, then more", s: "x😀y", n: 3, want: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Bytes(tt.s, tt.n)
			if got != tt.want || !utf8.ValidString(got) || len(got) > max(tt.n, 0) && got != tt.s {
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

func FuzzBytes(f *testing.F) {
	f.Add("aé😀b", 3)
	f.Add("\xff\xfeabc", 2)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := Bytes(s, n)
		if len(got) > n && !(n <= 0 && got == "") {
			t.Fatalf("len %d > n %d", len(got), n)
		}
		if !strings.HasPrefix(s, got) {
			t.Fatalf("%q is not a prefix of %q", got, s)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 %q from valid %q", got, s)
		}
		if utf8.ValidString(s) && n > 0 && len(s) > n && len(got) <= n-utf8.UTFMax {
			t.Fatalf("cut too much: %d bytes of %q for n %d", len(got), s, n)
		}
	})
}
