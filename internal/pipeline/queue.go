package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cccp-project/cccp/internal/queue"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// The Runner's queue is the store's: every queued run is a store run in
// state queued (runs_unfinished), and its place in line is derived from
// what is stored with it (its sequence number, its kind and cause, and
// whether it had started), so a restart rebuilds the same order. What the
// Runner keeps in memory is an index of those runs for internal/queue's
// policy, filled by Start and Enqueue.

// backendClass is the key in store.Run.Backend that keeps a coalesced
// run's priority class when it is better than its newest cause's (a
// manual run that a rescan was folded into stays a person's).
const backendClass = "queue-class"

// queueAgeStep is how long a queued run waits before it rises one
// priority class: a rescan waits at most three of them behind a stream of
// pull requests.
const queueAgeStep = time.Hour

// maxFolds bounds store.Run.Folded: a run keeps the newest folds.
const maxFolds = 100

// scheduler is the in-memory index of the queued runs. Everything but
// Pick's one pass is O(1) (or the runs of one target): pos finds an item
// in items, known and byTarget map runs and targets both ways.
type scheduler struct {
	items   []queue.Item
	pos     map[string]int        // run ID -> its index in items
	waiting map[string]queue.Item // run ID -> queued run still waiting on cascade parents: never picked
	// held are queued runs whose record an Enqueue is changing (a fold):
	// out of line until the change is stored, so no worker takes a run
	// that is being changed. ready: it goes back in line then.
	held    map[string]*heldItem
	targets map[string]string // target key -> ID of its queued, never started run
	known   map[string]string // run ID -> target key, of every run queued or working here
	// byTarget is known the other way round: target key -> its run IDs.
	byTarget map[string]map[string]struct{}
	loaded   bool           // Start queued the store's unfinished runs: known has them all
	running  map[string]int // app-id -> runs working now
	last     string         // app-id served last
	wake     chan struct{}  // closed and replaced when an item is added
}

type heldItem struct {
	it    queue.Item
	ready bool
}

func newScheduler() scheduler {
	return scheduler{pos: map[string]int{}, waiting: map[string]queue.Item{}, held: map[string]*heldItem{},
		targets: map[string]string{}, known: map[string]string{}, byTarget: map[string]map[string]struct{}{},
		running: map[string]int{}, wake: make(chan struct{})}
}

// know records run id of target key as queued or working here.
func (s *scheduler) know(id, key string) {
	if old, ok := s.known[id]; ok {
		if old == key {
			return
		}
		s.forget(id)
	}
	s.known[id] = key
	ids := s.byTarget[key]
	if ids == nil {
		ids = map[string]struct{}{}
		s.byTarget[key] = ids
	}
	ids[id] = struct{}{}
}

// forget ends know: run id is neither queued nor working here.
func (s *scheduler) forget(id string) {
	key, ok := s.known[id]
	if !ok {
		return
	}
	delete(s.known, id)
	if ids := s.byTarget[key]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(s.byTarget, key)
		}
	}
}

// add puts a ready item in line (or, while it is held, marks it to go in
// line when released) and wakes the workers.
func (s *scheduler) add(it queue.Item) {
	if h, ok := s.held[it.ID]; ok {
		h.it, h.ready = it, true
		return
	}
	s.pos[it.ID] = len(s.items)
	s.items = append(s.items, it)
	close(s.wake)
	s.wake = make(chan struct{})
}

// remove takes item id out of line; the order of items carries no
// meaning (Pick compares every item), so the last one fills the gap.
func (s *scheduler) remove(id string) (queue.Item, bool) {
	i, ok := s.pos[id]
	if !ok {
		return queue.Item{}, false
	}
	it, last := s.items[i], len(s.items)-1
	s.items[i] = s.items[last]
	s.pos[s.items[i].ID] = i
	s.items = s.items[:last]
	delete(s.pos, id)
	return it, true
}

// hold takes run id out of line while its record changes; unhold puts it
// back.
func (s *scheduler) hold(id string) {
	h := &heldItem{}
	h.it, h.ready = s.remove(id)
	s.held[id] = h
}

// unhold ends hold: the run goes back in line if it was or has become
// ready meanwhile and was not dropped.
func (s *scheduler) unhold(id string) {
	h, ok := s.held[id]
	if !ok {
		return
	}
	delete(s.held, id)
	if h.ready {
		s.add(h.it)
	}
}

// targetKey names what a run is for: newer requests for the same key
// supersede or coalesce with older ones.
func targetKey(run *store.Run) string {
	if run.Kind == types.KindPR || run.Kind == types.KindTrial {
		return run.Project + "\x00" + string(run.Kind) + "\x00" + run.Cause.Repo + "\x00" + strconv.Itoa(run.Cause.PR)
	}
	return run.Project + "\x00" + string(run.Kind) + "\x00" + run.Branch
}

