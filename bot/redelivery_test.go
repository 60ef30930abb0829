package bot

import (
	"context"
	"testing"

	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// A delivery processed again is known by its stored link to the run it
// made, however many runs of the project came after it (a busy branch, a
// cascade, rescans) and whatever state that run is in.
func TestRedeliveryAfterManyRunsQueuesNothing(t *testing.T) {
	tb := newTestBot(t, nil)
	ctx := context.Background()
	req := pipeline.Request{Project: "hello/web:latest", Kind: types.KindBranch, Cause: pushCause("d1", sha1), Commit: sha1}
	first, err := tb.enqueue(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	tb.pipe.finish(ctx, first.ID, store.Passed)
	for range 150 {
		if err := tb.db.CreateRun(ctx, &store.Run{Project: "hello/web:latest", Kind: types.KindBranch,
			Cause: store.Cause{Kind: types.CauseManual}, State: store.Passed}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := tb.enqueue(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != first.ID || len(tb.pipe.Requests()) != 1 {
		t.Errorf("redelivered d1: run %s, pipeline asked %v; want run %s and one request", got.ID, tb.pipe.Requests(), first.ID)
	}
}
