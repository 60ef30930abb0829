package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/cascade"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Cascades: when a branch run delivers an image with a new digest, every
// entry below it (Config.Children, transitively) is rebuilt once, each
// after all of its parents in the cascade delivered, against their new
// digests (pinning in parents.go reads what was delivered last). The
// cascade is recorded with the parent's final result in one transaction
// (CascadeStore.FinishRun), and each child's node is settled with the
// child's result the same way, so a crash loses or doubles nothing: Start
// queues what a crash left claimed but not queued (resumeCascades).

// CascadeStore keeps cascades with the runs' final results; the Store
// must implement it when Config.Children is set (internal/store.DB does).
type CascadeStore interface {
	FinishRun(ctx context.Context, id string, fn func(*store.Run) error, step store.CascadeStep) (*store.Run, []*store.Cascade, error)
	BindCascadeRun(ctx context.Context, id, project, run string) error
	OpenCascades(ctx context.Context) ([]*store.Cascade, error)
	CascadeRun(ctx context.Context, id, project string) (string, error)
	LatestRuns(ctx context.Context, kind string) (map[string]*store.Run, error)
}

// UpToDate tells whether a passed run delivered nothing new because its
// inputs were unchanged: its build stage did not run. (The up-to-date
// decision of build keys ends a run that way; a rebuild that happens to
// give the same digest counts as unchanged too, see outcome.)
func UpToDate(run *store.Run) bool {
	if run.State != store.Passed {
		return false
	}
	for _, s := range run.Stages {
		if s.Name == types.StageBuild {
			return s.State == store.Skipped
		}
	}
	return false
}

// outcome is what a finished run means for the nodes below it.
func outcome(run *store.Run, prev string) cascade.State {
	switch run.State {
	case store.Passed:
	case store.Cancelled:
		return cascade.Cancelled
	default:
		return cascade.Failed
	}
	if d := run.DeliveredDigest(); d != "" && d != prev && !UpToDate(run) {
		return cascade.Delivered
	}
	return cascade.Unchanged
}

// finishRun records a run's final result (fn) and, with cascades on, what
// it means for them, then queues the children that became ready.
func (r *Runner) finishRun(ctx context.Context, id string, fn func(*store.Run) error) (*store.Run, error) {
	cs, ok := r.cascades()
	if !ok {
		return r.cfg.Store.UpdateRun(ctx, id, fn)
	}
	// A run that may start a cascade plans it with the FROM edges of the
	// latest builds, read before the transaction.
	// Those edges cost a read of every project's latest run, so a run that
	// cannot deliver a new digest (see mayStartCascade) skips them; should
	// it start a cascade after all, its step starts none and the cascade
	// is recorded by a second FinishRun with the edges read.
	children := r.cfg.Children
	lazy := false
	if run, err := r.cfg.Store.Run(ctx, id); err == nil && run.Kind == types.KindBranch && run.Cause.Cascade == "" {
		if r.mayStartCascade(ctx, run, fn) {
			children = r.childrenOf(ctx, cs)
		} else {
			lazy = true
		}
	}
	// Only the nodes this transaction claimed are queued here: a cascade
	// may hold nodes claimed by another run's result and not yet bound.
	var claimed []claim
	missed := false
	step := func(run *store.Run, prev string, part *store.CascadePart) *store.Cascade {
		claimed = claimed[:0]
		missed = lazy && part == nil && run.Kind == types.KindBranch && run.Cause.Cascade == "" && outcome(run, prev) == cascade.Delivered
		if missed {
			return nil
		}
		start, part2 := r.cascadeStep(run, prev, part, children)
		claimed = append(claimed, part2...)
		return start
	}
	run, changed, err := cs.FinishRun(ctx, id, fn, step)
	if err != nil {
		return nil, err
	}
	if missed {
		r.log.Info("cascade: a run expected to deliver nothing new did; planning its cascade now", "run", id)
		children, lazy = r.childrenOf(ctx, cs), false
		var more []*store.Cascade
		if run, more, err = cs.FinishRun(ctx, id, func(*store.Run) error { return nil }, step); err != nil {
			return nil, err
		}
		changed = append(changed, more...)
	}
	r.follow(ctx, changed)
	// A node claimed without a run is one of a cascade recorded before
	// its runs were made with it (an older cccp): queue it the old way.
	var unbound []claim
	for _, cl := range claimed {
		if cl.node == nil || cl.node.Run == "" {
			unbound = append(unbound, cl)
		}
	}
	if len(unbound) > 0 {
		// Never block a worker on a full queue; what is not queued when
		// cccp stops is queued by the next Start.
		go r.queueClaimed(context.WithoutCancel(ctx), unbound)
	}
	return run, nil
}

