package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/queue"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// These tests drive the Runner's queue with a real bbolt file, closed and
// opened again where a restart is the point.

// queueHarness is a harness whose database file path is known, with
// entries p1/app ... p9/app and big/j1 ... big/j9 besides demo's.
func queueHarness(t *testing.T) (*harness, string) {
	t.Helper()
	h := newHarness(t)
	h.db.Close()
	path := filepath.Join(t.TempDir(), "cccp.db")
	h.reopen(t, path)
	for i := 1; i <= 9; i++ {
		for _, e := range []string{fmt.Sprintf("p%d/app", i), fmt.Sprintf("big/j%d", i)} {
			app, job, _ := strings.Cut(e, "/")
			h.entries[e+":latest"] = entry(app, job, "file:///git/"+app+"-"+job)
		}
	}
	return h, path
}

func (h *harness) reopen(t *testing.T, path string) {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h.db, h.cfg.Store = db, db
}

// startCtx starts a Runner that stops when the returned cancel is called;
// cancel waits for the workers to return.
func (h *harness) startCtx(t *testing.T) (*Runner, func()) {
	t.Helper()
	r, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	stop := func() { cancel(); <-r.Stopped() }
	t.Cleanup(stop)
	return r, stop
}

func push(project, commit string) Request {
	return Request{Project: project, Kind: types.KindBranch, Commit: commit,
		Cause: store.Cause{Kind: types.CausePush, Commit: commit, Forge: "github", Repo: "org/app"}}
}

// builtCommits are the commits the fake backend built, in order.
func builtCommits(h *harness) []string {
	var out []string
	for _, c := range h.rec.list() {
		if _, after, ok := strings.Cut(c, " at "); ok && strings.HasPrefix(c, "build ") {
			commit, _, _ := strings.Cut(after, " ")
			out = append(out, commit)
		}
	}
	return out
}

func runsOf(t *testing.T, h *harness, project string) []*store.Run {
	t.Helper()
	runs, err := h.db.Runs(context.Background(), store.RunFilter{Project: project})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func waitAll(t *testing.T, r *Runner, runs []*store.Run) []*store.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []*store.Run
	for _, run := range runs {
		got, err := r.Wait(ctx, run.ID)
		if err != nil {
			t.Fatalf("wait for run %s: %v", run.ID, err)
		}
		out = append(out, got)
	}
	return out
}

