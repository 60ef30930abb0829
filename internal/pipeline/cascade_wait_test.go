package pipeline

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// The root's result queues the run of every node of its cascade at once,
// each waiting on its parents; none starts before they delivered. A push
// to a child whose run waits folds into that run: it keeps its cascade,
// waits, and builds the pushed commit once, after its parents.
func TestCascadeQueuesEveryRunAtOnceWaitingOnParents(t *testing.T) {
	h := chainHarness(t)
	h.cfg.Workers = 2
	h.backend.block, h.backend.blockURL = make(chan struct{}), "/mid"
	r := h.start(t)
	ctx := context.Background()
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	c, err := h.db.CascadeStartedBy(ctx, root.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{ // what each run waits on as the root finishes
		"demo/mid:latest": nil, "demo/side:latest": nil,
		"demo/leaf1:latest": {"demo/mid:latest"}, "demo/leaf2:latest": {"demo/mid:latest", "demo/side:latest"},
	}
	runOf := map[string]string{}
	for _, n := range c.Nodes {
		if n.Run == "" {
			t.Fatalf("node %s has no run as its cascade is recorded", n.Project)
		}
		runOf[n.Project] = n.Run
		run, err := h.db.Run(ctx, n.Run)
		if err != nil {
			t.Fatal(err)
		}
		// "At once": the run exists while mid's build is held, so before
		// any parent delivered (a bound on the clock, such as created
		// within 1 s of the root's finish, is exceeded by fsyncs on a
		// loaded machine).
		if run.Cause.Cascade != c.ID || run.Created.Before(root.Finished) {
			t.Errorf("run %s of %s: cause %+v", run.ID, n.Project, run.Cause)
		}
		// side may have delivered meanwhile: leaf2 then waits on mid only.
		if w := want[n.Project]; run.State == store.Queued && !slices.Equal(run.WaitsOn, w) && !slices.Equal(run.WaitsOn, w[:min(len(w), 1)]) {
			t.Errorf("run of %s waits on %q, want %q", n.Project, run.WaitsOn, w)
		}
	}
	// A push to leaf1 while its run waits on mid (blocked) folds into it.
	push := store.Cause{Kind: types.CausePush, Commit: "feed", DeliveryID: "d1"}
	folded, err := r.Enqueue(ctx, Request{Project: "demo/leaf1:latest", Commit: "feed", Cause: push})
	if err != nil {
		t.Fatal(err)
	}
	if folded.ID != runOf["demo/leaf1:latest"] || folded.Cause.Cascade != c.ID || len(folded.WaitsOn) != 1 ||
		len(folded.Folded) != 1 || folded.Folded[0].Cause.DeliveryID != "d1" || folded.Commit != "feed" {
		t.Fatalf("push gave run %s %+v waiting on %q folded %+v; want it folded into waiting run %s",
			folded.ID, folded.Cause, folded.WaitsOn, folded.Folded, runOf["demo/leaf1:latest"])
	}
	// Nothing below mid started while mid builds.
	time.Sleep(100 * time.Millisecond)
	for _, p := range []string{"demo/leaf1:latest", "demo/leaf2:latest"} {
		if run, _ := h.db.Run(ctx, runOf[p]); run.State != store.Queued || !run.Started.IsZero() || len(run.WaitsOn) == 0 {
			t.Errorf("%s: %s started %s waits on %q, before mid delivered", p, run.State, run.Started, run.WaitsOn)
		}
	}
	close(h.backend.block)
	c = waitCascade(t, h.db, root.ID)
	calls := h.rec.list()
	got := builds(calls)
	slices.Sort(got)
	if want := []string{"demo/base", "demo/leaf1", "demo/leaf2", "demo/mid", "demo/side"}; !slices.Equal(got, want) {
		t.Fatalf("built %q, want each of %q once", got, want)
	}
	for _, pc := range [][2]string{{"mid", "leaf1"}, {"mid", "leaf2"}, {"side", "leaf2"}} {
		if !deliveredBefore(calls, pc[0], pc[1]) {
			t.Errorf("%s was built before %s delivered; calls %q", pc[1], pc[0], calls)
		}
	}
	for _, n := range c.Nodes {
		run, _ := h.db.Run(ctx, n.Run)
		if n.State != store.CascadeDelivered || run.State != store.Passed || len(run.WaitsOn) != 0 || run.Released.IsZero() {
			t.Errorf("node %s %s: run %s %s waits on %q released %s", n.Project, n.State, run.ID, run.State, run.WaitsOn, run.Released)
		}
	}
	if leaf1, _ := h.db.Run(ctx, runOf["demo/leaf1:latest"]); leaf1.Commit != "feed" {
		t.Errorf("leaf1 built %q, want the pushed commit", leaf1.Commit)
	}
}

// A waiting run that is cancelled settles its node cancelled (the cascade
// does not wait for it for ever) and is never built.
func TestCascadeCancelledWaitingRunSettlesItsNode(t *testing.T) {
	h := chainHarness(t)
	h.backend.block, h.backend.blockURL = make(chan struct{}), "/mid"
	r := h.start(t)
	ctx := context.Background()
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	c, err := h.db.CascadeStartedBy(ctx, root.ID)
	if err != nil {
		t.Fatal(err)
	}
	leaf1 := c.Node("demo/leaf1:latest").Run
	if err := r.Cancel(ctx, leaf1, "not now"); err != nil {
		t.Fatal(err)
	}
	close(h.backend.block)
	c = waitCascade(t, h.db, root.ID)
	if n := c.Node("demo/leaf1:latest"); n.State != store.CascadeCancelled {
		t.Errorf("leaf1 %s, want cancelled", n.State)
	}
	if n := c.Node("demo/leaf2:latest"); n.State != store.CascadeDelivered {
		t.Errorf("leaf2 %s, want delivered", n.State)
	}
	if got := builds(h.rec.list()); slices.Contains(got, "demo/leaf1") {
		t.Errorf("cancelled leaf1 was built: %q", got)
	}
}

// A waiting run whose parents all settled without a new image ends
// skipped, "parent unchanged", without being built.
func TestCascadeUnchangedParentsSkipTheWaitingRun(t *testing.T) {
	h := chainHarness(t)
	h.backend.uniqueDigests = false // every build gives digestA
	r := h.start(t)
	ctx := context.Background()
	manual := store.Cause{Kind: types.CauseManual}
	// mid delivers digestA (and rebuilds its leaves).
	waitCascade(t, h.db, runAndWait(t, r, Request{Project: "demo/mid:latest", Cause: manual}).ID)
	// base's first image: mid rebuilds to the same digestA (unchanged),
	// side's first image is new, so leaf2 builds and leaf1 does not.
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: manual})
	c := waitCascade(t, h.db, root.ID)
	want := map[string]string{"demo/mid:latest": store.CascadeUnchanged, "demo/side:latest": store.CascadeDelivered,
		// leaf2 works (side is new) and gives digestA again.
		"demo/leaf1:latest": store.CascadeUnchanged, "demo/leaf2:latest": store.CascadeUnchanged}
	for _, n := range c.Nodes {
		if n.State != want[n.Project] {
			t.Errorf("node %s: %s, want %s", n.Project, n.State, want[n.Project])
		}
	}
	leaf1, err := h.db.Run(ctx, c.Node("demo/leaf1:latest").Run)
	if err != nil {
		t.Fatal(err)
	}
	if leaf1.State != store.Skipped || leaf1.Error != noteUnchanged || !leaf1.Started.IsZero() || len(leaf1.WaitsOn) != 0 {
		t.Errorf("leaf1's run %s %q started %s waits on %q; want skipped, parent unchanged", leaf1.State, leaf1.Error, leaf1.Started, leaf1.WaitsOn)
	}
	if leaf2, _ := h.db.Run(ctx, c.Node("demo/leaf2:latest").Run); leaf2.State != store.Passed || leaf2.Started.IsZero() {
		t.Errorf("leaf2's run %s, want it worked and passed (side's image is new)", leaf2.State)
	}
	count := map[string]int{}
	for _, b := range builds(h.rec.list()) {
		count[b]++
	}
	if count["demo/leaf1"] != 1 {
		t.Errorf("builds %v: want leaf1 once (for mid's first image)", count)
	}
}