// classOf is a stored run's priority class.
func classOf(run *store.Run) queue.Class {
	c := queue.ClassOf(run.Kind, run.Cause.Kind)
	if s, ok := run.Backend[backendClass]; ok {
		if n, err := strconv.Atoi(s); err == nil && queue.Class(n) < c {
			c = queue.Class(n)
		}
	}
	return c
}

func itemOf(run *store.Run) (queue.Item, error) {
	seq, err := strconv.ParseUint(run.ID, 10, 64)
	if err != nil {
		return queue.Item{}, fmt.Errorf("run ID %q: %w", run.ID, err)
	}
	// A cascade run ages from its release: waiting on its parents is not
	// waiting in line.
	queued := run.Created
	if !run.Released.IsZero() {
		queued = run.Released
	}
	return queue.Item{ID: run.ID, Seq: seq, Project: queue.ProjectOf(run.Project), Class: classOf(run),
		Resumed: run.State == store.Running, Queued: queued}, nil
}

// push adds a stored run to the queue; the caller holds r.qmu.
func (r *Runner) push(run *store.Run) {
	if _, ok := r.sched.pos[run.ID]; ok {
		return // resumed and enqueued before Start: queued once
	}
	if _, ok := r.sched.waiting[run.ID]; ok {
		return
	}
	if _, ok := r.sched.held[run.ID]; ok {
		return
	}
	it, err := itemOf(run)
	if err != nil {
		r.log.Error("queue run", "run", run.ID, "err", err)
		return
	}
	r.sched.know(run.ID, targetKey(run))
	if !it.Resumed {
		r.sched.targets[targetKey(run)] = run.ID
	}
	if len(run.WaitsOn) > 0 {
		r.sched.waiting[run.ID] = it
		return
	}
	r.sched.add(it)
}

// place follows a stored change of a queued cascade run (made, released,
// ended without working); the caller holds r.qmu.
func (r *Runner) place(run *store.Run) {
	switch it, waiting := r.sched.waiting[run.ID]; {
	case run.State.Done():
		r.drop(run.ID)
		r.sched.forget(run.ID)
	case waiting && len(run.WaitsOn) == 0:
		delete(r.sched.waiting, run.ID)
		it.Class, it.Queued = classOf(run), run.Released
		r.sched.add(it)
	case !waiting:
		r.push(run)
	}
}

// drop removes a run from the queue (cancelled while queued); the caller
// holds r.qmu.
func (r *Runner) drop(id string) {
	delete(r.sched.waiting, id)
	delete(r.sched.held, id)
	r.sched.remove(id)
	if k, ok := r.sched.known[id]; ok && r.sched.targets[k] == id {
		delete(r.sched.targets, k)
	}
}

// next waits for a queued run and takes it out of the queue, counted as
// running for its project until done is called. It returns false when ctx
// ends.
func (r *Runner) next(ctx context.Context) (id string, done func(), ok bool) {
	for {
		r.qmu.Lock()
		i := queue.Pick(r.sched.items, queue.State{Running: r.sched.running, Last: r.sched.last,
			Now: time.Now(), AgeStep: queueAgeStep})
		if i >= 0 {
			it := r.sched.items[i]
			r.drop(it.ID)
			r.sched.running[it.Project]++
			r.sched.last = it.Project
			r.qmu.Unlock()
			return it.ID, func() {
				r.qmu.Lock()
				r.sched.forget(it.ID)
				if r.sched.running[it.Project]--; r.sched.running[it.Project] <= 0 {
					delete(r.sched.running, it.Project)
				}
				r.qmu.Unlock()
			}, true
		}
		wake := r.sched.wake
		r.qmu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return "", nil, false
		}
	}
}

// olderOfTarget are the IDs of the runs queued or working here that are
// older than run and of its target; ok is false before Start has queued
// the store's unfinished runs (then only the store knows them all).
func (r *Runner) olderOfTarget(run *store.Run) (ids []string, ok bool) {
	r.qmu.Lock()
	defer r.qmu.Unlock()
	if !r.sched.loaded {
		return nil, false
	}
	key := targetKey(run)
	for id := range r.sched.byTarget[key] {
		if olderRun(id, run.ID) {
			ids = append(ids, id)
		}
	}
	return ids, true
}

// errNotQueued: the run to coalesce with has started or ended meanwhile.
var errNotQueued = errors.New("no longer queued")

// errKnownRequest: the request is one the queued run already holds (a
// webhook delivery processed again after a crash).
var errKnownRequest = errors.New("request already queued")

