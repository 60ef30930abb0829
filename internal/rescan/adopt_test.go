package rescan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// adoptFixture stores the history a resume finds: entries projects with
// branch runs between weekly rescans (rescans 1 to 4 done, one rescan run
// of each project apiece), then rescan 5, cut by a crash before its first
// flush: every entry recorded queued, though the even ones had made their
// run (while pushes went on). It returns the scanner, its store and
// rescan 5's record.
func adoptFixture(tb testing.TB, entries, branchRuns int) (*Scanner, *countingStore, *store.Rescan) {
	tb.Helper()
	// On tmpfs where there is one: thousands of runs, each fsynced, take
	// minutes on a disk.
	dir, err := os.MkdirTemp("/dev/shm", "cccp-adopt-")
	if err != nil {
		dir = tb.TempDir()
	} else {
		tb.Cleanup(func() { os.RemoveAll(dir) })
	}
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	ctx := context.Background()
	create := func(r *store.Run) {
		if err := db.CreateRun(ctx, r); err != nil {
			tb.Fatal(err)
		}
	}
	rescanRun := func(i, rescan int) *store.Run {
		return &store.Run{Project: entryOf(i).Key(), Kind: types.KindRescan, State: store.Passed,
			Cause: store.Cause{Kind: types.CauseRescan, Detail: fmt.Sprint("rescan ", rescan)}}
	}
	for rescan := 1; rescan <= 4; rescan++ {
		for range branchRuns {
			for i := range entries {
				create(&store.Run{Project: entryOf(i).Key(), Kind: types.KindBranch, State: store.Passed,
					Cause: store.Cause{Kind: types.CausePush}})
			}
		}
		for i := range entries {
			create(rescanRun(i, rescan))
		}
	}
	r := &store.Rescan{ID: "5", Trigger: "schedule"}
	for i := range entries {
		r.Entries = append(r.Entries, store.RescanEntry{Project: entryOf(i).Key(), State: store.Queued})
		if i%2 == 0 {
			run := rescanRun(i, 5)
			run.State = store.Running
			create(run)
			// pushes go on meanwhile
			create(&store.Run{Project: entryOf(i + 1).Key(), Kind: types.KindBranch, State: store.Queued,
				Cause: store.Cause{Kind: types.CausePush}})
		}
	}
	st := &countingStore{Store: db}
	s, err := New(Config{Runner: nopRunner{}, Store: st, Entries: func() []*index.Entry { return nil }})
	if err != nil {
		tb.Fatal(err)
	}
	return s, st, r
}

// countingStore counts the queries for runs.
type countingStore struct {
	Store
	runs atomic.Int64
}

func (c *countingStore) Runs(ctx context.Context, f store.RunFilter) ([]*store.Run, error) {
	c.runs.Add(1)
	return c.Store.Runs(ctx, f)
}

type nopRunner struct{ Runner }

// TestAdoptIsOnePass: a resume finds the run each queued entry of the cut
// rescan had made, its newest, in one pass over the runs (not a query per
// entry: 600 entries here), and takes no run of an older rescan.
func TestAdoptIsOnePass(t *testing.T) {
	const entries = 600 // 300 runs of the cut rescan: more than a page
	s, st, cut := adoptFixture(t, entries, 1)
	ctx := context.Background()
	again := &store.Run{Project: entryOf(0).Key(), Kind: types.KindRescan, State: store.Queued,
		Cause: store.Cause{Kind: types.CauseRescan, Detail: "rescan 5"}}
	if err := st.Store.(*store.DB).CreateRun(ctx, again); err != nil {
		t.Fatal(err)
	}
	st.runs.Store(0)
	r := cloneRescan(cut)
	s.adopt(ctx, r)
	for i, e := range r.Entries {
		switch {
		case i == 0 && (e.State != store.Running || e.RunID != again.ID):
			t.Errorf("entry 0: %s run %q, want running with its newest run %s", e.State, e.RunID, again.ID)
		case i%2 == 0 && (e.State != store.Running || e.RunID == ""):
			t.Errorf("entry %d: %s run %q, want running with its run", i, e.State, e.RunID)
		case i%2 == 1 && (e.State != store.Queued || e.RunID != ""):
			t.Errorf("entry %d: %s run %q, want queued (its only runs are older rescans')", i, e.State, e.RunID)
		}
	}
	if n := st.runs.Load(); n > 3 {
		t.Errorf("%d queries for runs, want a pass of at most 3 pages", n)
	}
}

// BenchmarkAdopt is what a resume costs to find the runs its queued
// entries had made: 500 entries, two branch runs of each between rescans.
// A query per entry took 295-690 ms/op (median 507), the one pass 17-66
// ms/op (median 35), on two cores shared with other builds.
func BenchmarkAdopt(b *testing.B) {
	const entries = 500
	s, _, cut := adoptFixture(b, entries, 2)
	ctx := context.Background()
	for b.Loop() {
		r := cloneRescan(cut)
		s.adopt(ctx, r)
		adopted := 0
		for _, e := range r.Entries {
			if e.State == store.Running {
				adopted++
			}
		}
		if adopted != entries/2 {
			b.Fatalf("adopted %d entries, want %d", adopted, entries/2)
		}
	}
}