const noteUnchanged = "parent unchanged: no parent in the cascade delivered a new image" // as store says

// A newer cascade's run of a child does not cancel the older cascade's
// run of that child while it still waits on a parent the newer one does
// not wait on: both build, each after its own parents.
func TestCascadeNewerCascadeKeepsTheOlderWaitingRun(t *testing.T) {
	h := chainHarness(t)
	h.cfg.Workers = 2
	h.backend.block, h.backend.blockURL = make(chan struct{}), "/mid"
	r := h.start(t)
	ctx := context.Background()
	manual := store.Cause{Kind: types.CauseManual}
	root := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: manual})
	a, err := h.db.CascadeStartedBy(ctx, root.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitingA := a.Node("demo/leaf2:latest").Run
	if _, err := r.Wait(ctx, a.Node("demo/side:latest").Run); err != nil {
		t.Fatal(err)
	}
	// side delivers again while mid builds: cascade B rebuilds leaf2 now.
	waitCascade(t, h.db, runAndWait(t, r, Request{Project: "demo/side:latest", Cause: manual, Force: true}).ID)
	if run, _ := h.db.Run(ctx, waitingA); run.State != store.Queued || len(run.WaitsOn) == 0 {
		t.Fatalf("cascade A's leaf2 run %s %q waits on %q; want it still waiting on mid", run.State, run.Error, run.WaitsOn)
	}
	close(h.backend.block)
	a = waitCascade(t, h.db, root.ID)
	if n := a.Node("demo/leaf2:latest"); n.State != store.CascadeDelivered || n.Run != waitingA {
		t.Errorf("cascade A's leaf2 node %s run %s, want delivered by run %s", n.State, n.Run, waitingA)
	}
	leaf2, _ := h.db.Run(ctx, waitingA)
	mid, _ := h.db.Run(ctx, a.Node("demo/mid:latest").Run)
	if leaf2.State != store.Passed || leaf2.Started.Before(mid.Finished) {
		t.Errorf("cascade A's leaf2 run %s started %s, mid finished %s", leaf2.State, leaf2.Started, mid.Finished)
	}
	n := 0
	for _, b := range builds(h.rec.list()) {
		if b == "demo/leaf2" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("leaf2 built %d times, want twice (after side's second image, after mid's)", n)
	}
}
