package pipeline

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// The chain of these tests: base -> mid -> leaf1, and leaf2 below both
// mid and side, with side below base: one base change must build mid,
// side, leaf1 and leaf2 once each, leaf2 after both of its parents.
var chain = map[string][]string{
	"demo/base:latest": {"demo/mid:latest", "demo/side:latest"},
	"demo/mid:latest":  {"demo/leaf1:latest", "demo/leaf2:latest"},
	"demo/side:latest": {"demo/leaf2:latest"},
}

func chainHarness(t *testing.T) *harness {
	h := newHarness(t)
	for _, e := range []*index.Entry{
		entry("demo", "mid", "file:///git/from-base/mid"),
		entry("demo", "side", "file:///git/from-base/side"),
		entry("demo", "leaf1", "file:///git/from-mid/leaf1"),
		entry("demo", "leaf2", "file:///git/from-mid/leaf2"),
	} {
		h.entries[e.Key()] = e
	}
	h.entries["demo/leaf2:latest"].DependsOn = []string{"demo/mid:latest", "demo/side:latest"}
	h.backend.uniqueDigests = true
	h.cfg.Children = func(k string) []string { return chain[k] }
	return h
}

// waitCascade waits until the cascade rooted at run has settled.
func waitCascade(t *testing.T, db *store.DB, run string) *store.Cascade {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		c, err := db.CascadeStartedBy(context.Background(), run)
		if err == nil && !c.Finished.IsZero() {
			return c
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the cascade of run %s did not settle", run)
	return nil
}

// builds lists the projects built, in order, from the recorded calls.
func builds(calls []string) []string {
	var out []string
	for _, c := range calls {
		if rest, ok := strings.CutPrefix(c, "build reg.test:5000/"); ok {
			img, _, _ := strings.Cut(rest, " ")
			out = append(out, strings.TrimSuffix(img, ":test"))
		}
	}
	return out
}

// deliveredBefore tells whether parent's :latest was tagged before child's
// build began.
func deliveredBefore(calls []string, parent, child string) bool {
	tagged := -1
	for i, c := range calls {
		if strings.HasPrefix(c, "tag ") && strings.HasSuffix(c, "-> reg.test:5000/demo/"+parent+":latest") {
			tagged = i
		}
		if strings.HasPrefix(c, "build reg.test:5000/demo/"+child+":test") {
			return tagged >= 0 && tagged < i
		}
	}
	return false
}

func TestCascadeBuildsEveryDescendantOnceParentsFirst(t *testing.T) {
	h := chainHarness(t)
	// side builds slowly: mid and leaf1 deliver first, and leaf2 must
	// still wait for side.
	h.cfg.Workers = 2
	h.backend.block, h.backend.blockURL = make(chan struct{}), "/side"
	go func() {
		for !slices.ContainsFunc(h.rec.list(), func(c string) bool { return strings.HasSuffix(c, "-> reg.test:5000/demo/leaf1:latest") }) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		close(h.backend.block)
	}()
	r := h.start(t)
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	c := waitCascade(t, h.db, root.ID)
	calls := h.rec.list()
	got := builds(calls)
	slices.Sort(got)
	if want := []string{"demo/base", "demo/leaf1", "demo/leaf2", "demo/mid", "demo/side"}; !slices.Equal(got, want) {
		t.Fatalf("built %q, want each of %q once", got, want)
	}
	for _, pc := range [][2]string{{"base", "mid"}, {"base", "side"}, {"mid", "leaf1"}, {"mid", "leaf2"}, {"side", "leaf2"}} {
		if !deliveredBefore(calls, pc[0], pc[1]) {
			t.Errorf("%s was built before %s delivered; calls %q", pc[1], pc[0], calls)
		}
	}
	for _, n := range c.Nodes {
		if n.State != store.CascadeDelivered {
			t.Errorf("node %s: %s", n.Project, n.State)
		}
		run, err := h.db.Run(context.Background(), n.Run)
		if err != nil {
			t.Fatal(err)
		}
		if run.Cause.Cascade != c.ID || run.State != store.Passed {
			t.Errorf("run %s of %s: cause %+v, %s", run.ID, n.Project, run.Cause, run.State)
		}
		// Built FROM the parent's new digest, the one its run delivered.
		if n.Project == "demo/leaf1:latest" {
			mid := c.Node("demo/mid:latest")
			midRun, _ := h.db.Run(context.Background(), mid.Run)
			if b := run.Stages[0].Bases; len(b) != 1 || b[0].Digest != midRun.DeliveredDigest() {
				t.Errorf("leaf1 bases %+v, want mid's new digest %s", b, midRun.DeliveredDigest())
			}
		}
	}
	// Delivering the same digest again starts nothing (the fake backend's
	// digest is per run, so build the base with a fixed one).
	h.backend.uniqueDigests = false
	// (Forced: the same inputs again are otherwise up to date, not built.)
	again := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}, Force: true})
	if _, err := h.db.CascadeStartedBy(context.Background(), again.ID); err != nil {
		t.Fatalf("a new digest (digestA) starts a cascade: %v", err)
	}
}