// sameRequest tells whether two causes are one forge delivery's request.
func sameRequest(a, b store.Cause) bool {
	return a.DeliveryID != "" && a.DeliveryID == b.DeliveryID && a.Forge == b.Forge && a.Commit == b.Commit
}

// coalesce folds run (a new request, not yet stored) into the queued run
// id of the same target: that run now builds run's commit for run's
// cause. The caller holds id (scheduler.hold), so no worker takes it
// meanwhile.
func (r *Runner) coalesce(ctx context.Context, id string, run *store.Run) (*store.Run, error) {
	return r.cfg.Store.UpdateRun(ctx, id, func(q *store.Run) error {
		if q.State != store.Queued || !q.Started.IsZero() {
			return errNotQueued
		}
		if sameRequest(q.Cause, run.Cause) {
			return errKnownRequest
		}
		for _, f := range q.Folded {
			if sameRequest(f.Cause, run.Cause) {
				return errKnownRequest
			}
		}
		class := min(classOf(q), queue.ClassOf(run.Kind, run.Cause.Kind))
		fold := store.Fold{Cause: q.Cause, Commit: q.Commit, By: cmp.Or(run.Commit, run.Cause.Commit), At: time.Now().UTC()}
		cause := run.Cause
		switch {
		case q.Cause.Cascade != "" && q.Cause.Kind == types.CauseParent:
			// A run of a cascade keeps its cascade (it settles its node
			// and releases its children); the request folded in is kept
			// as the fold, and the run builds its commit, after the
			// parents, at the better class of the two.
			fold.Cause, cause = run.Cause, q.Cause
		case q.Cause.Cascade != "":
			// A request that took over a cascade node (supersede.go)
			// hands the node on with the run.
			cause.Cascade = q.Cause.Cascade
		}
		q.Folded = append(q.Folded, fold)
		if len(q.Folded) > maxFolds {
			q.Folded = slices.Delete(q.Folded, 0, len(q.Folded)-maxFolds)
		}
		q.Cause, q.GitURL, q.Branch, q.Commit = cause, run.GitURL, run.Branch, run.Commit
		if q.Backend == nil {
			q.Backend = map[string]string{}
		}
		delete(q.Backend, backendEntry)
		if e, ok := run.Backend[backendEntry]; ok {
			q.Backend[backendEntry] = e
		}
		if class < queue.ClassOf(q.Kind, q.Cause.Kind) {
			q.Backend[backendClass] = strconv.Itoa(int(class))
		} else {
			delete(q.Backend, backendClass)
		}
		return nil
	})
}

// reclass updates the queued item of a coalesced run; the caller holds
// r.qmu.
func (r *Runner) reclass(run *store.Run) {
	c := classOf(run)
	if i, ok := r.sched.pos[run.ID]; ok {
		r.sched.items[i].Class = c
	}
	if h, ok := r.sched.held[run.ID]; ok {
		h.it.Class = c
	}
	if it, ok := r.sched.waiting[run.ID]; ok {
		it.Class = c
		r.sched.waiting[run.ID] = it
	}
}

// supersedeReason is the Error of a run cancelled because run came.
func supersedeReason(run *store.Run) string {
	commit := cmp.Or(run.Commit, run.Cause.Commit)
	if commit == "" {
		return "superseded by run " + run.ID
	}
	return fmt.Sprintf("superseded by run %s (commit %s)", run.ID, shortCommit(commit))
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// slot takes a slot of the stage's backend for the run, waiting visibly
// (the stage says so) while every slot is taken. The returned func gives
// the slot back. Stages without a limit return at once.
func (ex *execution) slot(ctx context.Context, name types.StageName) (release func(), err error) {
	sem := ex.r.slots[name]
	if sem == nil {
		return func() {}, nil
	}
	select {
	case sem <- struct{}{}:
		if stageOf(ex.run, name).Waiting != "" { // left by a stop of cccp while it waited
			ex.update(ctx, func(run *store.Run) { stageOf(run, name).Waiting = "" })
		}
		return func() { <-sem }, nil
	default:
	}
	waiting := fmt.Sprintf("waiting for a %s slot (%d of %d in use)", name, len(sem), cap(sem))
	ex.r.log.Info("stage waits for a slot", "run", ex.run.ID, "stage", name, "limit", cap(sem))
	ex.update(ctx, func(run *store.Run) { stageOf(run, name).Waiting = waiting })
	since := time.Now()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		ex.update(context.WithoutCancel(ctx), func(run *store.Run) { stageOf(run, name).Waiting = "" })
		return nil, ctx.Err()
	}
	ex.r.log.Info("stage got a slot", "run", ex.run.ID, "stage", name, "waited", time.Since(since).Round(time.Millisecond))
	ex.update(ctx, func(run *store.Run) { stageOf(run, name).Waiting = "" })
	return func() { <-sem }, nil
}
