package rescan

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// DefaultSchedule is when rescans run unless configured: weekly, Sunday at
// 03:00 (the server's local time zone; write CRON_TZ=UTC ... for another).
const DefaultSchedule = "0 3 * * 0"

// Off is the schedule that never rescans.
const Off = "off"

// Schedule says when the next rescan after a time is due.
type Schedule interface {
	Next(time.Time) time.Time
}

// ParseSchedule reads a rescan schedule: five cron fields (minute hour
// day-of-month month day-of-week, e.g. "0 3 * * 0"), a descriptor (@weekly,
// @daily, @every 168h), optionally after CRON_TZ=Zone. "off" is nil: no
// rescans. Parsing is robfig/cron's standard parser, only the parser.
func ParseSchedule(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	switch s {
	case Off:
		return nil, nil
	case "":
		return nil, fmt.Errorf("empty rescan schedule (a cron line such as %q, or %q)", DefaultSchedule, Off)
	}
	if d, err := time.ParseDuration(s); err == nil {
		return nil, fmt.Errorf("rescan schedule %q is a duration; write cron syntax, e.g. %q for every %s from cccp's start, or %q for Sundays at 03:00", s, "@every "+d.String(), d, DefaultSchedule)
	}
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return nil, fmt.Errorf("rescan schedule %q: %w (want five cron fields, minute hour day-of-month month day-of-week, such as %q)", s, err, DefaultSchedule)
	}
	return sched, nil
}