func TestCascadeFailingMiddleStopsItsSubtree(t *testing.T) {
	h := chainHarness(t)
	h.backend.failURL = "/mid"
	r := h.start(t)
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	c := waitCascade(t, h.db, root.ID)
	want := map[string]string{
		"demo/mid:latest":   store.CascadeFailed,
		"demo/side:latest":  store.CascadeDelivered,
		"demo/leaf1:latest": store.CascadeStopped,
		"demo/leaf2:latest": store.CascadeStopped,
	}
	for _, n := range c.Nodes {
		if n.State != want[n.Project] {
			t.Errorf("node %s: %s, want %s", n.Project, n.State, want[n.Project])
		}
		if n.State != store.CascadeStopped {
			continue
		}
		run, err := h.db.Run(context.Background(), n.Run)
		if err != nil {
			t.Fatal(err)
		}
		if run.State != store.Skipped || run.Error != "waiting on demo/mid:latest, which failed" {
			t.Errorf("%s: run %s %s %q", n.Project, run.ID, run.State, run.Error)
		}
	}
	for _, b := range builds(h.rec.list()) {
		if strings.Contains(b, "leaf") {
			t.Errorf("%s was built below a failed parent", b)
		}
	}
}

// crashingStore fails, once, the step after a cascade claimed a node: the
// queueing (CreateRun) or the binding of the queued run, as a crash there
// would leave it.
type crashingStore struct {
	*store.DB
	failCreate, failBind bool
	// failFollow fails the first result that queued runs of a cascade
	// after it committed: cccp stopped before its queue knew of them.
	failFollow bool
}

func (s *crashingStore) FinishRun(ctx context.Context, id string, fn func(*store.Run) error, step store.CascadeStep) (*store.Run, []*store.Cascade, error) {
	run, changed, err := s.DB.FinishRun(ctx, id, fn, step)
	for _, c := range changed {
		if s.failFollow && len(c.Runs) > 0 {
			s.failFollow = false
			return nil, nil, errCrash
		}
	}
	return run, changed, err
}

var errCrash = errors.New("crash")

func (s *crashingStore) CreateRun(ctx context.Context, r *store.Run) error {
	if s.failCreate && r.Cause.Cascade != "" {
		return errCrash
	}
	return s.DB.CreateRun(ctx, r)
}

func (s *crashingStore) BindCascadeRun(ctx context.Context, id, project, run string) error {
	if s.failBind {
		return errCrash
	}
	return s.DB.BindCascadeRun(ctx, id, project, run)
}

