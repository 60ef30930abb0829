package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// slowStore is the real store with a gate in front of its writes: while
// armed, CreateRun and the UpdateRun of run hold stop until the gate opens
// (a disk whose fsync hangs), and say so on entered first.
type slowStore struct {
	*store.DB
	mu      sync.Mutex
	armed   bool
	run     string        // UpdateRun of this run ID is gated ("": none)
	entered chan struct{} // one value per gated write that started
	gate    chan struct{} // closed: gated writes go on
}

func newSlowStore(db *store.DB) *slowStore {
	return &slowStore{DB: db, entered: make(chan struct{}, 16), gate: make(chan struct{})}
}

// arm gates the next writes: every CreateRun and CreateRunSuperseding,
// and the UpdateRun of run.
func (s *slowStore) arm(run string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.run, s.gate = true, run, make(chan struct{})
}

// watch only reports the writes that begin (on entered), gating none.
func (s *slowStore) watch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.run, s.gate = true, "", make(chan struct{})
	close(s.gate)
}

// open lets the gated writes go on and stops gating.
func (s *slowStore) open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.armed {
		s.armed = false
		close(s.gate)
	}
}

func (s *slowStore) wait(ctx context.Context, gated bool) error {
	s.mu.Lock()
	gate := s.gate
	gated = gated && s.armed
	s.mu.Unlock()
	if !gated {
		return nil
	}
	s.entered <- struct{}{}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *slowStore) CreateRun(ctx context.Context, r *store.Run) error {
	if err := s.wait(ctx, true); err != nil {
		return err
	}
	return s.DB.CreateRun(ctx, r)
}

// CreateRunSuperseding is how Enqueue stores a new run: gated like CreateRun.
func (s *slowStore) CreateRunSuperseding(ctx context.Context, r *store.Run, sup store.Supersede) ([]*store.Run, error) {
	if err := s.wait(ctx, true); err != nil {
		return nil, err
	}
	return s.DB.CreateRunSuperseding(ctx, r, sup)
}

func (s *slowStore) UpdateRun(ctx context.Context, id string, fn func(*store.Run) error) (*store.Run, error) {
	s.mu.Lock()
	gated := id == s.run
	s.mu.Unlock()
	if err := s.wait(ctx, gated); err != nil {
		return nil, err
	}
	return s.DB.UpdateRun(ctx, id, fn)
}

// pickSoon takes the next run off r's queue, failing the test when that
// waits on a store write held by the gate: the pick never touches the
// store, and the gate stays shut until the test opens it.
func pickSoon(t *testing.T, r *Runner, st *slowStore) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		id, done, ok := r.next(context.Background())
		if ok {
			done()
		}
		got <- id
	}()
	select {
	case id := <-got:
		return id
	case <-time.After(10 * time.Second):
		st.open() // the gate never opens on its own: the pick waits on the write
		t.Fatalf("picking a queued run waited for an Enqueue's store write")
		return ""
	}
}

// TestPickDoesNotWaitForEnqueuesWrite: while an Enqueue's store write
// hangs (a slow fsync), a worker still picks the next queued run, and the
// run being folded into is not picked until its new commit is stored.
// busyRunner is a Runner over a slowStore whose one worker is busy with a
// run of p1/app that does not end while the test runs.
func busyRunner(t *testing.T) (*harness, *slowStore, *Runner) {
	t.Helper()
	h, _ := queueHarness(t)
	h.backend.block = make(chan struct{})
	t.Cleanup(func() { close(h.backend.block) })
	h.backend.started = make(chan struct{}, 64)
	st := newSlowStore(h.db)
	h.cfg.Store = st
	r, _ := h.startCtx(t)
	if _, err := r.Enqueue(context.Background(), push("p1/app:latest", "busy")); err != nil {
		t.Fatal(err)
	}
	<-h.backend.started
	return h, st, r
}

