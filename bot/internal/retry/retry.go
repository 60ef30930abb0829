// Package retry computes the wait before the next attempt of something
// that failed: the dispatcher's put-off deliveries and the outbox's reports.
package retry

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
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

// After is how long a forge's answer asks to wait: its Retry-After header,
// in seconds or as an HTTP date (RFC 9110), or else fallback. A wait that
// is not positive counts as none given.
func After(h http.Header, now time.Time, fallback time.Duration) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return fallback
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs > 0 {
			return time.Duration(secs) * time.Second
		}
		return fallback
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return fallback
}
