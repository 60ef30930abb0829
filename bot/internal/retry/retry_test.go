package retry

import (
	"net/http"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/event"
)

func TestBackoff(t *testing.T) {
	base, max := 5*time.Second, time.Minute
	tests := []struct {
		name     string
		attempts int
		err      error
		want     time.Duration
	}{
		{"first", 0, nil, 5 * time.Second},
		{"doubles", 2, nil, 20 * time.Second},
		{"capped", 10, nil, time.Minute},
		{"forge asks longer", 0, &event.RetryableError{Op: "x", After: 2 * time.Minute}, 2 * time.Minute},
		{"forge asks shorter", 2, &event.RetryableError{Op: "x", After: time.Second}, 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Backoff(base, max, tt.attempts, tt.err); got != tt.want {
				t.Errorf("Backoff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAfter(t *testing.T) {
	now := time.Date(2026, 11, 30, 21, 0, 0, 0, time.UTC)
	fallback := 30 * time.Second
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{"none", "", fallback},
		{"seconds", "120", 2 * time.Minute},
		{"zero seconds", "0", fallback},
		{"negative", "-5", fallback},
		{"http date", "Mon, 30 Nov 2026 21:05:00 GMT", 5 * time.Minute},
		{"http date passed", "Mon, 30 Nov 2026 20:00:00 GMT", fallback},
		{"garbage", "soon", fallback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.value != "" {
				h.Set("Retry-After", tt.value)
			}
			if got := After(h, now, fallback); got != tt.want {
				t.Errorf("After(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}
