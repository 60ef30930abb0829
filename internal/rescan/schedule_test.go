package rescan

import (
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	// Saturday 2026-11-28 12:00 in the server's time zone, which a cron
	// line without CRON_TZ is read in.
	from := time.Date(2026, 11, 28, 12, 0, 0, 0, time.Local)
	for _, tc := range []struct {
		in      string
		next    time.Time // zero: no schedule
		wantErr string
	}{
		{in: "0 3 * * 0", next: time.Date(2026, 11, 29, 3, 0, 0, 0, time.Local)},
		{in: "CRON_TZ=UTC 30 2 * * 1-5", next: time.Date(2026, 11, 30, 2, 30, 0, 0, time.UTC)},
		{in: "@weekly", next: time.Date(2026, 11, 29, 0, 0, 0, 0, time.Local)},
		{in: "@daily", next: time.Date(2026, 11, 29, 0, 0, 0, 0, time.Local)},
		{in: "@every 168h", next: from.Add(168 * time.Hour)},
		{in: "*/15 * * * *", next: from.Add(15 * time.Minute)},
		{in: "off"},
		{in: "", wantErr: "empty rescan schedule"},
		{in: "24h", wantErr: `write cron syntax, e.g. "@every 24h0m0s"`},
		{in: "0 3 * *", wantErr: "five cron fields"},
		{in: "0 25 * * *", wantErr: "five cron fields"},
		{in: "weekly", wantErr: "five cron fields"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s, err := ParseSchedule(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.next.IsZero() {
				if s != nil {
					t.Fatalf("schedule %v, want none", s)
				}
				return
			}
			if got := s.Next(from); !got.Equal(tc.next) {
				t.Errorf("next after %s = %s, want %s", from, got, tc.next)
			}
		})
	}
}