// follow brings the queue in step with the runs a cascade transaction
// made or changed: a new run is queued (waiting, or ready), a released
// one becomes ready, a skipped one leaves. A new run supersedes older
// runs of its target, as an enqueued one does, except the runs that
// still wait on the parents of another cascade: the new run does not wait
// on those parents, so both build, each after its own.
func (r *Runner) follow(ctx context.Context, changed []*store.Cascade) {
	var fresh, all []*store.Run
	r.qmu.Lock()
	for _, c := range changed {
		for _, run := range c.Runs {
			if _, known := r.sched.known[run.ID]; !known && !run.State.Done() {
				fresh = append(fresh, run)
			}
			r.place(run)
			all = append(all, run)
		}
	}
	r.qmu.Unlock()
	for _, run := range all {
		r.notify(run)
	}
	for _, run := range fresh {
		older, ok := r.olderOfTarget(run)
		if !ok {
			r.supersede(ctx, run) // before Start: the store knows them all
			continue
		}
		for _, id := range older {
			r.qmu.Lock()
			_, waiting := r.sched.waiting[id]
			r.qmu.Unlock()
			if waiting {
				continue
			}
			if err := r.Cancel(ctx, id, supersedeReason(run)); err != nil && !errors.Is(err, store.ErrNotFound) {
				r.log.Warn("supersede", "run", id, "err", err)
			}
		}
	}
}

// newRun is store.Cascade.NewRun: the run of node n, as Enqueue would
// make it.
func (r *Runner) newRun(c *store.Cascade, n *store.CascadeNode) *store.Run {
	run := &store.Run{Project: n.Project, Kind: types.KindBranch, State: store.Queued,
		Cause: cascadeCause(c), Stages: plannedStages(types.KindBranch)}
	// An entry gone from the index since the plan keeps its run: it fails
	// when it would start, so its subtree stops.
	if e, ok := r.cfg.Entries(n.Project); ok {
		run.GitURL, run.Branch = e.GitURL, e.GitBranch
	}
	return run
}

func cascadeCause(c *store.Cascade) store.Cause {
	return store.Cause{Kind: types.CauseParent, Parent: c.Root, Cascade: c.ID,
		Detail: fmt.Sprintf("cascade %s from run %s of %s", c.ID, c.RootRun, c.Root)}
}

// claim is a node a cascade step moved to queued: its run is to be queued.
type claim struct {
	c       *store.Cascade // its ID is set once the transaction commits
	project string
	node    *store.CascadeNode // as stored: its Run is set when made with the cascade
}

