package rescan

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// A rescan cut by a stop of cccp goes on at the next start, over the same
// bbolt file: the entry scanned before the stop is not scanned or told
// about again, the entry whose run was cut gets that run's result (the
// pipeline resumes it) without a second run, the entries not started are
// scanned, the rescan's record completes, and each changed entry's
// notify-email hears of it once.
func TestResumeFinishesARescanCutByAStop(t *testing.T) {
	dir := t.TempDir()
	notes := &recorder{}
	// Every image's repository offers an update since its delivery, so
	// every scan is a change that people are told about.
	scans := func(image string) []backend.CheckResult {
		_, d, _ := strings.Cut(image, "@")
		return []backend.CheckResult{{Name: types.CheckPackageUpdates, State: backend.CheckFailed, Findings: []string{"musl < r3 for " + d}}}
	}

	// The first cccp: one rescan run at a time; the second scan holds
	// until cccp stops.
	var mu sync.Mutex
	started := 0
	held := make(chan string, 1)
	be := &noop{scans: scans, hold: func(ctx context.Context, image string) error {
		mu.Lock()
		started++
		n := started
		mu.Unlock()
		if n != 2 {
			return nil
		}
		held <- image
		<-ctx.Done()
		return ctx.Err()
	}}
	w := openNoopWorld(t, worldOpts{dir: dir, n: 4, parallel: 1, seed: true, be: be, notes: notes})
	ctx, stop := context.WithCancel(context.Background())
	ended := make(chan *store.Rescan, 1)
	go func() {
		r, err := w.scanner.Rescan(ctx, "schedule")
		if err != nil {
			t.Error(err)
		}
		ended <- r
	}()
	receive(t, held)
	stop() // the rescan stops waiting,
	receive(t, ended)
	w.stop() // the pipeline stops mid-scan, the store is closed
	first := notes.list()
	if len(first) != 1 {
		t.Fatalf("before the stop: told %q, want one entry", first)
	}
	before, err := openRescans(t, dir)
	if err != nil {
		t.Fatal(err)
	}

	// The second cccp, over the same file.
	w2 := openNoopWorld(t, worldOpts{dir: dir, n: 4, parallel: 1, be: &noop{scans: scans}, notes: notes})
	done := make(chan *store.Rescan, 1)
	w2.scanner.afterRound = func(r *store.Rescan) { done <- r }
	if err := w2.scanner.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := w2.scanner.Progress(); p == nil || p.ID != before.ID {
		t.Fatalf("after Resume, under way: %+v; want rescan %s", p, before.ID)
	}
	r := receive(t, done)
	if r.ID != before.ID || r.Finished.IsZero() || r.Done() != 4 {
		t.Errorf("resumed rescan %s: %d of %d done, finished %v; want rescan %s, 4 done", r.ID, r.Done(), len(r.Entries), r.Finished, before.ID)
	}
	ctx2 := context.Background()
	list, err := w2.db.Rescans(ctx2, 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("rescans after the restart: %v, %d (want the one, resumed)", err, len(list))
	}
	for _, e := range list[0].Entries {
		if e.State != store.Passed || !e.Changed {
			t.Errorf("stored entry %s: %s changed=%v %q, want passed and changed", e.Project, e.State, e.Changed, e.Note)
		}
	}

	var want []string
	for _, e := range w2.entries {
		want = append(want, e.NotifyEmail[0]+": cccp rescan of "+e.Key()+": 1 new finding")
		runs, err := w2.db.Runs(ctx2, store.RunFilter{Project: e.Key()})
		if err != nil {
			t.Fatal(err)
		}
		rescanRuns := 0
		for _, run := range runs {
			if run.Kind == types.KindRescan {
				rescanRuns++
			}
		}
		scans, err := w2.db.Scans(ctx2, e.Key(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if rescanRuns != 1 || len(scans) != 1 {
			t.Errorf("%s: %d rescan runs, %d scans; want one of each", e.Key(), rescanRuns, len(scans))
		}
	}
	got := notes.list()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("told, over both starts:\n%s\nwant each once:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// openRescans is the newest rescan stored in dir's store, read with the
// file closed before and after (no pipeline: it would resume the run).
func openRescans(tb testing.TB, dir string) (*store.Rescan, error) {
	tb.Helper()
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	list, err := db.Rescans(context.Background(), 1)
	if err != nil || len(list) != 1 {
		return nil, fmt.Errorf("rescans: %v, %d", err, len(list))
	}
	if r := list[0]; !r.Finished.IsZero() || r.Done() != 1 {
		tb.Errorf("stored before the restart: %d of %d done, finished %v; want 1 done, open", r.Done(), len(r.Entries), r.Finished)
	}
	return list[0], nil
}

// A crash can stop cccp before the rescan's progress is written: an entry
// still queued in the store may have a run, done or still in the pipeline.
// The resumed rescan takes that run's result and queues no second run.
func TestResumeAdoptsRunsStartedBeforeACrash(t *testing.T) {
	dir := t.TempDir()
	openNoopWorld(t, worldOpts{dir: dir, n: 2, parallel: 1, seed: true}).stop()

	// What the crash left: a rescan with both entries queued, a rescan run
	// of the first that ended (finding an update), one of the second
	// still queued.
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cut := &store.Rescan{Trigger: "schedule", Entries: []store.RescanEntry{
		{Project: entryOf(0).Key(), State: store.Queued}, {Project: entryOf(1).Key(), State: store.Queued}}}
	if err := db.CreateRescan(ctx, cut); err != nil {
		t.Fatal(err)
	}
	cause := store.Cause{Kind: types.CauseRescan, Detail: "rescan " + cut.ID}
	for _, run := range []*store.Run{
		{Project: entryOf(0).Key(), Kind: types.KindRescan, Cause: cause, GitURL: "file:///git/x", Branch: "master", Commit: "c0ffee",
			State: store.Passed, Finished: cut.Started, Stages: []store.Stage{{Name: types.StageTest, State: store.Passed, Digest: digestOf(0),
				Checks: []store.Check{{Name: types.CheckPackageUpdates, State: store.Failed, Findings: []string{"musl < r3"}}}}}},
		{Project: entryOf(1).Key(), Kind: types.KindRescan, Cause: cause, GitURL: "file:///git/x", Branch: "master", Commit: "c0ffee",
			State: store.Queued, Stages: []store.Stage{{Name: types.StageTest, State: store.Queued, Digest: digestOf(1)}}},
	} {
		if err := db.CreateRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	w := openNoopWorld(t, worldOpts{dir: dir, n: 2, parallel: 1})
	done := make(chan *store.Rescan, 1)
	w.scanner.afterRound = func(r *store.Rescan) { done <- r }
	if err := w.scanner.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	r := receive(t, done)
	if r.ID != cut.ID || r.Done() != 2 || r.Finished.IsZero() {
		t.Errorf("resumed rescan %s: %d of %d done, finished %v", r.ID, r.Done(), len(r.Entries), r.Finished)
	}
	for i, e := range r.Entries {
		runs, err := w.db.Runs(ctx, store.RunFilter{Project: e.Project})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, run := range runs {
			if run.Kind == types.KindRescan {
				n++
			}
		}
		if n != 1 || e.State != store.Passed || e.Changed != (i == 0) {
			t.Errorf("%s: %d rescan runs, %s, changed %v; want the one run, passed, changed only for the first", e.Project, n, e.State, e.Changed)
		}
	}
	if got, want := w.notes.list(), []string{"team000@example.org: cccp rescan of bench/app000:latest: 1 new finding"}; !slices.Equal(got, want) {
		t.Errorf("told %q, want %q", got, want)
	}
}
