package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/cccp-project/cccp/internal/types"
)

// BenchmarkRedeliveryLookup is what knowing a delivery's request again
// costs with 1,000 runs of one project stored, each made by a delivery:
// the link (DeliveryRun) against the scan of the project's last 100 runs
// that bot.enqueue did before.
func BenchmarkRedeliveryLookup(b *testing.B) {
	db, _ := openTest(b)
	ctx := context.Background()
	const n = 1000
	for i := range n {
		r := pushRun("org/app:latest", "main", fmt.Sprint("c", i), fmt.Sprint("d", i))
		r.State = Passed
		r.Stages = []Stage{{Name: types.StageBuild, State: Passed}, {Name: types.StageTest, State: Passed}}
		if err := db.CreateRun(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	want := pushRun("org/app:latest", "main", fmt.Sprint("c", n-50), fmt.Sprint("d", n-50)).Cause
	b.Run("link", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.DeliveryRun(ctx, want, "org/app:latest", types.KindBranch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scan-100", func(b *testing.B) {
		for b.Loop() {
			runs, err := db.Runs(ctx, RunFilter{Project: "org/app:latest", Limit: 100})
			if err != nil || len(runs) != 100 {
				b.Fatal(err)
			}
		}
	})
}
