package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cccp-project/cccp/internal/types"
)

func TestRunsFilterKind(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	for i, kind := range []types.RunKind{types.KindBranch, types.KindRescan, types.KindPR, types.KindRescan, types.KindBranch} {
		state := Passed
		if i == 3 {
			state = Failed
		}
		if err := db.CreateRun(ctx, &Run{Project: "org/app", Kind: kind, State: state}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateRun(ctx, &Run{Project: "org/other", Kind: types.KindRescan, State: Passed}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		f    RunFilter
		want []string
	}{
		{"kind", RunFilter{Kind: types.KindRescan}, []string{"6", "4", "2"}},
		{"project kind", RunFilter{Project: "org/app", Kind: types.KindRescan}, []string{"4", "2"}},
		{"project kind state", RunFilter{Project: "org/app", Kind: types.KindRescan, States: []State{Passed}}, []string{"2"}},
		{"project kind limit", RunFilter{Project: "org/app", Kind: types.KindBranch, Limit: 1}, []string{"5"}},
		{"project kind before", RunFilter{Project: "org/app", Kind: types.KindBranch, Before: "5"}, []string{"1"}},
		{"no such kind", RunFilter{Kind: types.KindTrial}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.Runs(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("Runs(%+v) = %v, want %v", tt.f, ids(got), tt.want)
			}
		})
	}
}

// TestLastDeliveredPastOtherRuns: the run that delivered last is found
// behind 25 newer passed runs of other kinds and an up-to-date run, both
// from delivered/ (runs finished with FinishRun) and by walking the runs
// (finished with UpdateRun, or the delivering run removed).
func TestLastDeliveredPastOtherRuns(t *testing.T) {
	ctx := context.Background()
	step := func(*Run, string, *CascadePart) *Cascade { return nil }
	for _, tt := range []struct {
		name     string
		finish   func(db *DB, r *Run) error
		deleteIt bool // remove the delivering run: the older one is found
	}{
		{"delivered record", func(db *DB, r *Run) error { _, _, err := db.FinishRun(ctx, r.ID, pass, step); return err }, false},
		{"walk", func(db *DB, r *Run) error { _, err := db.UpdateRun(ctx, r.ID, pass); return err }, false},
		{"delivering run removed", func(db *DB, r *Run) error { _, _, err := db.FinishRun(ctx, r.ID, pass, step); return err }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			if _, err := db.LastDelivered(ctx, "org/app"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("nothing delivered: err = %v, want ErrNotFound", err)
			}
			var delivered []*Run
			for _, d := range []string{"sha256:old", "sha256:new"} {
				r := passedBranch("org/app", d)
				if err := db.CreateRun(ctx, r); err != nil {
					t.Fatal(err)
				}
				if err := tt.finish(db, r); err != nil {
					t.Fatal(err)
				}
				delivered = append(delivered, r)
			}
			// Another project's delivery, and an up-to-date run (its
			// deliver stage skipped) after the delivering one.
			other := passedBranch("org/app-infra", "sha256:infra")
			upToDate := passedBranch("org/app", "sha256:new")
			upToDate.Stages[2].State = Skipped
			for _, r := range []*Run{other, upToDate} {
				if err := db.CreateRun(ctx, r); err != nil {
					t.Fatal(err)
				}
				if err := tt.finish(db, r); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 25 {
				kind := types.KindRescan
				if i%5 == 0 {
					kind = types.KindTrial
				}
				r := &Run{Project: "org/app", Kind: kind, State: Running,
					Stages: []Stage{{Name: types.StageBuild, State: Passed, Digest: fmt.Sprintf("sha256:%d", i)}, {Name: types.StageDeliver, State: Passed}}}
				if err := db.CreateRun(ctx, r); err != nil {
					t.Fatal(err)
				}
				if err := tt.finish(db, r); err != nil {
					t.Fatal(err)
				}
			}
			want := delivered[1]
			if tt.deleteIt {
				if err := db.QueueMail(ctx, nil, []string{want.ID}); err != nil {
					t.Fatal(err)
				}
				if _, err := db.DeleteRuns(ctx, []string{want.ID}); err != nil {
					t.Fatal(err)
				}
				want = delivered[0]
			}
			got, err := db.LastDelivered(ctx, "org/app")
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != want.ID || got.DeliveredDigest() != want.Stages[0].Digest {
				t.Errorf("LastDelivered = run %s (%s), want run %s (%s)", got.ID, got.DeliveredDigest(), want.ID, want.Stages[0].Digest)
			}
		})
	}
}
