// Package pipeline runs cccp's pipelines: for one index entry, build the
// image from its git repository and push it as `:test`, test that exact
// digest and tag it `:rc`, then deliver it under its final tags. Each step
// only runs when the one before passed, so a tag never points at an image
// that did not pass the stages before it.
//
// A Runner owns a queue of runs kept in the store; workers take runs from it
// in the order internal/queue decides (priority class, then projects in
// turn), a newer request for the same target coalesces with a queued run or
// supersedes a running one, and runs left unfinished by a crash are resumed
// at the stage they were in. The Runner
// keeps the state machine, the queue and every decision: which commit a run
// builds (resolved before the build), which parent digest a FROM is pinned
// to, which checks block, which tags move. The heavy work of the build and
// test stages is done by stage backends behind internal/backend's
// interfaces: internal/backend/local (git, buildah and podman on this
// machine) builds and tests, internal/backend/openshift builds on an
// OpenShift cluster, internal/backend/jenkins tests as a Jenkins job;
// delivery is a manifest-only retag through Images.
package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/digestcache"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/keylock"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Resolver turns a branch into the exact commit it points at now, before a
// run's build starts; every stage then works on that commit.
type Resolver interface {
	Resolve(ctx context.Context, gitURL, branch string) (commit string, err error)
}

// Images moves tags in the target registry.
type Images interface {
	// Tag points dst at the manifest src (a digest reference).
	Tag(ctx context.Context, src, dst string) error
	// Digest is the manifest digest a reference points at.
	Digest(ctx context.Context, ref string) (string, error)
}

// Target names image references in the delivery registry.
type Target interface {
	Ref(repository, tag string) string
	DigestRef(repository, digest string) string
}

// Store keeps runs.
type Store interface {
	CreateRun(ctx context.Context, r *store.Run) error
	// CreateRunSuperseding and SupersedeRuns end the older runs of a
	// target in the new run's transaction; DeliveryRun finds the run a
	// forge delivery's request made (supersede.go).
	CreateRunSuperseding(ctx context.Context, r *store.Run, s store.Supersede) ([]*store.Run, error)
	SupersedeRuns(ctx context.Context, by string, s store.Supersede) ([]*store.Run, error)
	DeliveryRun(ctx context.Context, c store.Cause, project string, kind types.RunKind) (*store.Run, error)
	UpdateRun(ctx context.Context, id string, fn func(*store.Run) error) (*store.Run, error)
	Run(ctx context.Context, id string) (*store.Run, error)
	UnfinishedRuns(ctx context.Context) ([]*store.Run, error)
}

// Logs creates a stage's log.
type Logs interface {
	Create(runID, stage string) (io.WriteCloser, error)
}

// RunEnder is implemented by a backend that keeps something per run (the
// local backend's checkout); the Runner calls EndRun once a run is
// finished.
type RunEnder interface {
	EndRun(ctx context.Context, runID string) error
}

// Observer is told about every change of a run (stage started, finished,
// run done). It must not block for long; reporting goes through an outbox.
type Observer func(r *store.Run)

// Defaults of Config.
const (
	DefaultStageTimeout = 30 * time.Minute
	DefaultMaxResumes   = 3
)

