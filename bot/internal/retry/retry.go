// Package retry computes the wait before the next attempt of something
// that failed: the dispatcher's put-off deliveries and the outbox's reports.
package retry

import (
	"errors"
	"time"

	"github.com/cccp-project/cccp/bot/event"
)

// Backoff is base * 2^attempts, capped at max, and never shorter than what
// the forge asked for (an event.RetryableError's RetryAfter).
func Backoff(base, max time.Duration, attempts int, err error) time.Duration {
	d := base
	for i := 0; i < attempts && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	var re *event.RetryableError
	if errors.As(err, &re) && re.RetryAfter() > d {
		d = re.RetryAfter()
	}
	return d
}