func TestPickDoesNotWaitForEnqueuesWrite(t *testing.T) {
	h, st, r := busyRunner(t)
	ctx := context.Background()
	waiting, err := r.Enqueue(ctx, push("p2/app:latest", "a"))
	if err != nil {
		t.Fatal(err)
	}
	folded, err := r.Enqueue(ctx, Request{Project: "p3/app:latest", Kind: "branch", Commit: "b1",
		Cause: store.Cause{Kind: "manual", Commit: "b1"}}) // a person's: picked before the push
	if err != nil {
		t.Fatal(err)
	}

	var fresh *store.Run
	t.Run("a new run's write", func(t *testing.T) {
		st.arm("")
		errc := make(chan error, 1)
		go func() { var err error; fresh, err = r.Enqueue(ctx, push("p4/app:latest", "n")); errc <- err }()
		<-st.entered
		// The manual run goes first by class; the new push is not yet in
		// line. Put it back: the next subtest needs it queued.
		if id := pickSoon(t, r, st); id != folded.ID {
			t.Errorf("picked run %s while a run was being stored, want %s", id, folded.ID)
		}
		st.open()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		// The manual run was taken off the queue by the test, not by a
		// worker: queue another person's run for the next subtest.
		folded, err = r.Enqueue(ctx, Request{Project: "p5/app:latest", Kind: "branch", Commit: "b1",
			Cause: store.Cause{Kind: "manual", Commit: "b1"}})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a fold's write", func(t *testing.T) {
		st.arm(folded.ID)
		errc := make(chan error, 1)
		go func() {
			_, err := r.Enqueue(ctx, Request{Project: "p5/app:latest", Kind: "branch", Commit: "b2",
				Cause: store.Cause{Kind: "manual", Commit: "b2"}})
			errc <- err
		}()
		<-st.entered
		// The run being folded into is out of line while its record
		// changes: the pick takes a push instead.
		if id := pickSoon(t, r, st); id != waiting.ID && id != fresh.ID {
			t.Errorf("picked run %s while run %s was being folded into, want %s or %s", id, folded.ID, waiting.ID, fresh.ID)
		}
		st.open()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if id := pickSoon(t, r, st); id != folded.ID {
			t.Errorf("after the fold: picked %s, want the folded run %s back in line", id, folded.ID)
		}
		run, err := h.db.Run(ctx, folded.ID)
		if err != nil || run.Commit != "b2" {
			t.Errorf("folded run: %+v, %v; want commit b2", run, err)
		}
	})
}

// BenchmarkEnqueueAndPickWith10kQueued: while 10,000 runs of 300 projects
// wait, a worker picks the next run; pick-ns is how long the pick took,
// waits included. "alone": nothing else happens (the policy's pass over
// the queue); "during an Enqueue's write": an Enqueue stores a new run
// (real store, fsync) and the pick starts as soon as its write has begun.
// ns/op is the pick plus the Enqueue.
func BenchmarkEnqueueAndPickWith10kQueued(b *testing.B) {
	var st *slowStore
	r, ctx := longQueue(b, 10000, func(db *store.DB) Store { st = newSlowStore(db); return st })
	st.watch()
	n := 0
	enqueue := func(errc chan<- error) {
		n++
		_, err := r.Enqueue(ctx, push(fmt.Sprintf("new%03d/j%d:latest", n%300, n), "c"))
		errc <- err
	}
	pick := func() time.Duration {
		t0 := time.Now()
		_, done, ok := r.next(ctx)
		d := time.Since(t0)
		if !ok {
			b.Fatal("no run to pick")
		}
		done()
		return d
	}
	b.Run("alone", func(b *testing.B) {
		var picks time.Duration
		for b.Loop() {
			picks += pick()
			b.StopTimer()
			errc := make(chan error, 1) // one in, one out: the queue stays at 10,000
			enqueue(errc)
			<-st.entered
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(picks.Nanoseconds())/float64(b.N), "pick-ns")
	})
	b.Run("during an Enqueue's write", func(b *testing.B) {
		var picks time.Duration
		for b.Loop() {
			errc := make(chan error, 1)
			go enqueue(errc)
			<-st.entered
			picks += pick()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(picks.Nanoseconds())/float64(b.N), "pick-ns")
	})
}

