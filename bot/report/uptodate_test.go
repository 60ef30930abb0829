package report

import (
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// A commit status of a run that built nothing says so rather than
// "passed in 0s".
func TestRunTitleOfUpToDateRun(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		run  store.Run
		want string
	}{
		{"built", store.Run{State: store.Passed, Started: t0, Finished: t0.Add(12 * time.Second)}, "passed in 12s"},
		{"up to date", store.Run{State: store.Passed, UpToDate: true, Started: t0, Finished: t0}, "up to date, nothing to build"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RunTitle(&tc.run); got != tc.want {
				t.Errorf("RunTitle = %q, want %q", got, tc.want)
			}
		})
	}
}