// Config is what a Runner needs. Resolver, Builder, Tester, Images, Target,
// Store, Logs and Entries are required.
type Config struct {
	Resolver Resolver
	Builder  backend.Builder
	Tester   backend.Tester
	Images   Images
	Target   Target
	Store    Store
	Logs     Logs
	// Entries looks up the index entry a run is for by its key
	// (`app-id/job-id:desired-tag`, see index.Entry.Key), at run time, so
	// an index reload is seen by queued runs.
	Entries func(key string) (*index.Entry, bool)
	// Workers is how many runs work at once (default 1: builds are CPU-
	// and disk-bound, and a 2-core machine gains little from more).
	Workers int
	// MaxConcurrent limits how many stages of a name run at once across
	// all runs: the capacity of that stage's backend (a build farm of two,
	// a test cluster of four). A stage whose backend has no free slot
	// waits, and says so in Stage.Waiting. Missing or 0: only Workers
	// limits it.
	MaxConcurrent map[types.StageName]int
	// Blocking names the checks whose failure fails the test stage.
	// Default: DefaultBlocking.
	Blocking map[types.CheckName]bool
	// OwnRegistries are the registry hosts under which Dockerfiles name
	// this index's own images: the delivery registry and any public name
	// of it. A FROM of such an image (or of one with no registry host) is
	// pinned to the digest delivered last.
	OwnRegistries []string
	// Attester gives a branch run's image its evidence (SBOM, signature,
	// provenance) before deliver moves any tag; nil delivers without.
	// Pull-request and trial runs never reach it.
	Attester Attester
	// Parents verifies each parent digest a build is pinned to before the
	// build starts; nil trusts them.
	Parents ParentVerifier
	// StageTimeout bounds each stage (default DefaultStageTimeout). A stage
	// that runs longer is cancelled at its backend and fails with reason
	// DeadlineExceeded.
	StageTimeout time.Duration
	// MaxResumes is how often a run may be resumed after cccp stopped in
	// the middle of it (default DefaultMaxResumes); the next resume fails
	// it, so a run that crashes cccp cannot crash-loop it.
	MaxResumes int
	// Children, when set, gives the keys of the entries built FROM the
	// entry of the given key; a branch run that delivers a new digest then
	// starts a cascade (cascade.go) that rebuilds every descendant once,
	// parents first. Store must then implement CascadeStore. Unset,
	// nothing is chained.
	Children func(name string) []string
	Logger   *slog.Logger
	Observer Observer
	// Trees, when set, gives the object IDs of a build's context folder and
	// Dockerfile for its build key (see uptodate.go); unset, the commit
	// stands for them.
	Trees Trees
	// BuildKeySalt is hashed into every build key: a digest of the stage
	// backends' settings that change their output, so a changed setting
	// rebuilds everything once.
	BuildKeySalt string
	// BaseDigests tells the up-to-date check which digest a FROM image
	// that is not this index's own points at (uptodate.go); default: a
	// digestcache over Images.Digest with its default TTL.
	BaseDigests BaseDigests
}

// DefaultBlocking returns the default set of blocking checks.
func DefaultBlocking() map[types.CheckName]bool {
	m := map[types.CheckName]bool{}
	for _, n := range types.DefaultBlocking {
		m[n] = true
	}
	return m
}

// Request asks for one run.
type Request struct {
	Project string        // the entry's key, app-id/job-id:desired-tag
	Kind    types.RunKind // default types.KindBranch
	Cause   store.Cause
	// GitURL and Branch override the entry's (a PR from a fork builds the
	// fork's head); Commit pins an exact commit.
	GitURL, Branch, Commit string
	// Entry, when set, is built instead of the index's entry of that name
	// (trial builds of an entry not yet merged).
	Entry *index.Entry
	// Force builds even when the build key equals the last delivered
	// run's (a manual run).
	Force bool
	// Digest is the image a rescan tests (the entry's delivered digest,
	// sha256:...); required for types.KindRescan, unused otherwise.
	Digest string
}

// backendEntry is the key in store.Run.Backend that holds the proposed
// entry of a trial run (JSON).
const backendEntry = "entry"

// EntryOf returns the entry a run was enqueued with (a trial run's
// proposed entry), or nil when it builds the index's entry.
func EntryOf(run *store.Run) (*index.Entry, error) {
	raw, ok := run.Backend[backendEntry]
	if !ok {
		return nil, nil
	}
	var e index.Entry
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return nil, fmt.Errorf("run %s: stored entry: %w", run.ID, err)
	}
	return &e, nil
}

// ErrUnknownProject is returned for a run of a name the index lacks.
var ErrUnknownProject = errors.New("unknown project")

// Runner queues and works runs.
type Runner struct {
	cfg   Config
	log   *slog.Logger
	slots map[types.StageName]chan struct{} // per-stage semaphores (MaxConcurrent)

	// qmu guards sched, and is held for in-memory changes only: Enqueue
	// writes the store first and then publishes, and takes a run it folds
	// into out of line meanwhile (scheduler.hold), so a worker never takes
	// a run while it is being changed.
	qmu   sync.Mutex
	sched scheduler
	// enqueuing serialises Enqueue per target key.
	enqueuing keylock.Map

	mu      sync.Mutex
	active  map[string]context.CancelFunc // run ID -> cancel of its work
	waiters map[string][]chan struct{}    // run ID -> closed when done
	started bool
	done    chan struct{} // closed when every worker has returned
}

