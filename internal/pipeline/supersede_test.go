package pipeline

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// diesAfterCreate is the store of a cccp that dies right after it stored
// the run of commit: every later write fails, as nothing after a crash is
// written.
type diesAfterCreate struct {
	*store.DB
	commit string
	dead   atomic.Bool
}

func (s *diesAfterCreate) created(r *store.Run) {
	if r.Commit == s.commit {
		s.dead.Store(true)
	}
}

func (s *diesAfterCreate) CreateRun(ctx context.Context, r *store.Run) error {
	if s.dead.Load() {
		return errCrash
	}
	err := s.DB.CreateRun(ctx, r)
	s.created(r)
	return err
}

func (s *diesAfterCreate) CreateRunSuperseding(ctx context.Context, r *store.Run, sp store.Supersede) ([]*store.Run, error) {
	if s.dead.Load() {
		return nil, errCrash
	}
	ended, err := s.DB.CreateRunSuperseding(ctx, r, sp)
	s.created(r)
	return ended, err
}

func (s *diesAfterCreate) UpdateRun(ctx context.Context, id string, fn func(*store.Run) error) (*store.Run, error) {
	if s.dead.Load() {
		return nil, errCrash
	}
	return s.DB.UpdateRun(ctx, id, fn)
}

// A crash right after a push's run was stored leaves no second live run
// of the branch: the older running run ends superseded, in the same
// transaction, with its change recorded for its report.
func TestCrashAfterCreateLeavesOneLiveRunOfTheTarget(t *testing.T) {
	h, path := queueHarness(t)
	h.backend.block = make(chan struct{})
	h.backend.started = make(chan struct{}, 16)
	st := &diesAfterCreate{DB: h.db, commit: "2"}
	h.cfg.Store = st
	r, stop := h.startCtx(t)
	ctx := context.Background()
	first, err := r.Enqueue(ctx, push("demo/base:latest", "1"))
	if err != nil {
		t.Fatal(err)
	}
	<-h.backend.started // the first run is building
	second, err := r.Enqueue(ctx, push("demo/base:latest", "2"))
	if err != nil && !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	if second == nil { // the crash came with the create: find what it stored
		runs := runsOf(t, h, "demo/base:latest")
		second = runs[0]
	}
	stop()
	h.db.Close()

	// The next cccp on the same file. Before it starts (its reconcile would
	// end the older run too), the store already says so.
	h.reopen(t, path)
	if got, err := h.db.Run(ctx, first.ID); err != nil || got.State != store.Cancelled ||
		!strings.Contains(got.Error, "superseded by run "+second.ID) {
		t.Fatalf("first run as stored by the crashed cccp: %+v, %v; want cancelled, superseded by run %s", got, err, second.ID)
	}
	close(h.backend.block)
	r, _ = h.startCtx(t)
	runs := waitAll(t, r, []*store.Run{first, second})
	if got := runs[0]; got.State != store.Cancelled || !strings.Contains(got.Error, "superseded by run "+second.ID) {
		t.Errorf("first run: %s %q, want cancelled, superseded by run %s", got.State, got.Error, second.ID)
	}
	if got := runs[1]; got.State != store.Passed {
		t.Errorf("second run: %s %q, want passed", got.State, got.Error)
	}
	if built := builtCommits(h); slices.Contains(built[1:], "1") {
		t.Errorf("built %q: the superseded commit 1 was built again after the restart", built)
	}
	changes, err := h.db.RunChanges(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(changes, func(c store.RunChange) bool { return c.Run.ID == first.ID && c.Run.State == store.Cancelled }) {
		t.Errorf("no change of the superseded run %s to report", first.ID)
	}
}

// Two live runs of one target that an older cccp left (or a crash
// between a cascade step and its supersede) are reconciled at start: the
// newest wins, the older ends superseded by it.
func TestStartReconcilesTwoLiveRunsOfOneTarget(t *testing.T) {
	h, _ := queueHarness(t)
	ctx := context.Background()
	var stored []*store.Run
	for _, commit := range []string{"1", "2"} {
		run := &store.Run{Project: "demo/base:latest", Kind: types.KindBranch, Branch: "master", Commit: commit,
			Cause: store.Cause{Kind: types.CausePush, Commit: commit, Forge: "github", Repo: "org/app"},
			State: store.Queued, Stages: plannedStages(types.KindBranch)}
		if err := h.db.CreateRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, run)
	}
	r, _ := h.startCtx(t)
	runs := waitAll(t, r, stored)
	if got := runs[0]; got.State != store.Cancelled || got.Error != "superseded by run "+stored[1].ID+" (commit 2)" {
		t.Errorf("older run: %s %q, want cancelled, superseded by run %s", got.State, got.Error, stored[1].ID)
	}
	if got := runs[1]; got.State != store.Passed {
		t.Errorf("newer run: %s %q", got.State, got.Error)
	}
	if built := builtCommits(h); !slices.Equal(built, []string{"2"}) {
		t.Errorf("built %q, want only commit 2", built)
	}
}

