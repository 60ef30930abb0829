package rescan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// The bookkeeping of rescans over the no-op backend: what is recorded per
// entry, when people are told, the progress, and entries to skip.
// TestRescanLocal (local_test.go) runs the same with real scans.
func TestRescanRecordsChangesAndNotifiesOnlyOnChange(t *testing.T) {
	w := newNoopWorld(t, 3, 2)
	ctx := context.Background()
	// One entry more that never delivered anything.
	w.entries = append(w.entries, &index.Entry{AppID: "bench", JobID: "new", GitURL: "file:///git/y", GitBranch: "master", DesiredTag: "latest"})

	updates := map[string][]string{} // image digest -> package updates the repository offers
	w.be.scans = func(image string) []backend.CheckResult {
		_, d, _ := strings.Cut(image, "@")
		if u := updates[d]; len(u) > 0 {
			return []backend.CheckResult{{Name: types.CheckPackageUpdates, State: backend.CheckFailed, Findings: u}}
		}
		return []backend.CheckResult{{Name: types.CheckPackageUpdates, State: backend.CheckPassed}}
	}
	rescan := func() *store.Rescan {
		t.Helper()
		r, err := w.scanner.Rescan(ctx, "test")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	r1 := rescan() // nothing changed since the deliveries
	if got := w.notes.list(); len(got) != 0 {
		t.Errorf("first rescan, nothing new: sent %q", got)
	}
	if r1.Done() != 4 || r1.Finished.IsZero() {
		t.Errorf("rescan 1: %d of %d done, finished %v", r1.Done(), len(r1.Entries), r1.Finished)
	}
	skipped := r1.Entries[slices.IndexFunc(r1.Entries, func(e store.RescanEntry) bool { return e.Project == "bench/new:latest" })]
	if skipped.State != store.Skipped || !strings.Contains(skipped.Note, "nothing delivered") {
		t.Errorf("entry without a delivery: %+v", skipped)
	}

	updates[digestOf(1)] = []string{"musl-1.2.4-r2 < 1.2.4-r3"}
	rescan()
	want := []string{"team001@example.org: cccp rescan of bench/app001:latest: 1 new finding"}
	if got := w.notes.list(); !slices.Equal(got, want) {
		t.Errorf("after a new update: sent %q, want %q", got, want)
	}
	r3 := rescan() // unchanged
	if got := w.notes.list(); !slices.Equal(got, want) {
		t.Errorf("after an unchanged rescan: sent %q, want only %q", got, want)
	}
	for _, e := range r3.Entries {
		if e.Changed {
			t.Errorf("unchanged rescan: %s marked changed", e.Project)
		}
	}
	delete(updates, digestOf(1))
	rescan()
	want = append(want, "team001@example.org: cccp rescan of bench/app001:latest: 1 resolved finding")
	if got := w.notes.list(); !slices.Equal(got, want) {
		t.Errorf("after the update was taken: sent %q, want %q", got, want)
	}

	scans, err := w.db.Scans(ctx, "bench/app001:latest", 0)
	if err != nil {
		t.Fatal(err)
	}
	var history []string
	for _, s := range slices.Backward(scans) {
		history = append(history, strings.Join([]string{string(s.State), count(s.Findings), "+" + count(s.New), "-" + count(s.Resolved)}, " "))
	}
	if want := []string{"passed 0 +0 -0", "passed 1 +1 -0", "passed 1 +0 -0", "passed 0 +0 -1"}; !slices.Equal(history, want) {
		t.Errorf("history %q, want %q", history, want)
	}
	if w.be.tests != 12 {
		t.Errorf("%d scans ran, want 12 (3 delivered entries, 4 rescans)", w.be.tests)
	}
}

func count(f []store.Finding) string { return string(rune('0' + len(f))) }

func TestRescanRefusesASecondAtOnce(t *testing.T) {
	w := newNoopWorld(t, 1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.scanner.mu.Lock()
	w.scanner.running = "7"
	w.scanner.mu.Unlock()
	if _, err := w.scanner.Rescan(ctx, "test"); err == nil || !strings.Contains(err.Error(), "rescan 7: a rescan is already under way") {
		t.Errorf("second rescan: %v", err)
	}
}

// BenchmarkRescan300 is a whole rescan of 300 delivered images through the
// real pipeline over the no-op backend, from the trigger to every scan
// recorded: the runs queued, tested by nothing, their findings compared and
// stored, the progress written. Most of it is the pipeline's durable
// bookkeeping of 300 runs (several bbolt transactions each);
// BenchmarkRescan300Overhead is the rescan's own share.
func BenchmarkRescan300(b *testing.B) {
	w := newNoopWorld(b, 300, 4)
	loopRescan(b, w)
}

// instantRunner stands for the pipeline in BenchmarkRescan300Overhead: each
// rescan run is done when it is queued, with the delivered scans' result,
// so what is measured is the rescan's own work.
type instantRunner struct {
	mu   sync.Mutex
	seq  int
	runs map[string]*store.Run
}

func (r *instantRunner) Enqueue(_ context.Context, req pipeline.Request) (*store.Run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	run := &store.Run{ID: fmt.Sprint(r.seq), Project: req.Project, Kind: req.Kind, State: store.Passed,
		Stages: []store.Stage{{Name: types.StageTest, State: store.Passed, Digest: req.Digest,
			Checks: []store.Check{{Name: types.CheckPackageUpdates, State: store.Passed}}}}}
	r.runs[run.ID] = run
	return run, nil
}

func (r *instantRunner) Wait(_ context.Context, id string) (*store.Run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[id], nil
}

// BenchmarkRescan300Overhead is the bar of issue 11 ("a rescan of 300
// delivered images with the no-op backend: its scheduling overhead is
// under 1 s"), measured as the rescan's own work: finding each entry's
// delivered digest, recording the rescan and its progress, comparing and
// storing each entry's findings, with runs that are done as soon as they
// are queued. BenchmarkRescan300 adds the pipeline's own bookkeeping of
// 300 runs.
func BenchmarkRescan300Overhead(b *testing.B) {
	w := newNoopWorld(b, 300, 4)
	w.scanner.cfg.Runner = &instantRunner{runs: map[string]*store.Run{}}
	loopRescan(b, w)
}

// loopRescan rescans w's 300 entries until b.Loop ends.
func loopRescan(b *testing.B, w *noopWorld) {
	b.Helper()
	ctx := context.Background()
	for b.Loop() {
		r, err := w.scanner.Rescan(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if r.Done() != 300 {
			b.Fatalf("%d of 300 done", r.Done())
		}
	}
}

// Of the rescans a stop of cccp left open, the newest is resumed
// (resume_test.go) and the older ones, left by a cccp that did not resume,
// are closed, their unfinished entries marked cancelled, so their progress
// never shows as under way forever.
func TestResumeClosesOlderOpenRescans(t *testing.T) {
	w := newNoopWorld(t, 1, 1)
	ctx := context.Background()
	done := make(chan *store.Rescan, 1)
	w.scanner.afterRound = func(r *store.Rescan) { done <- r }
	old := &store.Rescan{Trigger: "schedule", Entries: []store.RescanEntry{
		{Project: "bench/app000:latest", State: store.Passed}, {Project: "b", State: store.Running, RunID: "5"}, {Project: "c", State: store.Queued}}}
	if err := w.db.CreateRescan(ctx, old); err != nil {
		t.Fatal(err)
	}
	cut := &store.Rescan{Trigger: "schedule", Entries: []store.RescanEntry{{Project: "bench/app000:latest", State: store.Queued}}}
	if err := w.db.CreateRescan(ctx, cut); err != nil {
		t.Fatal(err)
	}
	if err := w.scanner.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if r := receive(t, done); r.ID != cut.ID {
		t.Errorf("resumed rescan %s, want the newest, %s", r.ID, cut.ID)
	}
	list, err := w.db.Rescans(ctx, 0)
	if err != nil || len(list) != 2 {
		t.Fatalf("rescans: %v %+v", err, list)
	}
	got := list[1]
	if got.Finished.IsZero() || got.Entries[0].State != store.Passed || got.Entries[1].State != store.Cancelled || got.Entries[2].State != store.Cancelled {
		t.Errorf("older open rescan after Resume: %+v", got)
	}
	if got := list[0]; got.Finished.IsZero() || got.Entries[0].State != store.Passed {
		t.Errorf("newest open rescan after Resume: %+v", got)
	}
}

// receive is the next value on ch; a test that waits for it longer than a
// minute fails.
func receive[T any](tb testing.TB, ch <-chan T) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		tb.Fatalf("nothing received after a minute")
		panic("unreachable")
	}
}
