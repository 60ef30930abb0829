package pipeline

import (
	"context"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// TestUpToDatePastManyOtherRuns: the last delivered run is found behind 25
// newer passed runs of other kinds (rescans, trials), so an unchanged
// entry still builds nothing. (The lookup used to read the 20 newest
// passed runs and built again.)
func TestUpToDatePastManyOtherRuns(t *testing.T) {
	h := newHarness(t)
	h.cfg.Resolver = &movingResolver{commit: "c0ffee"}
	h.cfg.Trees = &fakeTrees{ids: map[string]string{"": "tree1", "Dockerfile": "blob1"}}
	h.images.digests["reg.test:5000/demo/base:latest"] = digestA
	r := h.start(t)
	req := Request{Project: "demo/child:latest", Cause: store.Cause{Kind: types.CausePush}}
	first := runAndWait(t, r, req)
	if first.State != store.Passed || first.UpToDate {
		t.Fatalf("first run: %s, up to date %v: %s", first.State, first.UpToDate, first.Error)
	}
	ctx := context.Background()
	for i := range 25 {
		kind := types.KindRescan
		if i%5 == 0 {
			kind = types.KindTrial
		}
		run := &store.Run{Project: req.Project, Kind: kind, State: store.Passed, Stages: plannedStages(kind)}
		if err := h.db.CreateRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	before := buildCount(h)
	again := runAndWait(t, r, req)
	if again.State != store.Passed || !again.UpToDate || buildCount(h) != before {
		t.Fatalf("unchanged entry: %s, up to date %v, %d builds (want none): %s", again.State, again.UpToDate, buildCount(h)-before, again.Error)
	}
	if got := again.Images; len(got) != 1 || got[0].Digest != first.Images[0].Digest {
		t.Errorf("images %+v, want those of run %s", got, first.ID)
	}
}
