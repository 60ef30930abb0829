package pipeline

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// A rescan tests the delivered digest: no build, no tag moves, only the
// scans kept, and a rescan without a digest is refused before it is stored.
func TestRescanTestsTheDeliveredDigestOnly(t *testing.T) {
	h := newHarness(t)
	h.backend.checks = []backend.CheckResult{
		{Name: types.CheckLint, State: backend.CheckPassed},
		{Name: types.CheckPackageUpdates, State: backend.CheckFailed, Findings: []string{"musl 1.2.4-r2 < 1.2.4-r3"}},
		{Name: types.CheckSmoke, State: backend.CheckPassed},
	}
	r := h.start(t)
	run := runAndWait(t, r, Request{Project: "demo/base:latest", Kind: types.KindRescan,
		Cause: store.Cause{Kind: types.CauseRescan}, Commit: "c0ffee", Digest: digestA})
	if run.State != store.Passed || stageStates(run) != "test=passed" {
		t.Fatalf("rescan: %s (%s), stages %s", run.State, run.Error, stageStates(run))
	}
	if want := []string{"test reg.test:5000/demo/base@" + digestA}; !slices.Equal(h.rec.list(), want) {
		t.Errorf("calls %q, want %q (no build, no tag)", h.rec.list(), want)
	}
	var names []types.CheckName
	for _, c := range run.Stages[0].Checks {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []types.CheckName{types.CheckPackageUpdates}) {
		t.Errorf("checks kept %q, want only the scans", names)
	}
	if len(run.Images) != 0 {
		t.Errorf("a rescan recorded images %+v", run.Images)
	}

	_, err := r.Enqueue(context.Background(), Request{Project: "demo/base:latest", Kind: types.KindRescan, Digest: "latest"})
	if !errors.Is(err, errNoDigest) {
		t.Errorf("rescan without a digest: %v, want errNoDigest", err)
	}
}