// A delivery's request that already made a run is known whatever the run
// became and across a restart: the same run is returned, nothing new is
// queued and nothing is superseded.
func TestRedeliveredRequestMakesNoNewRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state store.State // the run's state when the request comes again
	}{
		{"run passed", store.Passed},
		{"run running, resumed after the restart", store.Running},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, path := queueHarness(t)
			h.backend.started = make(chan struct{}, 16)
			if tc.state == store.Running {
				h.backend.block = make(chan struct{})
				defer close(h.backend.block)
			}
			req := push("demo/base:latest", "1")
			req.Cause.DeliveryID = "d-1"
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r, stop := h.startCtx(t)
			first, err := r.Enqueue(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.state == store.Passed {
				waitAll(t, r, []*store.Run{first})
			} else {
				<-h.backend.started
			}
			stop()
			h.db.Close()

			h.reopen(t, path)
			r, _ = h.startCtx(t)
			again, err := r.Enqueue(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if again.ID != first.ID {
				t.Errorf("the request again made run %s, want run %s", again.ID, first.ID)
			}
			if runs := runsOf(t, h, "demo/base:latest"); len(runs) != 1 {
				t.Errorf("%d runs, want 1", len(runs))
			}
			got, err := h.db.Run(ctx, first.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State == store.Cancelled {
				t.Errorf("run %s was cancelled by its own request: %q", got.ID, got.Error)
			}
		})
	}
}

