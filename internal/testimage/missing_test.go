package testimage

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how missing ended the test.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingToolSkipsOrFails(t *testing.T) {
	tests := []struct {
		name     string
		env      string
		wantFail bool
	}{
		{name: "skips where the tools may be absent", env: ""},
		{name: "fails where make test installed them", env: "1", wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireEnv, tt.env)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				missing(r, "%s is not installed", "buildah")
			}()
			<-done
			got := r.skipped
			if tt.wantFail {
				got = r.failed
				if r.skipped != "" {
					t.Errorf("skipped (%q), want a failure", r.skipped)
				}
			} else if r.failed != "" {
				t.Errorf("failed (%q), want a skip", r.failed)
			}
			if !strings.Contains(got, "buildah is not installed") || !strings.Contains(got, RequireEnv) {
				t.Errorf("message = %q, want the reason and %s", got, RequireEnv)
			}
		})
	}
}
