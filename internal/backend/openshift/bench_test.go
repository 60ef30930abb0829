package openshift

import (
	"context"
	"fmt"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
)

// BenchmarkFollow follows one Build through two simulated hours and reports
// the API requests it cost per simulated second (the bar: at most 1).
// Simulated time advances by the client's sleeps and by how long the
// simulated server holds each watch open:
//
//   - honest: the server keeps each watch open for the timeoutSeconds the
//     client asked for and sends one status update in it;
//   - closes-at-once: every watch closes immediately without news;
//   - chatty: every watch delivers an update and closes immediately.
func BenchmarkFollow(b *testing.B) {
	const buildTime = 2 * time.Hour
	servers := []struct {
		name  string
		hold  func(timeoutSeconds int64) time.Duration
		event bool
	}{
		{"honest", func(s int64) time.Duration { return time.Duration(s) * time.Second }, true},
		{"closes-at-once", func(int64) time.Duration { return 0 }, false},
		{"chatty", func(int64) time.Duration { return 0 }, true},
	}
	for _, srv := range servers {
		b.Run(srv.name, func(b *testing.B) {
			var perSecond float64
			var requests int
			for b.Loop() {
				h := newHarness(b, Config{}, build("web-1", buildv1.BuildPhaseRunning, "1"))
				start := h.clock.Now()
				rv := 1
				h.cs.PrependWatchReactor("builds", func(a k8stesting.Action) (bool, watch.Interface, error) {
					timeout := a.(k8stesting.WatchActionImpl).ListOptions.TimeoutSeconds
					if timeout == nil {
						return true, nil, fmt.Errorf("watch without timeoutSeconds")
					}
					h.clock.advance(srv.hold(*timeout))
					w := watch.NewFakeWithChanSize(1, false)
					rv++
					switch {
					case h.clock.Now().Sub(start) >= buildTime:
						w.Modify(build("web-1", buildv1.BuildPhaseComplete, fmt.Sprint(rv), func(b *buildv1.Build) {
							b.Status.Output.To = &buildv1.BuildStatusOutputTo{ImageDigest: "sha256:0"}
						}))
					case srv.event:
						w.Modify(build("web-1", buildv1.BuildPhaseRunning, fmt.Sprint(rv)))
					}
					w.Stop()
					return true, w, nil
				})
				if _, err := h.b.WaitBuild(context.Background(), "cccp/web-1"); err != nil {
					b.Fatal(err)
				}
				requests = len(h.cs.Actions())
				perSecond = float64(requests) / h.clock.Now().Sub(start).Seconds()
			}
			b.ReportMetric(perSecond, "req/s")
			b.ReportMetric(float64(requests), "req/build")
			if perSecond > 1 {
				b.Errorf("%d requests in %s: %.3f a second, more than 1", requests, buildTime, perSecond)
			}
		})
	}
}
