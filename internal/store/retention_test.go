package store

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cccp-project/cccp/internal/types"
)

func TestDeleteRuns(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "cccp.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	mk := func(project string, kind types.RunKind, state State, forge string) string {
		t.Helper()
		r := &Run{Project: project, Kind: kind, State: state, Cause: Cause{Forge: forge}}
		if err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	oldBranch := mk("org/app", types.KindBranch, Passed, "")    // 1
	oldPR := mk("org/app", types.KindPR, Failed, "")            // 2
	unreported := mk("org/app", types.KindPR, Passed, "github") // 3: change pending
	running := mk("org/app", types.KindBranch, Running, "")     // 4
	latestPR := mk("org/app", types.KindPR, Passed, "")         // 5: latest pr and any
	other := mk("org/app-infra", types.KindBranch, Passed, "")  // 6: latest of its project
	latestBranch := mk("org/app", types.KindBranch, Passed, "") // 7: latest branch and any
	_ = latestPR

	deleted, err := db.DeleteRuns(ctx, []string{oldBranch, oldPR, unreported, running, "5", other, latestBranch, "99"})
	if want := []string{oldBranch, oldPR}; !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	if !errors.Is(err, ErrKept) || !errors.Is(err, ErrNotFound) {
		t.Errorf("err %v: want ErrKept and ErrNotFound named", err)
	}
	for _, id := range []string{oldBranch, oldPR} {
		if _, err := db.Run(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("run %s after delete: %v, want ErrNotFound", id, err)
		}
	}
	got, err := db.Runs(ctx, RunFilter{Project: "org/app"})
	if err != nil {
		t.Fatalf("runs after delete: %v", err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	if want := []string{"7", "5", "4", "3"}; !slices.Equal(ids, want) {
		t.Errorf("org/app runs %v, want %v (project index in step)", ids, want)
	}
	if _, err := db.LatestRuns(ctx, ""); err != nil {
		t.Errorf("latest after delete: %v", err)
	}
	if un, err := db.UnfinishedRuns(ctx); err != nil || len(un) != 1 || un[0].ID != running {
		t.Errorf("unfinished %v (%v), want run %s", un, err, running)
	}
}

// A run whose mail is not yet decided (its finished mark, written when it
// finished) is kept until the notifier has queued or skipped its mail, as a
// run whose forge report is pending is.
func TestDeleteRunsKeepsRunWithMailPending(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "cccp.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	old := &Run{Project: "org/app", Kind: types.KindBranch, State: Running}
	if err := db.CreateRun(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateRun(ctx, old.ID, func(r *Run) error { r.State = Failed; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRun(ctx, &Run{Project: "org/app", Kind: types.KindBranch, State: Passed}); err != nil {
		t.Fatal(err)
	}
	deleted, err := db.DeleteRuns(ctx, []string{old.ID})
	if len(deleted) != 0 || !errors.Is(err, ErrKept) {
		t.Fatalf("with its mail pending: deleted %v, err %v; want kept", deleted, err)
	}
	if err := db.QueueMail(ctx, nil, []string{old.ID}); err != nil {
		t.Fatal(err)
	}
	deleted, err = db.DeleteRuns(ctx, []string{old.ID})
	if !slices.Equal(deleted, []string{old.ID}) || err != nil {
		t.Fatalf("with its mail decided: deleted %v, err %v; want it deleted", deleted, err)
	}
}
