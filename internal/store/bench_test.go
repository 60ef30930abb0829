package store

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// fillDashboard stores 300 projects x 30 runs with three stages each.
func fillDashboard(b *testing.B) *DB {
	db, _ := openTest(b)
	ctx := context.Background()
	t0 := time.Now()
	for i := range 30 {
		for p := range 300 {
			r := &Run{Project: fmt.Sprintf("org%d/app%d", p%17, p), Kind: "branch",
				Cause:  Cause{Kind: "push", Commit: "0123456789abcdef0123456789abcdef01234567", Forge: "github", Repo: "org/app"},
				GitURL: "https://github.com/org/app", Branch: "main", State: Passed,
				Started: t0, Finished: t0.Add(time.Minute),
				Stages: []Stage{
					{Name: "build", State: Passed, Started: t0, Finished: t0, Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
					{Name: "test", State: Passed, Checks: []Check{{Name: "lint", State: Passed, Findings: []string{"DL3006 line 1"}}, {Name: "smoke", State: Passed}}},
					{Name: "deliver", State: Passed},
				},
				Images: []Image{{Ref: "registry/org/app:latest", Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
			}
			_ = i
			if err := db.CreateRun(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	return db
}

func BenchmarkLatestRuns(b *testing.B) {
	db := fillDashboard(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		m, err := db.LatestRuns(ctx, "branch")
		if err != nil || len(m) != 300 {
			b.Fatal(len(m), err)
		}
	}
}

func BenchmarkRunsProject30(b *testing.B) {
	db := fillDashboard(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		rs, err := db.Runs(ctx, RunFilter{Project: "org5/app5", Limit: 30})
		if err != nil || len(rs) != 30 {
			b.Fatal(len(rs), err)
		}
	}
}
