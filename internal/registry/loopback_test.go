package registry

import "testing"

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1:5115", true},
		{"127.0.0.1", true},
		{"127.9.9.9:80", true},
		{"localhost", true},
		{"localhost:5000", true},
		{"[::1]:5000", true},
		{"[::1]", true},
		{"::1", true},
		{"registry.example.org", false},
		{"10.0.0.1:5000", false},
		{"localhost.example.org", false},
	} {
		if got := IsLoopback(tc.host); got != tc.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}