func TestBurstOfPushesMakesOneRun(t *testing.T) {
	h, _ := queueHarness(t)
	h.backend.block = make(chan struct{})
	h.backend.started = make(chan struct{}, 64)
	r, _ := h.startCtx(t) // one worker
	ctx := context.Background()
	// The worker is busy with another project's run, as on a loaded
	// machine; meanwhile 20 pushes land on demo/base.
	busy, err := r.Enqueue(ctx, push("p1/app:latest", "busy"))
	if err != nil {
		t.Fatal(err)
	}
	<-h.backend.started
	var ids []string
	for i := 1; i <= 20; i++ {
		run, err := r.Enqueue(ctx, push("demo/base:latest", fmt.Sprintf("c%02d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.ID)
	}
	if u := slices.Compact(slices.Clone(ids)); len(u) != 1 {
		t.Errorf("the burst got runs %v; want one", u)
	}
	close(h.backend.block)
	done := waitAll(t, r, []*store.Run{busy, {ID: ids[19]}})
	runs := runsOf(t, h, "demo/base:latest")
	if len(runs) != 1 {
		t.Fatalf("the burst made %d runs; want 1", len(runs))
	}
	got := done[1]
	if got.State != store.Passed || got.Commit != "c20" || got.Cause.Commit != "c20" {
		t.Errorf("run %s: %s at commit %s (cause %s); want passed at c20", got.ID, got.State, got.Commit, got.Cause.Commit)
	}
	if len(got.Folded) != 19 || got.Folded[0].Commit != "c01" || got.Folded[0].By != "c02" || got.Folded[18].Cause.Commit != "c19" {
		t.Errorf("folded %+v; want c01 ... c19, each superseded by the next", got.Folded)
	}
	if want := []string{"busy", "c20"}; !slices.Equal(builtCommits(h), want) {
		t.Errorf("built %v, want %v", builtCommits(h), want)
	}
}

// With a free worker, a push may start building before the next one
// lands: each newer push then cancels the run that builds, and the rest of
// the burst folds into the queued one. Only the newest commit passes.
func TestBurstOnAnIdleRunnerBuildsTheNewestCommitOnce(t *testing.T) {
	h, _ := queueHarness(t)
	h.backend.block = make(chan struct{})
	h.backend.started = make(chan struct{}, 64)
	r, _ := h.startCtx(t)
	ctx := context.Background()
	var last *store.Run
	for i := 1; i <= 20; i++ {
		var err error
		if last, err = r.Enqueue(ctx, push("demo/base:latest", fmt.Sprintf("c%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	close(h.backend.block)
	waitAll(t, r, []*store.Run{last})
	runs := runsOf(t, h, "demo/base:latest") // newest first
	for i, run := range runs {
		if i == 0 {
			if run.State != store.Passed || run.Commit != "c20" {
				t.Errorf("newest run %s: %s at %s; want passed at c20", run.ID, run.State, run.Commit)
			}
			continue
		}
		// Each older run was cancelled by the next one, named with the
		// commit that run had when it was created (it may have folded
		// newer pushes since).
		newer := runs[i-1]
		if want := "superseded by run " + newer.ID + " (commit c"; run.State != store.Cancelled || !strings.HasPrefix(run.Error, want) {
			t.Errorf("run %s: %s %q; want cancelled, %q...", run.ID, run.State, run.Error, want)
		}
	}
	if n := strings.Count(strings.Join(builtCommits(h), " "), "c20"); n != 1 {
		t.Errorf("built %v; want c20 built once", builtCommits(h))
	}
	if len(runs) == 20 {
		t.Logf("no push folded: every push started before the next landed")
	}
}

func TestSupersedeReasonNamesRunAndCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  store.Run
		want string
	}{
		{"commit of the request", store.Run{ID: "7", Commit: "0123456789abcdef0123"}, "superseded by run 7 (commit 0123456789ab)"},
		{"commit of the cause", store.Run{ID: "7", Cause: store.Cause{Commit: "abc"}}, "superseded by run 7 (commit abc)"},
		{"branch head, not yet resolved", store.Run{ID: "7"}, "superseded by run 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := supersedeReason(&tc.run); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCoalescingKeepsTheBetterClass(t *testing.T) {
	h, path := queueHarness(t)
	ctx := context.Background()
	// Not started: everything stays queued.
	r, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	manual, err := r.Enqueue(ctx, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual, Actor: "ann"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Enqueue(ctx, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseRescan}})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != manual.ID || got.Cause.Kind != types.CauseRescan {
		t.Fatalf("rescan: run %s cause %s; want folded into run %s", got.ID, got.Cause.Kind, manual.ID)
	}
	h.db.Close()
	h.reopen(t, path)
	stored, err := h.db.Run(ctx, manual.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c := classOf(stored); c != queue.ClassPerson {
		t.Errorf("class after a restart %s, want %s: a person still waits", c, queue.ClassPerson)
	}
}

func TestQueueOrderSurvivesRestart(t *testing.T) {
	h, path := queueHarness(t)
	h.backend.block = make(chan struct{})
	h.backend.started = make(chan struct{}, 64)
	r, stop := h.startCtx(t)
	ctx := context.Background()
	if _, err := r.Enqueue(ctx, push("p1/app:latest", "was-running")); err != nil {
		t.Fatal(err)
	}
	<-h.backend.started
	reqs := []Request{
		{Project: "p2/app:latest", Commit: "rescan", Cause: store.Cause{Kind: types.CauseRescan}},
		{Project: "p3/app:latest", Commit: "parent", Cause: store.Cause{Kind: types.CauseParent, Parent: "p1/app"}},
		push("big/j1:latest", "big-1"),
		push("big/j2:latest", "big-2"),
		push("big/j3:latest", "big-3"),
		push("p4/app:latest", "push-p4"),
		{Project: "p5/app:latest", Kind: types.KindPR, Commit: "pr",
			Cause: store.Cause{Kind: types.CausePullRequest, Repo: "org/p5", PR: 3, Commit: "pr"}},
	}
	for _, req := range reqs {
		if _, err := r.Enqueue(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	stop() // cccp stops with one run building and seven queued
	h.db.Close()

	h.reopen(t, path)
	// A new process: the old one's work is gone with it.
	h.rec = &recorder{}
	h.backend = &fakeBackend{rec: h.rec, name: "fake", checks: h.backend.checks}
	h.cfg.Builder, h.cfg.Tester = h.backend, h.backend
	r2, _ := h.startCtx(t)
	unfinished, err := h.db.UnfinishedRuns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(unfinished) != 8 {
		t.Fatalf("%d unfinished runs after the restart, want 8", len(unfinished))
	}
	waitAll(t, r2, unfinished)
	want := []string{
		"was-running",      // resumed first
		"pr",               // a person waits
		"big-1", "push-p4", // pushes: projects take turns...
		"big-2", "big-3", // ...then big's remaining ones
		"parent", // a parent's rebuild
		"rescan", // last
	}
	if got := builtCommits(h); !slices.Equal(got, want) {
		t.Errorf("built after restart in order\n%v\nwant\n%v", got, want)
	}
}

func TestFairBetweenProjects(t *testing.T) {
	h, _ := queueHarness(t)
	h.backend.block = make(chan struct{})
	h.backend.started = make(chan struct{}, 64)
	r, _ := h.startCtx(t)
	ctx := context.Background()
	var runs []*store.Run
	add := func(req Request) {
		run, err := r.Enqueue(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	add(push("p9/app:latest", "first"))
	<-h.backend.started
	for i := 1; i <= 9; i++ { // big queues nine jobs first
		add(push(fmt.Sprintf("big/j%d:latest", i), fmt.Sprintf("big-%d", i)))
	}
	add(push("p1/app:latest", "p1"))
	add(push("p2/app:latest", "p2"))
	close(h.backend.block)
	waitAll(t, r, runs)
	got := builtCommits(h)
	// After p9 (served last), the turn goes big, p1, p2, big, big, ...
	if want := []string{"first", "big-1", "p1", "p2", "big-2"}; !slices.Equal(got[:5], want) {
		t.Errorf("built %v; want it to start %v", got, want)
	}
}

// countingBackend is a stage backend that counts the builds and tests at
// work at once.
type countingBackend struct {
	*fakeBackend
	mu                sync.Mutex
	builds, tests     int
	maxBuild, maxTest int
}

func (b *countingBackend) enter(n, max *int) func() {
	b.mu.Lock()
	*n++
	*max = maxOf(*max, *n)
	b.mu.Unlock()
	return func() { b.mu.Lock(); *n--; b.mu.Unlock() }
}

func maxOf(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func (b *countingBackend) StartBuild(_ context.Context, spec backend.BuildSpec) (backend.Handle, error) {
	return b.start(backend.Handle(spec.RunID+"/build"), func(ctx context.Context, j *fakeJob) error {
		defer b.enter(&b.builds, &b.maxBuild)()
		b.rec.add("build %s at %s", spec.Push, spec.Src.Commit)
		if b.started != nil {
			b.started <- struct{}{}
		}
		if b.block != nil {
			select {
			case <-b.block:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		time.Sleep(5 * time.Millisecond)
		j.build = backend.BuildResult{Digest: digestA}
		return nil
	})
}

func (b *countingBackend) StartTest(_ context.Context, spec backend.TestSpec) (backend.Handle, error) {
	return b.start(backend.Handle(spec.RunID+"/test"), func(ctx context.Context, j *fakeJob) error {
		defer b.enter(&b.tests, &b.maxTest)()
		time.Sleep(10 * time.Millisecond)
		j.test = backend.TestResult{Checks: slices.Clone(b.checks)}
		return nil
	})
}

func TestStageSlotsAreNeverExceeded(t *testing.T) {
	h, _ := queueHarness(t)
	cb := &countingBackend{fakeBackend: h.backend}
	h.cfg.Builder, h.cfg.Tester = cb, cb
	h.cfg.Workers = 6
	h.cfg.MaxConcurrent = map[types.StageName]int{types.StageBuild: 1, types.StageTest: 2}
	r, _ := h.startCtx(t)
	var runs []*store.Run
	for i := 1; i <= 9; i++ {
		for _, p := range []string{fmt.Sprintf("p%d/app:latest", i), fmt.Sprintf("big/j%d:latest", i)} {
			run, err := r.Enqueue(context.Background(), push(p, "c-"+p))
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, run)
		}
	}
	for _, run := range waitAll(t, r, runs) {
		if run.State != store.Passed {
			t.Errorf("run %s: %s (%s)", run.ID, run.State, run.Error)
		}
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if cb.maxBuild != 1 || cb.maxTest > 2 {
		t.Errorf("at most %d builds and %d tests at once; want 1 and at most 2", cb.maxBuild, cb.maxTest)
	}
}

func TestStageWaitingForSlotIsVisible(t *testing.T) {
	h, _ := queueHarness(t)
	h.backend.block = make(chan struct{})
	h.backend.started = make(chan struct{}, 64)
	h.cfg.Workers = 2
	h.cfg.MaxConcurrent = map[types.StageName]int{types.StageBuild: 1}
	var seen sync.Map
	h.cfg.Observer = func(run *store.Run) {
		if len(run.Stages) > 0 && run.Stages[0].Waiting != "" {
			seen.Store(run.ID, run.Stages[0].Waiting)
		}
	}
	r, _ := h.startCtx(t)
	ctx := context.Background()
	first, err := r.Enqueue(ctx, push("p1/app:latest", "one"))
	if err != nil {
		t.Fatal(err)
	}
	<-h.backend.started
	second, err := r.Enqueue(ctx, push("p2/app:latest", "two"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		run, err := h.db.Run(ctx, second.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w := run.Stages[0].Waiting; w != "" {
			if !strings.HasPrefix(w, "waiting for a build slot") || run.Stages[0].State != store.Queued {
				t.Errorf("second run's build: %s, %q; want queued, waiting for a build slot", run.Stages[0].State, w)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second run's build never said it waits for a slot")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(builtCommits(h)); n != 1 {
		t.Errorf("%d builds started with one build slot", n)
	}
	close(h.backend.block)
	done := waitAll(t, r, []*store.Run{first, second})
	if done[1].State != store.Passed || done[1].Stages[0].Waiting != "" {
		t.Errorf("second run: %s, still waiting %q", done[1].State, done[1].Stages[0].Waiting)
	}
	if _, ok := seen.Load(second.ID); !ok {
		t.Error("the observer never saw the wait")
	}
}

func TestRedeliveredRequestDoesNotFoldAgain(t *testing.T) {
	h, _ := queueHarness(t)
	r, err := New(h.cfg) // not started: everything stays queued
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	delivery := func(id, commit string) Request {
		req := push("demo/base:latest", commit)
		req.Cause.DeliveryID = id
		return req
	}
	first, err := r.Enqueue(ctx, delivery("d1", "c1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Enqueue(ctx, delivery("d2", "c2")); err != nil {
		t.Fatal(err)
	}
	// cccp crashed before it marked d1 and d2 done: both come again.
	for _, d := range []Request{delivery("d1", "c1"), delivery("d2", "c2")} {
		got, err := r.Enqueue(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != first.ID || got.Commit != "c2" || len(got.Folded) != 1 {
			t.Errorf("redelivered %s: run %s at %s with %d folds; want run %s at c2 with 1 fold",
				d.Cause.DeliveryID, got.ID, got.Commit, len(got.Folded), first.ID)
		}
	}
}

func TestFoldingAfterRestart(t *testing.T) {
	h, path := queueHarness(t)
	ctx := context.Background()
	r, err := New(h.cfg) // cccp queues, then stops before working
	if err != nil {
		t.Fatal(err)
	}
	busy, err := r.Enqueue(ctx, push("big/j1:latest", "busy"))
	if err != nil {
		t.Fatal(err)
	}
	queued, err := r.Enqueue(ctx, push("demo/base:latest", "c1"))
	if err != nil {
		t.Fatal(err)
	}
	h.db.Close()

	h.reopen(t, path)
	h.backend.block = make(chan struct{})
	h.backend.started = make(chan struct{}, 64)
	r2, _ := h.startCtx(t) // one worker: it takes big's run first ("big" < "demo")
	<-h.backend.started
	got, err := r2.Enqueue(ctx, push("demo/base:latest", "c2"))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != queued.ID || got.Commit != "c2" {
		t.Errorf("push after the restart: run %s at %s; want folded into run %s", got.ID, got.Commit, queued.ID)
	}
	close(h.backend.block)
	waitAll(t, r2, []*store.Run{busy, queued})
	if want := []string{"busy", "c2"}; !slices.Equal(builtCommits(h), want) {
		t.Errorf("built %v, want %v", builtCommits(h), want)
	}
}