// A push to a child whose cascade run is building cancels that run, and
// the push's run takes its place in the cascade: the descendants wait on
// it and build after it delivered, instead of being skipped as "waiting on
// mid, which was cancelled".
func TestPushDuringCascadeTakesOverTheNode(t *testing.T) {
	h := chainHarness(t)
	h.backend.block, h.backend.blockURL = make(chan struct{}), "/mid"
	h.cfg.Workers = 2
	r := h.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	cascadeRun := runningCascadeRun(ctx, t, h.db, root.ID, "demo/mid:latest")
	pushed, err := r.Enqueue(ctx, push("demo/mid:latest", "m2"))
	if err != nil {
		t.Fatal(err)
	}
	if old, _ := r.Wait(ctx, cascadeRun); old.State != store.Cancelled {
		t.Fatalf("mid's cascade run: %s, want cancelled (superseded)", old.State)
	}
	close(h.backend.block)
	c := waitCascade(t, h.db, root.ID)
	if n := c.Node("demo/mid:latest"); n.Run != pushed.ID || n.State != store.CascadeDelivered {
		t.Errorf("mid's node: run %s %s, want run %s delivered", n.Run, n.State, pushed.ID)
	}
	for _, leaf := range []string{"demo/leaf1:latest", "demo/leaf2:latest"} {
		if n := c.Node(leaf); n.State != store.CascadeDelivered {
			t.Errorf("%s: %s %q, want delivered", leaf, n.State, n.Note)
		}
	}
	calls := h.rec.list()
	for _, leaf := range []string{"leaf1", "leaf2"} {
		if !deliveredBefore(calls, "mid", leaf) {
			t.Errorf("%s was built before mid delivered; calls %q", leaf, calls)
		}
	}
	got, err := h.db.Run(ctx, pushed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.Passed || got.Commit != "m2" || got.Cause.Kind != types.CausePush {
		t.Errorf("the push's run: %s, commit %q, cause %+v", got.State, got.Commit, got.Cause)
	}
	// The leaves built FROM what the push's run delivered.
	leaf1, _ := h.db.Run(ctx, c.Node("demo/leaf1:latest").Run)
	if b := leaf1.Stages[0].Bases; len(b) != 1 || b[0].Digest != got.DeliveredDigest() {
		t.Errorf("leaf1 bases %+v, want the push's digest %s", b, got.DeliveredDigest())
	}
}

// A push's run stored beside the building cascade run of the same child
// (a crash of an older cccp between the two transactions) is reconciled
// at start: the cascade run ends superseded and the push's run takes its
// node, so the child's subtree still builds.
func TestStartReconcileHandsTheCascadeNodeOn(t *testing.T) {
	h := chainHarness(t)
	h.db.Close()
	path := filepath.Join(t.TempDir(), "cccp.db")
	h.reopen(t, path)
	h.backend.block, h.backend.blockURL = make(chan struct{}), "/mid"
	h.cfg.Workers = 2
	r, stop := h.startCtx(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	cascadeRun := runningCascadeRun(ctx, t, h.db, root.ID, "demo/mid:latest")
	// What the old Enqueue stored before it died: the push's run, and no
	// end of the cascade run.
	pushed := &store.Run{Project: "demo/mid:latest", Kind: types.KindBranch, Branch: "master", Commit: "m2",
		Cause: store.Cause{Kind: types.CausePush, Commit: "m2", Forge: "github", Repo: "org/app"},
		State: store.Queued, Stages: plannedStages(types.KindBranch)}
	if err := h.db.CreateRun(ctx, pushed); err != nil {
		t.Fatal(err)
	}
	stop()
	h.db.Close()

	h.reopen(t, path)
	close(h.backend.block)
	h.start(t)
	c := waitCascade(t, h.db, root.ID)
	if n := c.Node("demo/mid:latest"); n.Run != pushed.ID || n.State != store.CascadeDelivered {
		t.Errorf("mid's node: run %s %s, want run %s delivered", n.Run, n.State, pushed.ID)
	}
	for _, leaf := range []string{"demo/leaf1:latest", "demo/leaf2:latest"} {
		if n := c.Node(leaf); n.State != store.CascadeDelivered {
			t.Errorf("%s: %s %q, want delivered", leaf, n.State, n.Note)
		}
	}
	old, err := h.db.Run(ctx, cascadeRun)
	if err != nil {
		t.Fatal(err)
	}
	if old.State != store.Cancelled || !strings.Contains(old.Error, "superseded by run "+pushed.ID) {
		t.Errorf("mid's cascade run: %s %q, want superseded by run %s", old.State, old.Error, pushed.ID)
	}
}

// A push to a child whose cascade run still waits on its parents (mid is
// building) folds into that queued run: the push's commit builds once mid
// delivered, FROM mid's new image, and the cascade counts it. (Built at
// once instead, it would build FROM mid's old image, and the cascade would
// not rebuild it.)
func TestPushToAWaitingChildWaitsForItsParents(t *testing.T) {
	h := chainHarness(t)
	h.backend.block, h.backend.blockURL = make(chan struct{}), "/mid"
	h.cfg.Workers = 2
	r := h.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	runningCascadeRun(ctx, t, h.db, root.ID, "demo/mid:latest")
	c, err := h.db.CascadeStartedBy(ctx, root.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Node("demo/leaf1:latest"); n.State != store.CascadeWaiting {
		t.Fatalf("leaf1's node while mid builds: %s, want waiting", n.State)
	}
	pushed, err := r.Enqueue(ctx, push("demo/leaf1:latest", "l2"))
	if err != nil {
		t.Fatal(err)
	}
	live, err := h.db.Runs(ctx, store.RunFilter{Project: "demo/leaf1:latest"})
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range live {
		switch {
		case run.State.Done():
		case run.ID != pushed.ID:
			t.Errorf("run %s of leaf1 lives beside the push's run %s", run.ID, pushed.ID)
		case run.State != store.Queued || !slices.Equal(run.WaitsOn, []string{"demo/mid:latest"}) || run.Commit != "l2":
			t.Errorf("the push's run while mid builds: %s, commit %q, waits on %q; want queued for l2, waiting on mid",
				run.State, run.Commit, run.WaitsOn)
		}
	}
	close(h.backend.block)
	c = waitCascade(t, h.db, root.ID)
	if n := c.Node("demo/leaf1:latest"); n.Run != pushed.ID || n.State != store.CascadeDelivered {
		t.Errorf("leaf1's node: run %s %s, want run %s delivered", n.Run, n.State, pushed.ID)
	}
	if !deliveredBefore(h.rec.list(), "mid", "leaf1") {
		t.Errorf("leaf1 was built before mid delivered; calls %q", h.rec.list())
	}
	got, err := h.db.Run(ctx, pushed.ID)
	if err != nil {
		t.Fatal(err)
	}
	mid, _ := h.db.Run(ctx, c.Node("demo/mid:latest").Run)
	if got.State != store.Passed || got.Commit != "l2" {
		t.Errorf("the push's run: %s, commit %q", got.State, got.Commit)
	}
	if b := got.Stages[0].Bases; len(b) != 1 || b[0].Digest != mid.DeliveredDigest() {
		t.Errorf("the push's run built FROM %+v, want mid's new digest %s", b, mid.DeliveredDigest())
	}
}

// runningCascadeRun waits until project's run in the cascade root started
// is running, and returns its ID.
func runningCascadeRun(ctx context.Context, t *testing.T, db *store.DB, root, project string) string {
	t.Helper()
	for ; ctx.Err() == nil; time.Sleep(10 * time.Millisecond) {
		if c, err := db.CascadeStartedBy(ctx, root); err == nil {
			if n := c.Node(project); n.State == store.CascadeQueued {
				if run, err := db.Run(ctx, n.Run); err == nil && run.State == store.Running {
					return run.ID
				}
			}
		}
	}
	t.Fatalf("%s's cascade run never started", project)
	return ""
}
