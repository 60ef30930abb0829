package pipeline

import (
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// TestSchedulerIndexStaysInStep drives the queue's bookkeeping with a
// long random mix of pushes, cascade releases, holds and drops, and
// checks after each step that the index maps agree with a plain model: a
// run is in line, waiting, held or gone, and pos, targets and byTarget
// say so.
func TestSchedulerIndexStaysInStep(t *testing.T) {
	r := &Runner{sched: newScheduler(), log: slog.New(slog.DiscardHandler)}
	rnd := rand.New(rand.NewPCG(7, 11))
	type where int
	const (
		gone where = iota
		inLine
		waiting
		heldReady
		heldWaiting
	)
	model := map[string]where{}
	runs := map[string]*store.Run{}
	next := 0
	for step := range 3000 {
		ids := make([]string, 0, len(model))
		for id, w := range model {
			if w != gone {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		pickID := func() string { return ids[rnd.IntN(len(ids))] }
		switch op := rnd.IntN(7); {
		case op <= 1 || len(ids) == 0: // a new run, a cascade's runs wait
			next++
			run := &store.Run{ID: strconv.Itoa(next), Project: "p" + strconv.Itoa(next%50) + "/app:latest",
				Kind: types.KindBranch, Branch: "main", State: store.Queued}
			if rnd.IntN(3) == 0 {
				run.WaitsOn = []string{"parent"}
				model[run.ID] = waiting
			} else {
				model[run.ID] = inLine
			}
			runs[run.ID] = run
			r.push(run)
		case op == 2: // released by its cascade
			id := pickID()
			if model[id] != waiting && model[id] != heldWaiting {
				r.push(runs[id]) // queued once: nothing changes
				continue
			}
			run := *runs[id]
			run.WaitsOn = nil
			runs[id] = &run
			r.place(&run)
			if model[id] == waiting {
				model[id] = inLine
			} else {
				model[id] = heldReady
			}
		case op == 3: // an Enqueue folds into it
			id := pickID()
			switch model[id] {
			case inLine:
				model[id] = heldReady
			case waiting:
				model[id] = heldWaiting
			default:
				continue
			}
			r.sched.hold(id)
		case op == 4: // the fold is stored
			id := pickID()
			switch model[id] {
			case heldReady:
				model[id] = inLine
			case heldWaiting:
				model[id] = waiting
			default:
				continue
			}
			r.sched.unhold(id)
		default: // cancelled
			id := pickID()
			r.drop(id)
			r.sched.forget(id)
			model[id] = gone
		}
		// Check the index against the model.
		if len(r.sched.pos) != len(r.sched.items) {
			t.Fatalf("step %d: %d positions for %d items", step, len(r.sched.pos), len(r.sched.items))
		}
		for i, it := range r.sched.items {
			if r.sched.pos[it.ID] != i {
				t.Fatalf("step %d: pos[%s] = %d, want %d", step, it.ID, r.sched.pos[it.ID], i)
			}
		}
		for id, w := range model {
			_, inItems := r.sched.pos[id]
			_, isWaiting := r.sched.waiting[id]
			h, isHeld := r.sched.held[id]
			got := gone
			switch {
			case inItems:
				got = inLine
			case isHeld && h.ready:
				got = heldReady
			case isHeld:
				got = heldWaiting
			case isWaiting:
				got = waiting
			}
			if got == heldWaiting && !isWaiting {
				got = -1
			}
			if got != w {
				t.Fatalf("step %d: run %s is %d, want %d", step, id, got, w)
			}
		}
		n := 0
		for key, ids := range r.sched.byTarget {
			for id := range ids {
				if r.sched.known[id] != key {
					t.Fatalf("step %d: byTarget[%q] names run %s, known as %q", step, key, id, r.sched.known[id])
				}
				n++
			}
		}
		if n != len(r.sched.known) {
			t.Fatalf("step %d: byTarget holds %d runs, known %d", step, n, len(r.sched.known))
		}
		for key, id := range r.sched.targets {
			if model[id] == gone || r.sched.known[id] != key {
				t.Fatalf("step %d: target %q names run %s, which is %d", step, key, id, model[id])
			}
		}
	}
}
