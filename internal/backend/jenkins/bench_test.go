package jenkins_test

import (
	"io"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend/jenkins"
	"github.com/cccp-project/cccp/internal/backend/jenkins/jenkinstest"
)

// BenchmarkFollow queues and follows builds with Wait and Log at once, as
// the pipeline does, and reports the requests Jenkins gets per build. The
// double's build ends after 20 requests about it (its state or its log),
// which at steady state each follower makes once per Config.Poll;
// fixed-requests/build is the rest: crumb, queueing, the queue item, the
// results.
func BenchmarkFollow(b *testing.B) {
	const steps = 20
	j := jenkinstest.New(b)
	j.Crumbs = true
	tr, err := jenkins.New(jenkins.Config{URL: j.URL, User: j.User, Token: j.Token, Job: jenkinstest.Job, Poll: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	before := len(j.Calls())
	stepped := 0
	for b.Loop() {
		j.Queue(jenkinstest.Script{Queue: []string{"buildable"}, Steps: steps})
		h, err := tr.StartTest(ctx, spec())
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := tr.Log(ctx, h, 0, io.Discard); done <- err }()
		if _, err := tr.WaitTest(ctx, h); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		stepped += steps
	}
	calls := len(j.Calls()) - before
	b.ReportMetric(float64(calls)/float64(b.N), "requests/build")
	b.ReportMetric(float64(calls-stepped)/float64(b.N), "fixed-requests/build")
}