func TestCascadeResumesAfterCrashWithoutLosingOrDoubling(t *testing.T) {
	for _, tc := range []struct {
		name                             string
		failCreate, failBind, failFollow bool
	}{
		// The first two were the windows of queueing nodes one by one
		// after the result; the runs are now made in the result's
		// transaction, so those steps are not reached (the cases stay
		// as a check). The third is the window left now.
		{"stopped after the claim, before the run was queued", true, false, false},
		{"stopped after the run was queued, before it was bound", false, true, false},
		{"stopped after the result queued the cascade's runs, before the queue knew them", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := chainHarness(t)
			path := filepath.Join(t.TempDir(), "cccp.db")
			db, err := store.Open(path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			h.db = db
			h.cfg.Store = &crashingStore{DB: db, failCreate: tc.failCreate, failBind: tc.failBind, failFollow: tc.failFollow}
			r, err := New(h.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, stop := context.WithCancel(context.Background())
			if err := r.Start(ctx); err != nil {
				t.Fatal(err)
			}
			root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
			time.Sleep(100 * time.Millisecond) // let queueReady fail or bind
			stop()
			<-r.Stopped()
			db.Close()

			// Restart on the same file, without faults.
			db, err = store.Open(path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			h.db = db
			h.cfg.Store = db
			h.start(t)
			c := waitCascade(t, db, root.ID)
			for _, n := range c.Nodes {
				if n.State != store.CascadeDelivered {
					t.Errorf("node %s: %s", n.Project, n.State)
				}
			}
			all, err := db.Runs(context.Background(), store.RunFilter{})
			if err != nil {
				t.Fatal(err)
			}
			count := map[string]int{}
			for _, run := range all {
				t.Logf("run %s %s %s %q cause %+v", run.ID, run.Project, run.State, run.Error, run.Cause)
				if run.State != store.Cancelled {
					count[run.Project]++
				}
			}
			for _, p := range []string{"demo/base:latest", "demo/mid:latest", "demo/side:latest", "demo/leaf1:latest", "demo/leaf2:latest"} {
				if count[p] != 1 {
					t.Errorf("%s has %d runs, want 1 (all: %v)", p, count[p], count)
				}
			}
			calls := h.rec.list()
			for _, pc := range [][2]string{{"base", "mid"}, {"base", "side"}, {"mid", "leaf1"}, {"mid", "leaf2"}, {"side", "leaf2"}} {
				if !deliveredBefore(calls, pc[0], pc[1]) {
					t.Errorf("%s was built before %s delivered; calls %q", pc[1], pc[0], calls)
				}
			}
		})
	}
}

// A child whose Dockerfile names its parent only in FROM (no depends-on)
// is in the cascade once cccp built it FROM the parent.
func TestCascadeFollowsFROMEdgesOfTheLatestBuild(t *testing.T) {
	h := newHarness(t)
	h.backend.uniqueDigests = true
	h.cfg.Children = func(string) []string { return nil } // no depends-on anywhere
	r := h.start(t)
	manual := store.Cause{Kind: types.CauseManual}
	runAndWait(t, r, Request{Project: "demo/base:latest", Cause: manual})
	if child := runAndWait(t, r, Request{Project: "demo/child:latest", Cause: manual}); child.State != store.Passed {
		t.Fatalf("child %s", child.State)
	}
	// Forced: the same inputs again are otherwise up to date, not built.
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: manual, Force: true})
	c := waitCascade(t, h.db, root.ID)
	if len(c.Nodes) != 1 || c.Nodes[0].Project != "demo/child:latest" || c.Nodes[0].State != store.CascadeDelivered {
		t.Fatalf("cascade nodes %+v, want demo/child rebuilt", c.Nodes)
	}
}

// A child removed from the index after the plan fails its node, and the
// nodes below it stop, instead of the cascade waiting for ever.
func TestCascadeChildRemovedFromTheIndexStopsItsSubtree(t *testing.T) {
	h := chainHarness(t)
	delete(h.entries, "demo/mid:latest") // still in the graph the cascade plans with
	r := h.start(t)
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	c := waitCascade(t, h.db, root.ID)
	want := map[string]string{"demo/mid:latest": store.CascadeFailed, "demo/side:latest": store.CascadeDelivered,
		"demo/leaf1:latest": store.CascadeStopped, "demo/leaf2:latest": store.CascadeStopped}
	for _, n := range c.Nodes {
		if n.State != want[n.Project] {
			t.Errorf("node %s: %s, want %s", n.Project, n.State, want[n.Project])
		}
	}
	mid, err := h.db.Run(context.Background(), c.Node("demo/mid:latest").Run)
	if err != nil || !strings.Contains(mid.Error, "no longer in the index") {
		t.Errorf("mid's run %+v, %v", mid, err)
	}
}

// A cancelled middle stops its subtree, and the leaves say it was
// cancelled, not that it failed.
func TestCascadeCancelledMiddleStopsItsSubtree(t *testing.T) {
	h := chainHarness(t)
	h.backend.block, h.backend.blockURL = make(chan struct{}), "/mid"
	defer close(h.backend.block)
	h.cfg.Workers = 2
	r := h.start(t)
	ctx := context.Background()
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	var mid string
	for deadline := time.Now().Add(time.Minute); mid == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err := h.db.CascadeStartedBy(ctx, root.ID); err == nil {
			mid = c.Node("demo/mid:latest").Run
		}
	}
	if mid == "" {
		t.Fatal("mid was never queued")
	}
	if err := r.Cancel(ctx, mid, "cancelled by a test"); err != nil {
		t.Fatal(err)
	}
	c := waitCascade(t, h.db, root.ID)
	for _, leaf := range []string{"demo/leaf1:latest", "demo/leaf2:latest"} {
		if n := c.Node(leaf); n.State != store.CascadeStopped || n.Note != "waiting on demo/mid:latest, which was cancelled" {
			t.Errorf("%s: %s %q", leaf, n.State, n.Note)
		}
	}
	if n := c.Node("demo/mid:latest"); n.State != store.CascadeCancelled {
		t.Errorf("mid: %s", n.State)
	}
}
