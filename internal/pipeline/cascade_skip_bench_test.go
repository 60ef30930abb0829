package pipeline

import (
	"context"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// BenchmarkUpToDateRunAmong1000 measures an up-to-date branch run (nothing
// new delivered) end to end, from Enqueue to its finish, with cascades on
// in an index of 1,000 entries, each with a latest branch build FROM its
// parent: the finish of such a run plans no cascade, so it need not read
// those 1,000 runs.
func BenchmarkUpToDateRunAmong1000(b *testing.B) {
	h := newHarness(b)
	children, entries := syntheticTree(benchN, 6)
	ctx := context.Background()
	for parent, kids := range children {
		for _, k := range kids {
			e := entries[k]
			run := &store.Run{Project: k, Kind: types.KindBranch, State: store.Passed, GitURL: e.GitURL, Branch: e.GitBranch,
				Stages: []store.Stage{{Name: types.StageBuild, State: store.Passed, Digest: digestA,
					Bases: []store.Base{{Image: "reg.test:5000/" + parent[:len(parent)-len(":latest")] + ":latest", Pinned: true, Digest: digestA}}}}}
			if err := h.db.CreateRun(ctx, run); err != nil {
				b.Fatal(err)
			}
		}
	}
	for k, e := range entries {
		h.entries[k] = e
	}
	h.cfg.Children = func(k string) []string { return children[k] }
	h.images.digests["reg.test:5000/demo/base:latest"] = digestA
	r := h.start(b)
	req := Request{Project: "demo/child:latest", Cause: store.Cause{Kind: types.CausePush}}
	if run := runAndWait(b, r, req); run.State != store.Passed || run.UpToDate {
		b.Fatalf("first run: %s up to date %v: %s", run.State, run.UpToDate, run.Error)
	}
	loopUpToDate(ctx, b, r, req)
}
