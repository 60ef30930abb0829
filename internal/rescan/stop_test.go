package rescan

import (
	"context"
	"fmt"
	"testing"

	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
)

// stopOnEnqueue is a Runner whose Enqueue is where cccp stops: it ends the
// rescan's context and fails with it, as a queueing cut by the stop does.
type stopOnEnqueue struct {
	Runner
	stop context.CancelFunc
}

func (r stopOnEnqueue) Enqueue(ctx context.Context, req pipeline.Request) (*store.Run, error) {
	r.stop()
	return nil, fmt.Errorf("queue run of %s: %w", req.Project, ctx.Err())
}

// TestAnEntryCutByAStopIsLeftToDo: an entry that a stop of cccp reaches
// before its run is queued, whether it was handed to a worker after the
// stop (the hand-over's select, with ctx's end ready too, picks either)
// or its queueing ends with the stop, stays to do, so Resume scans it. It
// is not recorded as skipped or failed with the context's error, which
// counts as done. (Seen in TestResumeFinishesARescanCutByAStop under load:
// "skipped: find the delivered image: ...: context canceled", never
// scanned after the restart.)
func TestAnEntryCutByAStopIsLeftToDo(t *testing.T) {
	t.Run("handed over after the stop", func(t *testing.T) {
		w := openNoopWorld(t, worldOpts{n: 1, parallel: 1, seed: true})
		r, err := w.scanner.begin(context.Background(), "manual", 0)
		if err != nil {
			t.Fatal(err)
		}
		stopped, stop := context.WithCancel(context.Background())
		stop()
		w.scanner.scanEntry(stopped, r.ID, items(r)[0])
		p := w.scanner.Progress()
		if e := p.Entries[0]; e.State.Done() {
			t.Errorf("entry handed over after the stop: %s %q; want it left to do", e.State, e.Note)
		}
	})
	t.Run("queued as cccp stops", func(t *testing.T) {
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		w := openNoopWorld(t, worldOpts{n: 2, parallel: 1, seed: true,
			wrap: func(r Runner) Runner { return stopOnEnqueue{Runner: r, stop: stop} }})
		if _, err := w.scanner.Rescan(ctx, "manual"); err != nil {
			t.Fatal(err)
		}
		list, err := w.db.Rescans(context.Background(), 0)
		if err != nil || len(list) != 1 {
			t.Fatalf("rescans: %v %+v", err, list)
		}
		r := list[0]
		if r.Done() != 0 || !r.Finished.IsZero() {
			t.Errorf("rescan cut by a stop as its first run was queued: %d of %d done, finished %v; want none done, open", r.Done(), len(r.Entries), r.Finished)
		}
		for _, e := range r.Entries {
			if e.State.Done() {
				t.Errorf("entry %s: %s %q; want it left to do", e.Project, e.State, e.Note)
			}
		}
	})
}
