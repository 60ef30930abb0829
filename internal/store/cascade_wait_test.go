package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/types"
)

// TestCascadeRunsWaitAndAreReleasedWithTheirParents: a cascade with
// NewRun stores the run of every open node with the root's result, waiting
// on the node's parents; a parent's result narrows, releases or skips
// them in its own transaction, and says which runs changed.
func TestCascadeRunsWaitAndAreReleasedWithTheirParents(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	root := passedBranch("app/base", "sha256:1")
	if err := db.CreateRun(ctx, root); err != nil {
		t.Fatal(err)
	}
	newRun := func(c *Cascade, n *CascadeNode) *Run {
		return &Run{Project: n.Project, Kind: types.KindBranch, Cause: Cause{Kind: types.CauseParent, Cascade: c.ID}}
	}
	_, cs, err := db.FinishRun(ctx, root.ID, pass, func(*Run, string, *CascadePart) *Cascade {
		return &Cascade{NewRun: newRun, Nodes: []CascadeNode{
			{Project: "app/mid", WaitsOn: []string{"app/base"}, State: CascadeQueued},
			{Project: "app/side", WaitsOn: []string{"app/base"}, State: CascadeQueued},
			{Project: "app/leaf", WaitsOn: []string{"app/mid", "app/side"}, State: CascadeWaiting},
			{Project: "app/tail", WaitsOn: []string{"app/side"}, State: CascadeWaiting},
		}}
	})
	if err != nil || len(cs) != 1 || len(cs[0].Runs) != 4 {
		t.Fatalf("finish root: %v, cascades %+v", err, cs)
	}
	db = reopen(t, db, path) // what a crash right after would find
	c, err := db.CascadeStartedBy(ctx, root.ID)
	if err != nil {
		t.Fatal(err)
	}
	run := func(project string) *Run {
		t.Helper()
		r, err := db.Run(ctx, c.Node(project).Run)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for project, waits := range map[string][]string{"app/mid": nil, "app/side": nil,
		"app/leaf": {"app/mid", "app/side"}, "app/tail": {"app/side"}} {
		r := run(project)
		if r.State != Queued || !slices.Equal(r.WaitsOn, waits) || (waits == nil) == r.Released.IsZero() || r.Cause.Cascade != c.ID {
			t.Errorf("%s: %s waits on %q released %v cause %+v; want queued waiting on %q", project, r.State, r.WaitsOn, r.Released, r.Cause, waits)
		}
	}
	unfinished, err := db.UnfinishedRuns(ctx)
	if err != nil || len(unfinished) != 4 {
		t.Fatalf("unfinished %d runs, %v; want the 4 of the cascade", len(unfinished), err)
	}
	// side settles unchanged: tail is skipped, leaf waits on mid only.
	side := run("app/side")
	_, cs, err = db.FinishRun(ctx, side.ID, pass, func(r *Run, _ string, part *CascadePart) *Cascade {
		part.Node("app/side").State = CascadeUnchanged
		part.Node("app/tail").State = CascadeUnchanged
		part.Node("app/leaf") // still waiting
		return nil
	})
	if err != nil || len(cs) != 1 || len(cs[0].Runs) != 2 {
		t.Fatalf("finish side: %v, %+v", err, cs)
	}
	if tail := run("app/tail"); tail.State != Skipped || tail.Error != noteUnchanged || len(tail.WaitsOn) != 0 {
		t.Errorf("tail %s %q waits on %q; want skipped, parent unchanged", tail.State, tail.Error, tail.WaitsOn)
	}
	if leaf := run("app/leaf"); !slices.Equal(leaf.WaitsOn, []string{"app/mid"}) || !leaf.Released.IsZero() {
		t.Errorf("leaf waits on %q released %v; want mid only", leaf.WaitsOn, leaf.Released)
	}
	// mid delivers: leaf is released in mid's transaction.
	mid := run("app/mid")
	finished := func(r *Run) error { r.State, r.Finished = Passed, time.Now().UTC(); return nil }
	_, cs, err = db.FinishRun(ctx, mid.ID, finished, func(r *Run, _ string, part *CascadePart) *Cascade {
		part.Node("app/mid").State = CascadeDelivered
		part.Node("app/leaf").State = CascadeQueued
		return nil
	})
	if err != nil || len(cs) != 1 || len(cs[0].Runs) != 1 {
		t.Fatalf("finish mid: %v, %+v", err, cs)
	}
	mid = run("app/mid")
	if leaf := run("app/leaf"); leaf.State != Queued || len(leaf.WaitsOn) != 0 || mid.Finished.IsZero() || leaf.Released.Before(mid.Finished) {
		t.Errorf("leaf %s waits on %q released %v (mid finished %v); want released after", leaf.State, leaf.WaitsOn, leaf.Released, mid.Finished)
	}
}
