package retry

import (
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