// TestConcurrentBurstMakesOneRun: pushes to one target that arrive at the
// same moment still fold into one run, now that Enqueue no longer holds
// the queue's lock across its store write.
func TestConcurrentBurstMakesOneRun(t *testing.T) {
	h, st, r := busyRunner(t)
	ctx := context.Background()
	// The first push's write is held while the other 19 come: each must
	// wait for it and fold, none store a run of its own meanwhile.
	st.arm("")
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Go(func() {
			run, err := r.Enqueue(ctx, push("demo/base:latest", fmt.Sprintf("c%02d", i)))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = run.ID
		})
	}
	<-st.entered
	deadline := time.Now().Add(time.Second)
	for len(st.entered) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(st.entered); n > 0 {
		t.Errorf("%d more runs of the target were being stored while the first one was", n)
	}
	st.open()
	drained := make(chan struct{})
	defer close(drained)
	go func() { // a wrong Enqueue's writes must not block on the report
		for {
			select {
			case <-st.entered:
			case <-drained:
				return
			}
		}
	}()
	wg.Wait()
	runs := runsOf(t, h, "demo/base:latest")
	if len(runs) != 1 || runs[0].State != store.Queued || len(runs[0].Folded) != 19 {
		t.Fatalf("20 pushes at once made %d runs (%v); want one queued with 19 folds", len(runs), ids)
	}
	for _, id := range ids {
		if id != runs[0].ID {
			t.Errorf("Enqueue returned run %s, want %s", id, runs[0].ID)
		}
	}
}

// BenchmarkPushDropWith10kQueued: the queue's own bookkeeping, no store:
// with 10,000 runs queued, one leaves (cancelled while queued, or picked)
// and one comes.
func BenchmarkPushDropWith10kQueued(b *testing.B) {
	const queued = 10000
	r := &Runner{sched: newScheduler(), log: slog.New(slog.DiscardHandler)}
	run := func(i int) *store.Run {
		return &store.Run{ID: strconv.Itoa(i + 1), Project: fmt.Sprintf("p%03d/j%d:latest", i%300, i), Kind: types.KindBranch,
			Branch: "main", State: store.Queued, Cause: store.Cause{Kind: types.CausePush}}
	}
	for i := range queued {
		r.push(run(i))
	}
	i := 0
	for b.Loop() {
		id := strconv.Itoa(i + 1)
		r.drop(id)
		r.sched.forget(id) // as Cancel does
		r.push(run(queued + i))
		i++
	}
	if n := len(r.sched.items); n != queued {
		b.Fatalf("%d queued, want %d", n, queued)
	}
}

// TestRunPlacedDuringCreateIsSuperseded: a run of the same target that
// comes into the queue while an Enqueue's transaction is being written (a
// cascade step stored beside it, which the transaction cannot see) does
// not stay live beside the new run: the older of the two is superseded.
func TestRunPlacedDuringCreateIsSuperseded(t *testing.T) {
	h, st, r := busyRunner(t)
	ctx := context.Background()

	st.arm("")
	errc := make(chan error, 1)
	var fresh *store.Run
	go func() { var err error; fresh, err = r.Enqueue(ctx, push("p2/app:latest", "new")); errc <- err }()
	<-st.entered
	// Meanwhile a run of the same target is stored and placed, as a
	// cascade's FinishRun and follow do.
	beside := &store.Run{Project: "p2/app:latest", Kind: types.KindBranch, Branch: "master", GitURL: "file:///git/p2-app",
		Commit: "cascade", State: store.Queued, Cause: store.Cause{Kind: types.CauseParent, Commit: "cascade"},
		Stages: plannedStages(types.KindBranch)}
	if err := h.db.CreateRun(ctx, beside); err != nil {
		t.Fatal(err)
	}
	r.qmu.Lock()
	r.push(beside)
	r.qmu.Unlock()
	st.open()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	got, err := h.db.Run(ctx, beside.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.Cancelled || !strings.Contains(got.Error, "superseded by run "+fresh.ID) {
		t.Fatalf("run %s stored during run %s's transaction: %s %q; want cancelled, superseded by run %s",
			beside.ID, fresh.ID, got.State, got.Error, fresh.ID)
	}
	if f, _ := h.db.Run(ctx, fresh.ID); f.State != store.Queued {
		t.Fatalf("the new run is %s, want queued", f.State)
	}
}