// Stopped is closed once the workers have returned after Start's context
// ended, so a caller can wait for running stages to clean up.
func (r *Runner) Stopped() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return r.done
}

// New checks cfg and returns a Runner; Start begins working.
func New(cfg Config) (*Runner, error) {
	var missing []string
	for name, v := range map[string]any{"Resolver": cfg.Resolver, "Builder": cfg.Builder, "Tester": cfg.Tester,
		"Images": cfg.Images, "Target": cfg.Target, "Store": cfg.Store, "Logs": cfg.Logs, "Entries": cfg.Entries} {
		if v == nil {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		return nil, fmt.Errorf("pipeline: missing configuration: %s", strings.Join(missing, ", "))
	}
	if _, ok := cfg.Store.(CascadeStore); cfg.Children != nil && !ok {
		return nil, errors.New("pipeline: Children is set but the Store keeps no cascades (CascadeStore)")
	}
	if cfg.BaseDigests == nil {
		c, err := digestcache.New(digestcache.Config{Head: cfg.Images.Digest})
		if err != nil {
			return nil, err
		}
		cfg.BaseDigests = c
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Blocking == nil {
		cfg.Blocking = DefaultBlocking()
	}
	if cfg.StageTimeout <= 0 {
		cfg.StageTimeout = DefaultStageTimeout
	}
	if cfg.MaxResumes <= 0 {
		cfg.MaxResumes = DefaultMaxResumes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	slots := map[types.StageName]chan struct{}{}
	for name, n := range cfg.MaxConcurrent {
		if n > 0 {
			slots[name] = make(chan struct{}, n)
		}
	}
	return &Runner{
		cfg:     cfg,
		log:     cfg.Logger,
		slots:   slots,
		sched:   newScheduler(),
		active:  map[string]context.CancelFunc{},
		waiters: map[string][]chan struct{}{},
	}, nil
}

// Start resumes unfinished runs and starts the workers; they stop when ctx
// is done. Runs cut off by that are resumed by the next Start.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return errors.New("pipeline: already started")
	}
	r.started = true
	r.mu.Unlock()
	unfinished, err := r.cfg.Store.UnfinishedRuns(ctx)
	if err != nil {
		return fmt.Errorf("pipeline: resume: %w", err)
	}
	sealer, _ := r.cfg.Logs.(interface {
		Seal(runID, stage string) error
	})
	unfinished, superseded := r.reconcile(ctx, unfinished)
	for _, run := range unfinished {
		r.log.Info("resuming run", "run", run.ID, "project", run.Project, "state", run.State)
		// A stage cut off by the crash keeps the log it had, complete and
		// readable, until the stage runs again.
		for _, st := range run.Stages {
			if st.State == store.Running && sealer != nil {
				if err := sealer.Seal(run.ID, string(st.Name)); err != nil {
					r.log.Warn("seal log of interrupted stage", "run", run.ID, "stage", st.Name, "err", err)
				}
			}
		}
		if run.State == store.Running {
			if !r.countResume(ctx, run.ID) {
				continue
			}
		}
		r.qmu.Lock()
		r.push(run)
		r.qmu.Unlock()
	}
	r.qmu.Lock()
	r.sched.loaded = true
	r.qmu.Unlock()
	r.ended(ctx, superseded)
	r.mu.Lock()
	r.done = make(chan struct{})
	r.mu.Unlock()
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); r.work(ctx) }()
	}
	go func() { wg.Wait(); close(r.done) }()
	go r.resumeCascades(ctx)
	return nil
}

