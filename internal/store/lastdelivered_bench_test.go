package store

import (
	"context"
	"testing"

	"github.com/cccp-project/cccp/internal/types"
)

// BenchmarkLastDeliveredBehind1000Rescans finds the delivered image of an
// entry whose 1,000 newest runs are passed rescans (about three years of
// daily rescans): from delivered/ (LastDelivered), and the way rescan used
// to, paging 50 passed runs at a time to the first branch run.
func BenchmarkLastDeliveredBehind1000Rescans(b *testing.B) {
	db, _ := openTest(b)
	ctx := context.Background()
	step := func(*Run, string, *CascadePart) *Cascade { return nil }
	r := passedBranch("org/app", "sha256:delivered")
	if err := db.CreateRun(ctx, r); err != nil {
		b.Fatal(err)
	}
	if _, _, err := db.FinishRun(ctx, r.ID, pass, step); err != nil {
		b.Fatal(err)
	}
	for range 1000 {
		scan := &Run{Project: "org/app", Kind: types.KindRescan, State: Passed, Stages: []Stage{
			{Name: types.StageBuild, State: Skipped}, {Name: types.StageTest, State: Passed, Checks: []Check{{Name: "scan", State: Passed, Findings: []string{"CVE-2026-0001 openssl"}}}}}}
		if err := db.CreateRun(ctx, scan); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("LastDelivered", func(b *testing.B) {
		for b.Loop() {
			got, err := db.LastDelivered(ctx, "org/app")
			if err != nil || got.ID != r.ID {
				b.Fatalf("%v %v", got, err)
			}
		}
	})
	b.Run("paging passed runs", func(b *testing.B) {
		for b.Loop() {
			var found *Run
			before := ""
			for found == nil {
				runs, err := db.Runs(ctx, RunFilter{Project: "org/app", States: []State{Passed}, Limit: 50, Before: before})
				if err != nil || len(runs) == 0 {
					b.Fatal(err)
				}
				for _, run := range runs {
					if run.Kind == types.KindBranch {
						found = run
						break
					}
				}
				before = runs[len(runs)-1].ID
			}
			if found.ID != r.ID {
				b.Fatal(found.ID)
			}
		}
	})
}
