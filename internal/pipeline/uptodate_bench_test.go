package pipeline

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/types"
)

// BenchmarkUpToDateDecision measures the up-to-date decision for an
// unchanged entry end to end from the trigger: Enqueue, a worker picks the
// run up, resolves the branch with a real `git ls-remote` of a real
// repository, reads the context's tree and the Dockerfile's blob IDs from
// the mirror, looks the parent's digest up, compares keys and finishes the
// run in the real store. Bar: under 50 ms. "commit given" is a trigger that
// names its commit (a push webhook, a poll): no ls-remote.
func BenchmarkUpToDateDecision(b *testing.B) {
	b.Run("branch resolved", func(b *testing.B) { benchUpToDate(b, false) })
	b.Run("commit given", func(b *testing.B) { benchUpToDate(b, true) })
}

func benchUpToDate(b *testing.B, commitGiven bool) {
	h := newHarness(b)
	repo := testgit.Repo(b, "master", map[string]string{"Dockerfile": "FROM demo/base:latest\n", "src/a.txt": "a"})
	e := h.entries["demo/child:latest"]
	e.GitURL = "file://" + repo
	h.cfg.Resolver = gitsrc.Resolver{}
	h.cfg.Trees = &gitsrc.Mirror{Dir: b.TempDir()}
	h.images.digests["reg.test:5000/demo/base:latest"] = digestA
	r := h.start(b)
	ctx := context.Background()
	req := Request{Project: e.Key(), Cause: store.Cause{Kind: types.CausePush}}
	if run := runAndWait(b, r, req); run.State != store.Passed || run.UpToDate {
		b.Fatalf("first run: %s up to date %v: %s", run.State, run.UpToDate, run.Error)
	}
	if commitGiven {
		req.Commit = testgit.Run(b, repo, "rev-parse", "HEAD")
	}
	loopUpToDate(ctx, b, r, req)
}

// loopUpToDate runs req again until b.Loop ends, each run up to date (it
// fails the benchmark otherwise), and reports the CPU time of a run:
// cccp's and its git processes', which does not grow with the machine's
// load the way wall time does.
func loopUpToDate(ctx context.Context, b *testing.B, r *Runner, req Request) {
	b.Helper()
	cpu0 := cpuTime()
	for b.Loop() {
		run, err := r.Enqueue(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		done, err := r.Wait(ctx, run.ID)
		if err != nil {
			b.Fatal(err)
		}
		if !done.UpToDate {
			b.Fatalf("run %s built: %s", done.ID, stageStates(done))
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// cpuTime is the user and system time of this process and its finished
// children.
func cpuTime() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}
