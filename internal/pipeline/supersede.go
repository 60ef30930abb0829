package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cccp-project/cccp/internal/store"
)

// Supersede and redelivery, made crash-safe:
//   - A new run and the end of the older runs of its target are one store
//     transaction (store.DB.CreateRunSuperseding), so a crash never leaves
//     two live runs of one target. A branch run that ends an older run of
//     a cascade takes that run's place in the cascade (the store rebinds
//     the node in the same transaction), so the descendants wait on the
//     new run instead of being stopped by the cancellation.
//   - Start reconciles what an older cccp, or a crash between the
//     transactions of a cascade step and its supersede (follow), left:
//     the newest run of a target wins, each older one ends "superseded by
//     run N".
//   - A request of a forge delivery that already made a run (its link is
//     stored with the run, store.DB.DeliveryRun) returns that run, in
//     whatever state it is: a delivery routed again after a crash, or
//     redelivered by its forge, makes nothing new.

// knownRequest returns the run that run's forge delivery already made, or
// nil.
func (r *Runner) knownRequest(ctx context.Context, run *store.Run) (*store.Run, error) {
	if run.Cause.Forge == "" || run.Cause.DeliveryID == "" {
		return nil, nil
	}
	q, err := r.cfg.Store.DeliveryRun(ctx, run.Cause, run.Project, run.Kind)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up the runs of delivery %s: %w", run.Cause.DeliveryID, err)
	}
	return q, nil
}

// supersedeSpec is how run ends the older runs of its target: cancelled,
// saying by which run. Once Start queued the store's unfinished runs, the
// candidates are the runs known here; before, every unfinished run is.
// The caller holds r.qmu.
func (r *Runner) supersedeSpec(run *store.Run) store.Supersede {
	s := store.Supersede{
		Match: func(old *store.Run) bool { return sameTarget(old, run) },
		End:   func(old, by *store.Run) { markCancelled(old, supersedeReason(by)) },
	}
	if r.sched.loaded {
		s.Older = []string{}
		for id := range r.sched.byTarget[targetKey(run)] {
			s.Older = append(s.Older, id)
		}
	}
	return s
}

// create stores run and ends the older runs of its target in one
// transaction, then queues run; the caller holds the target's enqueuing
// lock, not r.qmu, and passes the returned runs to ended. r.qmu is not
// held across the store write (a slow disk must not hold the workers'
// picks): the older runs are held out of line meanwhile, so no worker
// starts one the transaction is ending.
func (r *Runner) create(ctx context.Context, run *store.Run) ([]*store.Run, error) {
	r.qmu.Lock()
	spec := r.supersedeSpec(run)
	for _, id := range spec.Older {
		r.sched.hold(id)
	}
	r.qmu.Unlock()
	ended, err := r.cfg.Store.CreateRunSuperseding(ctx, run, spec)
	r.qmu.Lock()
	for _, id := range spec.Older {
		r.sched.unhold(id)
	}
	if err != nil {
		r.qmu.Unlock()
		return nil, err
	}
	if _, placed := r.sched.known[run.ID]; !placed { // a cascade or Start may have placed it meanwhile
		r.push(run)
	}
	for _, old := range ended {
		r.drop(old.ID)
		r.sched.forget(old.ID)
	}
	stale, newest := r.liveBeside(run, spec.Older)
	r.qmu.Unlock()
	r.endStale(ctx, stale, newest, run)
	return ended, nil
}

// liveBeside returns, after run's transaction, the runs of its target
// that came here meanwhile and still live beside it (a cascade step of the
// same target stored during the write, which the transaction could not
// see), except those waiting on cascade parents, and the newest run of
// the target. The caller holds r.qmu.
func (r *Runner) liveBeside(run *store.Run, seen []string) (stale []string, newest string) {
	key := targetKey(run)
	newest = run.ID
	for id := range r.sched.byTarget[key] {
		if olderRun(newest, id) {
			newest = id
		}
	}
	for id := range r.sched.byTarget[key] {
		if _, waits := r.sched.waiting[id]; id == newest || waits || (slices.Contains(seen, id) && id != run.ID) {
			continue
		}
		stale = append(stale, id)
	}
	return stale, newest
}

// endStale ends stale runs of run's target as superseded by the newest
// (run itself, or a newer cascade run), as Start's reconcile would.
func (r *Runner) endStale(ctx context.Context, stale []string, newest string, run *store.Run) {
	if len(stale) == 0 {
		return
	}
	by := run
	if newest != run.ID {
		n, err := r.cfg.Store.Run(ctx, newest)
		if err != nil {
			r.log.Warn("supersede: read the newest run of a target", "run", newest, "err", err)
			return
		}
		by = n
	}
	for _, id := range stale {
		r.log.Warn("two live runs of one target: the older one is superseded", "run", id, "by", by.ID, "project", run.Project)
		if err := r.Cancel(ctx, id, supersedeReason(by)); err != nil && !errors.Is(err, store.ErrNotFound) {
			r.log.Warn("supersede", "run", id, "err", err)
		}
	}
}

// ended follows runs that a transaction ended (cancelled): their work
// stops, they are reported, their cascade nodes settle and their waiters
// wake. The caller does not hold r.qmu.
func (r *Runner) ended(ctx context.Context, runs []*store.Run) {
	for _, run := range runs {
		r.mu.Lock()
		cancel := r.active[run.ID]
		r.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		r.notify(run)
		if run.State.Done() {
			r.settleCascade(ctx, run)
			r.release(run.ID)
		}
	}
}

// reconcile ends, among the unfinished runs Start found, every run older
// than the newest of its target, except a run that still waits on the
// parents of its cascade (follow keeps those: the newer run does not wait
// on them, so both build). It returns the runs still unfinished, and the
// ones it ended, for ended once the queue is loaded.
func (r *Runner) reconcile(ctx context.Context, unfinished []*store.Run) (live, gone []*store.Run) {
	newest := map[string]*store.Run{}
	for _, run := range unfinished {
		if n := newest[targetKey(run)]; n == nil || olderRun(n.ID, run.ID) {
			newest[targetKey(run)] = run
		}
	}
	endedIDs := map[string]bool{}
	for _, by := range newest {
		var older []string
		for _, run := range unfinished {
			if run != by && sameTarget(run, by) && olderRun(run.ID, by.ID) && len(run.WaitsOn) == 0 {
				older = append(older, run.ID)
			}
		}
		if len(older) == 0 {
			continue
		}
		s := store.Supersede{Older: older,
			Match: func(old *store.Run) bool { return sameTarget(old, by) && len(old.WaitsOn) == 0 },
			End:   func(old, by *store.Run) { markCancelled(old, supersedeReason(by)) }}
		ended, err := r.cfg.Store.SupersedeRuns(ctx, by.ID, s)
		if err != nil {
			r.log.Error("reconcile runs of one target", "run", by.ID, "project", by.Project, "err", err)
			continue
		}
		for _, old := range ended {
			r.log.Warn("run superseded at start: a newer run of its target was left beside it", "run", old.ID, "by", by.ID, "project", old.Project)
			endedIDs[old.ID] = true
			gone = append(gone, old)
		}
		if len(ended) > 0 {
			// by may have taken over a cascade node of an ended run.
			if fresh, err := r.cfg.Store.Run(ctx, by.ID); err == nil {
				*by = *fresh
			}
		}
	}
	live = slices.DeleteFunc(slices.Clone(unfinished), func(run *store.Run) bool { return endedIDs[run.ID] })
	return live, gone
}
