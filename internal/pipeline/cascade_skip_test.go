package pipeline

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// edgeCountingStore counts the reads of every project's latest run (the
// FROM edges of a cascade's plan); with lie set, LastDelivered claims the
// digest a run is finishing with was delivered already, so the runner
// expects no cascade where there is one.
type edgeCountingStore struct {
	*store.DB
	latest atomic.Int64
	lie    atomic.Bool
}

func (s *edgeCountingStore) LatestRuns(ctx context.Context, kind string) (map[string]*store.Run, error) {
	s.latest.Add(1)
	return s.DB.LatestRuns(ctx, kind)
}

func (s *edgeCountingStore) LastDelivered(ctx context.Context, project string) (*store.Run, error) {
	if !s.lie.Load() {
		return s.DB.LastDelivered(ctx, project)
	}
	runs, err := s.DB.Runs(ctx, store.RunFilter{Project: project, Limit: 1})
	if err != nil || len(runs) == 0 {
		return nil, store.ErrNotFound
	}
	fake := *runs[0]
	fake.ID, fake.State, fake.Kind = "999999", store.Passed, types.KindBranch
	return &fake, nil
}

// TestCascadeEdgesReadOnlyForANewDigest: a branch run's finish reads the
// latest runs of every project (to plan a cascade) only when it delivered
// a new digest; an up-to-date run or a rebuild to the same digest reads
// none. When the guess is wrong the cascade still starts, with the FROM
// edges.
func TestCascadeEdgesReadOnlyForANewDigest(t *testing.T) {
	h := newHarness(t)
	cs := &edgeCountingStore{DB: h.db}
	h.cfg.Store = cs
	h.backend.uniqueDigests = true
	h.cfg.Children = func(string) []string { return nil } // only FROM edges
	r := h.start(t)
	manual := store.Cause{Kind: types.CauseManual}
	base, child := Request{Project: "demo/base:latest", Cause: manual}, Request{Project: "demo/child:latest", Cause: manual}
	forced := base
	forced.Force = true
	for _, step := range []struct {
		name      string
		setup     func()
		req       Request
		wantReads int64
		cascade   bool // a cascade of demo/child starts
	}{
		{"first delivery", func() {}, base, 1, false},
		{"child's first delivery", func() {}, child, 1, false},
		{"up to date", func() {}, base, 0, false},
		{"rebuilt to a new digest", func() {}, forced, 1, true},
		{"rebuilt to one digest", func() { h.backend.uniqueDigests = false }, forced, 1, true},
		{"rebuilt to the same digest again", func() {}, forced, 0, false},
		{"guessed wrong", func() { h.backend.uniqueDigests = true; cs.lie.Store(true) }, forced, 1, true},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.setup()
			before := cs.latest.Load()
			run := runAndWait(t, r, step.req)
			if run.State != store.Passed {
				t.Fatalf("run %s: %s %s", run.ID, run.State, run.Error)
			}
			if got := cs.latest.Load() - before; got != step.wantReads {
				t.Errorf("read the latest runs %d times, want %d", got, step.wantReads)
			}
			c, err := h.db.CascadeStartedBy(context.Background(), run.ID)
			if !step.cascade {
				if err == nil {
					t.Errorf("cascade %s started", c.ID)
				}
				return
			}
			if err != nil {
				t.Fatalf("no cascade: %v", err)
			}
			c = waitCascade(t, h.db, run.ID)
			if len(c.Nodes) != 1 || c.Nodes[0].Project != "demo/child:latest" {
				t.Errorf("cascade nodes %+v, want demo/child", c.Nodes)
			}
		})
	}
}