// Enqueue stores a new run and queues it; only the newest commit's result
// of a target (project, kind and branch or pull request) matters:
//   - While a run of the same target is queued and has not started, the
//     request is folded into it instead: that run (same ID, same place in
//     line) now builds the request's commit for the request's cause, and
//     is returned. A burst of pushes thus makes one run.
//   - Otherwise a new run is stored, and an older running run of the same
//     target is cancelled, its Error saying by which run and commit, in
//     the same store transaction (supersede.go).
//   - A request of a forge delivery that already made a run (any state,
//     across restarts) returns that run and stores nothing.
func (r *Runner) Enqueue(ctx context.Context, req Request) (*store.Run, error) {
	entry := req.Entry
	if entry == nil {
		e, ok := r.cfg.Entries(req.Project)
		if !ok {
			return nil, fmt.Errorf("enqueue %s: %w", req.Project, ErrUnknownProject)
		}
		entry = e
	}
	kind := req.Kind
	if kind == "" {
		kind = types.KindBranch
	}
	var backend map[string]string
	if req.Entry != nil {
		// The proposed entry is kept with the run, so a trial run resumes
		// after a restart and re-runs with what was proposed.
		b, err := json.Marshal(req.Entry)
		if err != nil {
			return nil, fmt.Errorf("enqueue %s: %w", entry.Key(), err)
		}
		backend = map[string]string{backendEntry: string(b)}
	}
	stages := plannedStages(kind)
	if kind == types.KindRescan {
		if !validDigest(req.Digest) {
			return nil, fmt.Errorf("enqueue rescan of %s: %w", entry.Key(), errNoDigest)
		}
		stages[0].Digest = req.Digest
	}
	run := &store.Run{
		Backend: backend,
		Project: entry.Key(),
		Kind:    kind,
		Cause:   req.Cause,
		GitURL:  cmp.Or(req.GitURL, entry.GitURL),
		Branch:  cmp.Or(req.Branch, entry.GitBranch),
		Commit:  req.Commit,
		Force:   req.Force,
		State:   store.Queued,
		Stages:  stages,
	}
	// One Enqueue per target at a time, so a burst folds into one run;
	// r.qmu is held only for the queue's in-memory changes, never across
	// a store write, so a slow disk does not hold the workers' picks.
	key := targetKey(run)
	unlock, err := r.enqueuing.Lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("enqueue %s: %w", entry.Key(), err)
	}
	defer unlock()
	// A request its forge delivery already answered gets that run (the
	// per-target lock keeps a second Enqueue of the target out meanwhile).
	if q, err := r.knownRequest(ctx, run); q != nil || err != nil {
		if err != nil {
			return nil, fmt.Errorf("enqueue %s: %w", entry.Key(), err)
		}
		r.log.Info("request already made a run", "run", q.ID, "project", q.Project, "delivery", run.Cause.DeliveryID)
		return q, nil
	}
	r.qmu.Lock()
	id, queued := r.sched.targets[key]
	if queued {
		r.sched.hold(id) // no worker takes it while it changes
	}
	r.qmu.Unlock()
	if queued {
		q, err := r.coalesce(ctx, id, run)
		r.qmu.Lock()
		if err == nil {
			r.reclass(q)
		}
		r.sched.unhold(id)
		if errors.Is(err, errNotQueued) && r.sched.targets[key] == id {
			delete(r.sched.targets, key)
		}
		r.qmu.Unlock()
		switch {
		case err == nil:
			unlock()
			r.log.Info("request folded into queued run", "run", q.ID, "project", q.Project, "commit", q.Commit, "cause", q.Cause.Kind)
			r.notify(q)
			return q, nil
		case errors.Is(err, errKnownRequest):
			unlock()
			q, err := r.cfg.Store.Run(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("enqueue %s: %w", entry.Key(), err)
			}
			return q, nil
		case !errors.Is(err, errNotQueued):
			return nil, fmt.Errorf("enqueue %s: fold into queued run %s: %w", entry.Key(), id, err)
		}
	}
	superseded, err := r.create(ctx, run)
	if err != nil {
		return nil, fmt.Errorf("enqueue %s: %w", entry.Key(), err)
	}
	unlock()
	r.ended(ctx, superseded)
	r.notify(run)
	return run, nil
}

func plannedStages(kind types.RunKind) []store.Stage {
	if kind == types.KindRescan {
		return []store.Stage{{Name: types.StageTest, State: store.Queued}}
	}
	stages := []store.Stage{{Name: types.StageBuild, State: store.Queued}, {Name: types.StageTest, State: store.Queued}}
	if kind == types.KindBranch {
		stages = append(stages, store.Stage{Name: types.StageDeliver, State: store.Queued})
	}
	return stages
}