// childrenOf is Config.Children (the index's depends-on) joined by the
// edges the Dockerfiles' FROM lines gave: every entry whose latest branch
// build started FROM a pinned image of another entry is that entry's child,
// even when its depends-on does not say so. (An entry cccp never built has
// no recorded FROM yet; its depends-on is all there is.)
func (r *Runner) childrenOf(ctx context.Context, cs CascadeStore) func(string) []string {
	latest, err := cs.LatestRuns(ctx, string(types.KindBranch))
	if err != nil {
		r.log.Warn("cascade: FROM edges of the latest builds", "err", err) // some records unreadable
	}
	learned := map[string][]string{}
	for child, run := range latest {
		if _, ok := r.cfg.Entries(child); !ok {
			continue
		}
		for _, b := range stageOf(run, types.StageBuild).Bases {
			if !b.Pinned {
				continue
			}
			repo, tag, ok := backend.OwnImage(b.Image, r.cfg.OwnRegistries)
			if !ok {
				continue
			}
			parent := entryNameOf(repo) + ":" + tag
			if _, ok := r.cfg.Entries(parent); ok && parent != child && !slices.Contains(learned[parent], child) {
				learned[parent] = append(learned[parent], child)
			}
		}
	}
	for _, kids := range learned {
		slices.Sort(kids)
	}
	return func(key string) []string {
		kids := r.cfg.Children(key)
		if len(learned[key]) == 0 {
			return kids
		}
		out := slices.Clone(kids)
		for _, c := range learned[key] {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
		return out
	}
}

func (r *Runner) cascades() (CascadeStore, bool) {
	if r.cfg.Children == nil {
		return nil, false
	}
	cs, ok := r.cfg.Store.(CascadeStore)
	return cs, ok
}

// cascadeStep is the store.CascadeStep of the Runner: it settles the
// run's node in its cascade and starts a cascade below a branch run that
// delivered a new digest (unless the run is itself part of one, whose plan
// already holds its descendants).
// It returns the new cascade and the nodes it claimed (queued).
func (r *Runner) cascadeStep(run *store.Run, prev string, part *store.CascadePart, children func(string) []string) (*store.Cascade, []claim) {
	out := outcome(run, prev)
	var claimed []claim
	if part != nil {
		// A node settles with its run; a waiting one too, when its run
		// ended before it was released (cancelled).
		if n := part.Node(run.Project); n != nil && (n.State == store.CascadeQueued && n.Run == "" || openStateNode(n) && n.Run == run.ID) {
			n.Run, n.State = run.ID, string(out)
			claimed = advanceBelow(part, n)
		}
	}
	if run.Kind != types.KindBranch || run.Cause.Cascade != "" || out != cascade.Delivered {
		return nil, claimed
	}
	nodes := cascade.Plan(run.Project, children)
	if len(nodes) == 0 {
		return nil, claimed
	}
	c := &store.Cascade{Root: run.Project, Digest: run.DeliveredDigest(), Nodes: make([]store.CascadeNode, len(nodes)), NewRun: r.newRun}
	at := map[string]int{}
	for i, n := range nodes {
		c.Nodes[i] = store.CascadeNode{Project: n.Key, WaitsOn: n.WaitsOn, State: store.CascadeWaiting}
		at[n.Key] = i
	}
	for _, n := range nodes {
		for _, p := range n.WaitsOn {
			if i, ok := at[p]; ok {
				c.Nodes[i].Next = append(c.Nodes[i].Next, n.Key)
			}
		}
	}
	return c, append(claimed, advance(c)...)
}

// advanceBelow decides the nodes below settled, a node of part that just
// settled: only those can change, so a step reads a few nodes, not the
// whole cascade. A node stopped or unchanged passes the decision on to
// the nodes below it.
func advanceBelow(part *store.CascadePart, settled *store.CascadeNode) []claim {
	state := func(k string) cascade.State {
		if k == part.Root {
			return cascade.Delivered
		}
		if n := part.Node(k); n != nil {
			return cascade.State(n.State)
		}
		return ""
	}
	blame := map[string]string{}
	lookup := map[string]cascade.State{}
	var claimed []claim
	next := slices.Clone(settled.Next)
	for len(next) > 0 {
		k := next[0]
		next = next[1:]
		n := part.Node(k)
		if n == nil || n.State != store.CascadeWaiting {
			continue
		}
		for _, p := range n.WaitsOn {
			lookup[p] = state(p)
			if pn := part.Node(p); pn != nil && pn.Blame != "" {
				blame[p] = pn.Blame
			}
		}
		d, ok := cascade.Decide(cascade.Node{Key: k, WaitsOn: n.WaitsOn}, lookup, blame)
		if !ok {
			continue
		}
		if apply(n, d, state(d.Blame)) {
			claimed = append(claimed, claim{c: part.Cascade, project: k, node: n})
		} else {
			next = append(next, n.Next...)
		}
	}
	return claimed
}

func openStateNode(n *store.CascadeNode) bool {
	return n.State == store.CascadeWaiting || n.State == store.CascadeQueued
}

// apply records decision d on node n (blamed: the state of the node that
// stopped it); it tells whether n was queued.
func apply(n *store.CascadeNode, d cascade.Decision, blamed cascade.State) bool {
	n.State = string(d.State)
	switch d.State {
	case cascade.Stopped:
		n.Blame = d.Blame
		n.Note = fmt.Sprintf("waiting on %s, which failed", d.Blame)
		if blamed == cascade.Cancelled {
			n.Note = fmt.Sprintf("waiting on %s, which was cancelled", d.Blame)
		}
	case cascade.Queued:
		return true
	}
	return false
}

// advance applies cascade.Advance to a stored cascade and returns the
// nodes it queued.
func advance(c *store.Cascade) []claim {
	nodes := make([]cascade.Node, len(c.Nodes))
	state := map[string]cascade.State{c.Root: cascade.Delivered}
	blame := map[string]string{}
	for i, n := range c.Nodes {
		nodes[i] = cascade.Node{Key: n.Project, WaitsOn: n.WaitsOn}
		state[n.Project] = cascade.State(n.State)
		if n.Blame != "" {
			blame[n.Project] = n.Blame
		}
	}
	var claimed []claim
	for _, d := range cascade.Advance(nodes, state, blame) {
		if n := c.Node(d.Key); apply(n, d, state[d.Blame]) {
			claimed = append(claimed, claim{c: c, project: n.Project, node: n})
		}
	}
	return claimed
}

// queueClaimed queues a run of each claimed node and binds it to its node.
func (r *Runner) queueClaimed(ctx context.Context, claimed []claim) {
	cs, _ := r.cascades()
	for _, cl := range claimed {
		c := cl.c
		cause := cascadeCause(c)
		run, err := r.Enqueue(ctx, Request{Project: cl.project, Kind: types.KindBranch, Cause: cause})
		if errors.Is(err, ErrUnknownProject) {
			// Removed from the index since the plan: it fails, so its
			// subtree stops instead of waiting for ever.
			r.failNode(ctx, cl.project, cause)
			continue
		}
		if err != nil {
			r.log.Error("queue cascade run", "cascade", c.ID, "project", cl.project, "err", err)
			continue
		}
		if err := cs.BindCascadeRun(ctx, c.ID, cl.project, run.ID); err != nil {
			r.log.Error("bind cascade run", "cascade", c.ID, "project", cl.project, "run", run.ID, "err", err)
		}
	}
}

// failNode records a failed run for a claimed node that cannot be queued,
// and settles the node with it.
func (r *Runner) failNode(ctx context.Context, project string, cause store.Cause) {
	now := time.Now().UTC()
	run := &store.Run{Project: project, Kind: types.KindBranch, Cause: cause, State: store.Failed, Created: now, Finished: now,
		Error: fmt.Sprintf("project %s is no longer in the index", project)}
	if err := r.cfg.Store.CreateRun(ctx, run); err != nil {
		r.log.Error("fail cascade node", "cascade", cause.Cascade, "project", project, "err", err)
		return
	}
	r.notify(run)
	r.settleCascade(ctx, run)
}

// settleCascade records the end of a cascade run that did not end through
// finish (cancelled, or given up after too many resumes).
func (r *Runner) settleCascade(ctx context.Context, run *store.Run) {
	if run == nil || !run.State.Done() || run.Cause.Cascade == "" {
		return
	}
	if _, ok := r.cascades(); !ok {
		return
	}
	if _, err := r.finishRun(ctx, run.ID, func(*store.Run) error { return nil }); err != nil {
		r.log.Error("settle cascade run", "run", run.ID, "err", err)
	}
}

// resumeCascades picks up the open cascades after a restart: a node
// claimed but not queued is queued (or bound to the run that was queued
// just before the stop), and a node whose run ended without being settled
// is settled.
func (r *Runner) resumeCascades(ctx context.Context) {
	cs, ok := r.cascades()
	if !ok {
		return
	}
	open, err := cs.OpenCascades(ctx)
	if err != nil {
		r.log.Error("resume cascades", "err", err)
		return
	}
	var unqueued []claim
	for _, c := range open {
		r.log.Info("resuming cascade", "cascade", c.ID, "root", c.Root)
		for _, n := range c.Nodes {
			if n.State != store.CascadeQueued {
				continue
			}
			if n.Run == "" {
				id, err := cs.CascadeRun(ctx, c.ID, n.Project)
				if err != nil {
					r.log.Error("resume cascade", "cascade", c.ID, "project", n.Project, "err", err)
					continue
				}
				if id == "" {
					unqueued = append(unqueued, claim{c: c, project: n.Project})
					continue
				}
				if err := cs.BindCascadeRun(ctx, c.ID, n.Project, id); err != nil {
					r.log.Error("resume cascade", "cascade", c.ID, "project", n.Project, "err", err)
				}
				n.Run = id
			}
			run, err := r.cfg.Store.Run(ctx, n.Run)
			if err != nil {
				r.log.Error("resume cascade", "cascade", c.ID, "run", n.Run, "err", err)
				continue
			}
			r.settleCascade(ctx, run)
		}
	}
	r.queueClaimed(ctx, unqueued)
}
