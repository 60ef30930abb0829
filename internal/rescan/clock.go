package rescan

import "time"

// Clock is the time a Scanner reads and waits on: the schedule's cron
// times, the start of each entry within a round's spread, and the
// timestamps of rounds. Tests give a clock they move by hand.
type Clock interface {
	Now() time.Time
	// After sends the time once d has passed (at once when d <= 0).
	After(d time.Duration) <-chan time.Time
}

// wallClock is the real time.
type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