// supersede cancels older unfinished runs for the same target as run.
func (r *Runner) supersede(ctx context.Context, run *store.Run) {
	// Only older runs: two runs enqueued at once must not cancel each
	// other.
	older, ok := r.olderOfTarget(run)
	if !ok {
		unfinished, err := r.cfg.Store.UnfinishedRuns(ctx)
		if err != nil {
			r.log.Warn("supersede: list runs", "err", err)
			return
		}
		for _, old := range unfinished {
			if olderRun(old.ID, run.ID) && sameTarget(old, run) {
				older = append(older, old.ID)
			}
		}
	}
	for _, id := range older {
		if err := r.Cancel(ctx, id, supersedeReason(run)); err != nil && !errors.Is(err, store.ErrNotFound) {
			r.log.Warn("supersede", "run", id, "err", err)
		}
	}
}

// olderRun tells whether run ID a was created before run ID b (IDs are
// decimal sequence numbers).
func olderRun(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return a < b
	}
	return x < y
}

func sameTarget(a, b *store.Run) bool {
	if a.Project != b.Project || a.Kind != b.Kind {
		return false
	}
	if a.Kind == types.KindPR || a.Kind == types.KindTrial {
		return a.Cause.Repo == b.Cause.Repo && a.Cause.PR == b.Cause.PR
	}
	return a.Branch == b.Branch
}

// Cancel stops a queued or running run. Cancelling a finished run is not an
// error and changes nothing.
func (r *Runner) Cancel(ctx context.Context, id, reason string) error {
	// Record the cancellation first, then stop the work: a worker that
	// loads the run after this sees it finished.
	run, err := r.cfg.Store.UpdateRun(ctx, id, func(run *store.Run) error {
		if run.State.Done() {
			return nil
		}
		markCancelled(run, reason)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cancel run %s: %w", id, err)
	}
	r.qmu.Lock()
	r.drop(id)
	if run.State.Done() {
		r.sched.forget(id)
	}
	r.qmu.Unlock()
	r.ended(ctx, []*store.Run{run})
	return nil
}

func markCancelled(run *store.Run, reason string) {
	now := time.Now().UTC()
	run.State = store.Cancelled
	run.Error = reason
	run.Finished = now
	for i := range run.Stages {
		s := &run.Stages[i]
		switch s.State {
		case store.Running:
			s.State = store.Cancelled
			s.Finished = now
			s.Error = reason
		case store.Queued:
			s.State = store.Skipped
		}
	}
}

// Wait blocks until run id is finished and returns its final record.
func (r *Runner) Wait(ctx context.Context, id string) (*store.Run, error) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.waiters[id] = append(r.waiters[id], ch)
	r.mu.Unlock()
	// It may have finished before we registered.
	if run, err := r.cfg.Store.Run(ctx, id); err != nil {
		return nil, err
	} else if run.State.Done() {
		return run, nil
	}
	select {
	case <-ch:
		return r.cfg.Store.Run(ctx, id)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *Runner) release(id string) {
	r.mu.Lock()
	ws := r.waiters[id]
	delete(r.waiters, id)
	delete(r.active, id)
	r.mu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}

func (r *Runner) notify(run *store.Run) {
	if r.cfg.Observer != nil && run != nil {
		r.cfg.Observer(run)
	}
}

func (r *Runner) work(ctx context.Context) {
	for {
		id, done, ok := r.next(ctx)
		if !ok {
			return
		}
		r.execute(ctx, id)
		done()
	}
}

// execute works one run from the first stage that has not passed.
func (r *Runner) execute(ctx context.Context, id string) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Claim the run before reading it, so a Cancel that comes in between
	// reaches this work, and a run queued twice (resumed and enqueued at
	// start) is worked once.
	r.mu.Lock()
	if _, busy := r.active[id]; busy {
		r.mu.Unlock()
		return
	}
	r.active[id] = cancel
	r.mu.Unlock()
	run, err := r.cfg.Store.Run(ctx, id)
	if err != nil {
		r.log.Error("load run", "run", id, "err", err)
		r.mu.Lock()
		delete(r.active, id)
		r.mu.Unlock()
		return
	}
	if run.State.Done() {
		r.release(id)
		return
	}
	if len(run.WaitsOn) > 0 { // never works before its cascade releases it
		r.mu.Lock()
		delete(r.active, id)
		r.mu.Unlock()
		return
	}
	entry, err := EntryOf(run)
	if err != nil {
		r.finish(ctx, id, store.Failed, err.Error())
		return
	}
	if entry == nil {
		e, ok := r.cfg.Entries(run.Project)
		if !ok {
			r.finish(ctx, id, store.Failed, fmt.Sprintf("project %s is no longer in the index", run.Project))
			return
		}
		entry = e
	}

	ex := &execution{r: r, run: run, entry: entry, base: ctx, reattach: map[types.StageName]bool{}}
	for _, st := range run.Stages {
		// A stage still marked running was cut off by a stop of cccp: its
		// work may still go on at its backend.
		if st.State == store.Running {
			ex.reattach[st.Name] = true
		}
	}
	var failed types.StageName
	for i := range run.Stages {
		st := run.Stages[i]
		if runCtx.Err() != nil {
			break
		}
		// Resume: stages that passed before a restart are not run again.
		if failed != "" || st.State == store.Passed || st.State == store.Skipped || st.State == store.Cancelled {
			continue
		}
		release, err := ex.slot(runCtx, st.Name)
		if err == nil {
			err = ex.stage(runCtx, st.Name)
			release()
		}
		if err != nil {
			if ctx.Err() != nil {
				// Shutting down: leave the run unfinished so it resumes.
				r.log.Info("run interrupted by shutdown", "run", id, "stage", st.Name)
				return
			}
			if runCtx.Err() != nil {
				// Cancelled: Cancel recorded it.
				r.endRun(ctx, id)
				r.release(id)
				return
			}
			failed = st.Name
		}
	}
	if ctx.Err() != nil {
		return // shutting down: the run resumes at the next start
	}
	if runCtx.Err() != nil {
		r.endRun(ctx, id) // cancelled: Cancel recorded it
		r.release(id)
		return
	}
	if failed != "" {
		r.finish(ctx, id, store.Failed, "")
		return
	}
	r.finish(ctx, id, store.Passed, "")
}

