package pipeline

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// noopBackend builds and tests nothing, at once: only for measuring the
// scheduling of a cascade.
type noopBackend struct{ n atomic.Uint64 }

func (*noopBackend) Name() string { return "noop" }
func (b *noopBackend) StartBuild(_ context.Context, spec backend.BuildSpec) (backend.Handle, error) {
	return backend.Handle(spec.RunID), nil
}
func (b *noopBackend) WaitBuild(_ context.Context, h backend.Handle) (backend.BuildResult, error) {
	return backend.BuildResult{Digest: fmt.Sprintf("sha256:%064d", b.n.Add(1))}, nil
}
func (*noopBackend) StartTest(_ context.Context, spec backend.TestSpec) (backend.Handle, error) {
	return backend.Handle(spec.RunID), nil
}
func (*noopBackend) WaitTest(context.Context, backend.Handle) (backend.TestResult, error) {
	return backend.TestResult{}, nil
}
func (*noopBackend) Log(_ context.Context, _ backend.Handle, off int64, _ io.Writer) (int64, error) {
	return off, nil
}
func (*noopBackend) Cancel(context.Context, backend.Handle) error { return nil }

type noopImages struct{}

func (noopImages) Tag(context.Context, string, string) error { return nil }
func (noopImages) Digest(context.Context, string) (string, error) {
	return "", fmt.Errorf("MANIFEST_UNKNOWN")
}

type discardLogs struct{}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (discardLogs) Create(string, string) (io.WriteCloser, error) { return nopCloser{io.Discard}, nil }

// syntheticTree is an index of n entries in a tree of the given depth
// (fan-out 3, filled level by level): children by key, and the entries.
func syntheticTree(n, depth int) (map[string][]string, map[string]*index.Entry) {
	children := map[string][]string{}
	entries := map[string]*index.Entry{}
	key := func(i int) string { return "bench/e" + strconv.Itoa(i) + ":latest" }
	level := []int{0}
	entries[key(0)] = entry("bench", "e0", "file:///git/e0")
	next := 1
	for d := 1; d <= depth && next < n; d++ {
		var below []int
		for _, p := range level {
			for range 3 {
				if next >= n {
					break
				}
				c := next
				next++
				entries[key(c)] = entry("bench", "e"+strconv.Itoa(c), "file:///git/e"+strconv.Itoa(c))
				children[key(p)] = append(children[key(p)], key(c))
				below = append(below, c)
			}
		}
		level = below
	}
	return children, entries
}

// benchN is the size of the synthetic index.
var benchN = 1000

// BenchmarkCascade1000Depth6 measures a parent change across a synthetic
// index of 1,000 entries in a tree of depth 6 with a no-op backend: from
// the root's run being queued (the trigger) to every descendant's run
// queued, each waiting on its parents (ns/op; the bar is 1 s). It reports
// apart the time from the trigger to every run finished (s-finished/op),
// and checks the order: no run was released or started before each of its
// parents delivered.
func BenchmarkCascade1000Depth6(b *testing.B) {
	children, entries := syntheticTree(benchN, 6)
	if len(entries) != benchN {
		b.Fatalf("%d entries", len(entries))
	}
	var finishedSpan time.Duration
	for b.Loop() {
		b.StopTimer()
		db, err := store.Open(filepath.Join(b.TempDir(), "cccp.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		nb := &noopBackend{}
		var finished, queued atomic.Int64
		all, allQueued := make(chan struct{}), make(chan struct{})
		var seen sync.Map // run ID -> seen queued
		r, err := New(Config{
			Observer: func(run *store.Run) {
				if run.State == store.Queued && run.Cause.Cascade != "" {
					if _, dup := seen.LoadOrStore(run.ID, true); !dup && queued.Add(1) == int64(benchN-1) {
						close(allQueued)
					}
				}
				if run.State.Done() && finished.Add(1) == int64(benchN) {
					close(all)
				}
			},
			Resolver: fakeResolver{commit: "c0ffee"}, Builder: nb, Tester: nb, Images: noopImages{}, Target: target{},
			Store: db, Logs: discardLogs{}, Workers: 2,
			Entries:  func(k string) (*index.Entry, bool) { e, ok := entries[k]; return e, ok },
			Children: func(k string) []string { return children[k] },
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		root, err := r.Enqueue(ctx, Request{Project: "bench/e0:latest", Cause: store.Cause{Kind: types.CauseManual}})
		if err != nil {
			b.Fatal(err)
		}
		<-allQueued // every run of the cascade queued
		b.StopTimer()
		<-all // and, with the no-op backend, finished
		finishedSpan += time.Since(start)
		c, err := db.CascadeStartedBy(ctx, root.ID)
		if err != nil || c.Finished.IsZero() {
			b.Fatalf("cascade %+v: %v", c, err)
		}
		checkOrder(b, db, c)
		cancel()
		<-r.Stopped()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(finishedSpan.Seconds()/float64(b.N), "s-finished/op")
}

// checkOrder fails b unless every node delivered, and its run was released
// and started only after each of its parents' runs finished.
func checkOrder(b *testing.B, db *store.DB, c *store.Cascade) {
	ctx := context.Background()
	if len(c.Nodes) != benchN-1 {
		b.Fatalf("cascade of %d nodes, want 999", len(c.Nodes))
	}
	finished := map[string]time.Time{}
	root, err := db.Run(ctx, c.RootRun)
	if err != nil {
		b.Fatal(err)
	}
	finished[c.Root] = root.Finished
	for _, n := range c.Nodes {
		run, err := db.Run(ctx, n.Run)
		if err != nil || n.State != store.CascadeDelivered {
			b.Fatalf("node %s: %s, run %v", n.Project, n.State, err)
		}
		if run.Released.IsZero() || run.Started.Before(run.Released) {
			b.Fatalf("%s: released %s, started %s", n.Project, run.Released, run.Started)
		}
		for _, p := range n.WaitsOn {
			if f := finished[p]; f.IsZero() || run.Released.Before(f) || run.Started.Before(f) {
				b.Fatalf("%s released %s, started %s, before its parent %s finished (%s)", n.Project, run.Released, run.Started, p, f)
			}
		}
		finished[n.Project] = run.Finished
	}
}
