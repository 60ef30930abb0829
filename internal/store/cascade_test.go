package store

import (
	"context"
	"errors"
	"testing"

	"github.com/cccp-project/cccp/internal/types"
)

func passedBranch(project, digest string) *Run {
	return &Run{Project: project, Kind: types.KindBranch, State: Running, Stages: []Stage{
		{Name: types.StageBuild, State: Passed, Digest: digest},
		{Name: types.StageTest, State: Passed},
		{Name: types.StageDeliver, State: Passed},
	}}
}

func pass(r *Run) error { r.State = Passed; return nil }

// TestFinishRunStartsACascadeOncePerNewDigest: a run's new digest starts
// one cascade in the run's own transaction; calling again for the same
// run starts no second one, and an equal digest reports the previous one.
func TestFinishRunStartsACascadeOncePerNewDigest(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	var prevs []string
	step := func(r *Run, prev string, part *CascadePart) *Cascade {
		prevs = append(prevs, prev)
		if r.DeliveredDigest() == prev {
			return nil
		}
		return &Cascade{Digest: r.DeliveredDigest(), Nodes: []CascadeNode{
			{Project: "app/mid", WaitsOn: []string{"app/base"}, State: CascadeQueued},
			{Project: "app/leaf", WaitsOn: []string{"app/mid"}, State: CascadeWaiting},
		}}
	}
	r1 := passedBranch("app/base", "sha256:1")
	if err := db.CreateRun(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if _, cs, err := db.FinishRun(ctx, r1.ID, pass, step); err != nil || len(cs) != 1 {
		t.Fatalf("first finish: %v, cascades %v", err, cs)
	}
	if _, cs, err := db.FinishRun(ctx, r1.ID, pass, step); err != nil || len(cs) != 0 {
		t.Fatalf("second finish of the same run: %v, cascades %v (want none)", err, cs)
	}
	db = reopen(t, db, path)
	c, err := db.CascadeStartedBy(ctx, r1.ID)
	if err != nil || c.Root != "app/base" || c.RootRun != r1.ID || c.Digest != "sha256:1" {
		t.Fatalf("CascadeStartedBy = %+v, %v", c, err)
	}
	open, err := db.OpenCascades(ctx)
	if err != nil || len(open) != 1 {
		t.Fatalf("OpenCascades = %v, %v", open, err)
	}
	r2 := passedBranch("app/base", "sha256:1")
	if err := db.CreateRun(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if _, cs, err := db.FinishRun(ctx, r2.ID, pass, step); err != nil || len(cs) != 0 {
		t.Fatalf("unchanged digest: %v, cascades %v", err, cs)
	}
	if want := []string{"", "", "sha256:1"}; !equalStrings(prevs, want) {
		t.Errorf("prev digests %q, want %q", prevs, want)
	}
}

// TestCascadeNodesSettle: a child's run settles its node in its own
// transaction; a stopped node gets a skipped run that says why; a settled
// cascade is no longer open; a run bound once cannot be replaced.
func TestCascadeNodesSettle(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	root := passedBranch("app/base", "sha256:1")
	if err := db.CreateRun(ctx, root); err != nil {
		t.Fatal(err)
	}
	_, cs, err := db.FinishRun(ctx, root.ID, pass, func(r *Run, prev string, part *CascadePart) *Cascade {
		return &Cascade{Nodes: []CascadeNode{
			{Project: "app/mid", WaitsOn: []string{"app/base"}, State: CascadeQueued},
			{Project: "app/leaf", WaitsOn: []string{"app/mid"}, State: CascadeWaiting},
		}}
	})
	if err != nil {
		t.Fatal(err)
	}
	id := cs[0].ID
	mid := &Run{Project: "app/mid", Kind: types.KindBranch, Cause: Cause{Kind: types.CauseParent, Cascade: id}}
	if err := db.CreateRun(ctx, mid); err != nil {
		t.Fatal(err)
	}
	if got, err := db.CascadeRun(ctx, id, "app/mid"); err != nil || got != mid.ID {
		t.Fatalf("CascadeRun before binding = %q, %v; want %s", got, err, mid.ID)
	}
	if err := db.BindCascadeRun(ctx, id, "app/mid", mid.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.BindCascadeRun(ctx, id, "app/mid", mid.ID); err != nil {
		t.Fatalf("binding the same run again: %v", err)
	}
	if err := db.BindCascadeRun(ctx, id, "app/mid", "999"); !errors.Is(err, ErrCascadeBound) {
		t.Fatalf("binding another run: %v, want ErrCascadeBound", err)
	}
	fail := func(r *Run) error { r.State = Failed; return nil }
	_, cs, err = db.FinishRun(ctx, mid.ID, fail, func(r *Run, prev string, part *CascadePart) *Cascade {
		if part == nil {
			t.Fatal("the cascade run's step got no cascade")
		}
		part.Node("app/mid").State = CascadeFailed
		leaf := part.Node("app/leaf")
		leaf.State, leaf.Note = CascadeStopped, "waiting on app/mid, which failed"
		return nil
	})
	if err != nil || len(cs) != 1 {
		t.Fatalf("finish mid: %v, %v", err, cs)
	}
	full, err := db.CascadeStartedBy(ctx, root.ID)
	if err != nil {
		t.Fatal(err)
	}
	leaf := full.Node("app/leaf")
	if leaf.Run == "" || full.Finished.IsZero() || cs[0].Finished.IsZero() {
		t.Fatalf("stopped leaf %+v, finished %v", leaf, full.Finished)
	}
	if got := full.Node("app/mid"); got.State != CascadeFailed || got.Run != mid.ID {
		t.Errorf("mid node %+v", got)
	}
	skipped, err := db.Run(ctx, leaf.Run)
	if err != nil || skipped.State != Skipped || skipped.Error != "waiting on app/mid, which failed" || skipped.Project != "app/leaf" {
		t.Fatalf("skipped run %+v, %v", skipped, err)
	}
	if open, err := db.OpenCascades(ctx); err != nil || len(open) != 0 {
		t.Fatalf("OpenCascades after the last node settled = %v, %v", open, err)
	}
	if all, err := db.Cascades(ctx, 10); err != nil || len(all) != 1 {
		t.Fatalf("Cascades = %v, %v", all, err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