func (r *Runner) finish(ctx context.Context, id string, state store.State, msg string) {
	run, err := r.finishRun(ctx, id, func(run *store.Run) error {
		if run.State.Done() {
			return nil
		}
		run.State = state
		if msg != "" {
			run.Error = msg
		}
		run.Finished = time.Now().UTC()
		for i := range run.Stages {
			if run.Stages[i].State == store.Queued {
				run.Stages[i].State = store.Skipped
			}
		}
		return nil
	})
	if err != nil {
		r.log.Error("finish run", "run", id, "err", err)
	} else {
		r.log.Info("run finished", "run", id, "project", run.Project, "state", run.State)
		r.notify(run)
	}
	r.endRun(ctx, id)
	r.release(id)
}

// endRun tells the backends that keep something per run that id is over.
func (r *Runner) endRun(ctx context.Context, id string) {
	ended := map[any]bool{}
	for _, b := range []any{r.cfg.Builder, r.cfg.Tester} {
		e, ok := b.(RunEnder)
		if !ok || ended[b] {
			continue
		}
		ended[b] = true
		if err := e.EndRun(context.WithoutCancel(ctx), id); err != nil {
			r.log.Warn("end run at backend", "run", id, "err", err)
		}
	}
}

// countResume records one more resume of a run that was running when cccp
// stopped, and fails the run instead when it was resumed too often: a run
// that crashes cccp must not crash-loop it. It tells whether to resume.
func (r *Runner) countResume(ctx context.Context, id string) bool {
	giveUp := false
	run, err := r.cfg.Store.UpdateRun(ctx, id, func(run *store.Run) error {
		if run.State.Done() {
			return nil
		}
		run.Resumes++
		if run.Resumes <= r.cfg.MaxResumes {
			return nil
		}
		giveUp = true
		now := time.Now().UTC()
		msg := fmt.Sprintf("cccp stopped in the middle of this run %d times; not resuming it again", run.Resumes)
		run.State, run.Error, run.Finished = store.Failed, msg, now
		for i := range run.Stages {
			s := &run.Stages[i]
			switch s.State {
			case store.Running:
				s.State, s.Finished, s.Reason, s.Error = store.Failed, now, ReasonTooManyResumes, msg
			case store.Queued:
				s.State = store.Skipped
			}
		}
		return nil
	})
	if err != nil {
		r.log.Error("count resume", "run", id, "err", err)
		return true
	}
	if giveUp {
		r.log.Warn("run resumed too often; failed", "run", id, "resumes", run.Resumes)
		r.notify(run)
		r.settleCascade(ctx, run)
		r.endRun(ctx, id)
		return false
	}
	return true
}
