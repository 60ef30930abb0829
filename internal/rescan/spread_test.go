package rescan

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
)

// enqueued is one rescan run as the Scanner queued it: which entry, on the
// clock when, and how many of the rescan's runs were in the pipeline then,
// counting it.
type enqueued struct {
	project  string
	at       time.Time
	inFlight int
}

// timedRunner stands between the Scanner and the pipeline and tells the
// test of every run queued.
type timedRunner struct {
	Runner
	clock    Clock
	mu       sync.Mutex
	inFlight int
	queued   chan enqueued
}

func (r *timedRunner) Enqueue(ctx context.Context, req pipeline.Request) (*store.Run, error) {
	r.mu.Lock()
	r.inFlight++
	e := enqueued{project: req.Project, at: r.clock.Now(), inFlight: r.inFlight}
	r.mu.Unlock()
	r.queued <- e
	return r.Runner.Enqueue(ctx, req)
}

func (r *timedRunner) Wait(ctx context.Context, id string) (*store.Run, error) {
	run, err := r.Runner.Wait(ctx, id)
	r.mu.Lock()
	r.inFlight--
	r.mu.Unlock()
	return run, err
}

// scheduled is a world of n entries whose Scanner runs on a fake clock
// at 03:00 UTC every day, from Sunday 2026-12-06 02:00 UTC.
type scheduled struct {
	*noopWorld
	clock  *fakeClock
	runner *timedRunner
	rounds chan *store.Rescan
	cron   time.Time // the first scheduled time
	logs   *syncBuffer
}

func newScheduled(t *testing.T, n, parallel int, spread time.Duration, be *noop, cron string) *scheduled {
	t.Helper()
	s := &scheduled{clock: newFakeClock(time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)), rounds: make(chan *store.Rescan, 4), logs: &syncBuffer{}}
	s.noopWorld = openNoopWorld(t, worldOpts{n: n, parallel: parallel, seed: true, be: be, clock: s.clock, spread: spread,
		log: slog.New(slog.NewTextHandler(s.logs, nil)),
		wrap: func(r Runner) Runner {
			s.runner = &timedRunner{Runner: r, clock: s.clock, queued: make(chan enqueued, n)}
			return s.runner
		}})
	s.scanner.afterRound = func(r *store.Rescan) { s.rounds <- r }
	sched, err := ParseSchedule(cron)
	if err != nil {
		t.Fatal(err)
	}
	s.cron = sched.Next(s.clock.Now())
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	t.Cleanup(func() { cancel(); <-stopped })
	go func() { defer close(stopped); s.scanner.Run(ctx, sched) }()
	s.clock.waitFor(t, 1) // Run waits for the first cron time
	return s
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A scheduled rescan starts its entries evenly over the spread, not all
// at the cron time, in the same order in every rescan; the rescan ends
// (and its progress counts every entry) when the last is done.
func TestScheduledRescanSpreadsItsEntries(t *testing.T) {
	s := newScheduled(t, 4, 4, time.Hour, nil, "CRON_TZ=UTC 0 3 * * *")
	var order []string
	for _, e := range s.entries {
		order = append(order, e.Key())
	}
	slices.SortFunc(order, byRank)

	var firstRound []string
	for round := range 2 {
		at := s.cron.AddDate(0, 0, round)
		var got []string
		for k := range order {
			due := at.Add(time.Duration(k) * 15 * time.Minute)
			if k == len(order)-1 {
				// The last one is still to come, with its due time shown.
				p := s.scanner.Progress()
				if p == nil || p.Done() > 3 || len(p.Entries) != 4 {
					t.Fatalf("round %d: progress before the last entry: %+v", round, p)
				}
				last := p.Entries[slices.IndexFunc(p.Entries, func(e store.RescanEntry) bool { return e.Project == order[k] })]
				if last.State != store.Queued || !last.Due.Equal(due) {
					t.Errorf("round %d: last entry before its time: %+v, want queued, due %s", round, last, due)
				}
			}
			s.clock.set(due)
			e := receive(t, s.runner.queued)
			if !e.at.Equal(due) {
				t.Fatalf("round %d: %s queued at %s, want %s (entry %d of 4, 15m apart)", round, e.project, e.at.Format(time.TimeOnly), due.Format(time.TimeOnly), k+1)
			}
			got = append(got, e.project)
		}
		r := receive(t, s.rounds)
		if r.Done() != 4 || !r.Finished.Equal(at.Add(45*time.Minute)) {
			t.Errorf("round %d: %d of %d done, finished %s; want 4, at 03:45", round, r.Done(), len(r.Entries), r.Finished)
		}
		if !slices.Equal(got, order) {
			t.Errorf("round %d: order %q, want by the keys' hash %q", round, got, order)
		}
		if round == 0 {
			firstRound = got
		} else if !slices.Equal(got, firstRound) {
			t.Errorf("second round's order %q, first's %q", got, firstRound)
		}
		s.clock.waitFor(t, 1) // Run waits for the next day
	}
	list, err := s.db.Rescans(context.Background(), 0)
	if err != nil || len(list) != 2 || list[0].Done() != 4 || list[0].Finished.IsZero() {
		t.Errorf("stored rescans: %v %+v", err, list)
	}
}

// The spread does not lift the bound: entries whose time has come wait for
// one of the Parallel runs to end.
func TestSpreadStillBoundedByParallel(t *testing.T) {
	gate := make(chan struct{})
	be := &noop{hold: func(ctx context.Context, _ string) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	s := newScheduled(t, 3, 1, 30*time.Minute, be, "CRON_TZ=UTC 0 3 * * *")
	s.clock.set(s.cron)
	first := receive(t, s.runner.queued)
	s.clock.set(s.cron.Add(30 * time.Minute)) // every entry is due
	got := []enqueued{first}
	for range 2 {
		gate <- struct{}{}
		got = append(got, receive(t, s.runner.queued))
	}
	gate <- struct{}{}
	r := receive(t, s.rounds)
	for _, e := range got {
		if e.inFlight != 1 {
			t.Errorf("%s queued with %d rescan runs in the pipeline, want at most 1", e.project, e.inFlight)
		}
	}
	if r.Done() != 3 {
		t.Errorf("%d of 3 done", r.Done())
	}
}

// A scheduled rescan that comes due while the one before is still under
// way is skipped, with a warning and a metric; the next due time starts
// one again.
func TestScheduledRescanSkippedWhileOneIsUnderWay(t *testing.T) {
	gate := make(chan struct{})
	var mu sync.Mutex
	holds := 0
	be := &noop{hold: func(ctx context.Context, _ string) error {
		mu.Lock()
		holds++
		first := holds == 1
		mu.Unlock()
		if !first {
			return nil
		}
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	s := newScheduled(t, 1, 1, 0, be, "CRON_TZ=UTC 0 * * * *")
	s.clock.set(s.cron) // 03:00: the first rescan starts and its scan holds
	receive(t, s.runner.queued)
	s.clock.waitFor(t, 1)
	s.clock.set(s.cron.Add(time.Hour)) // 04:00: still under way
	s.clock.waitFor(t, 1)              // Run has skipped it and waits for 05:00

	var m strings.Builder
	if err := s.scanner.WriteMetrics(&m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.String(), "\ncccp_rescan_skipped_total 1\n") {
		t.Errorf("metrics after a skip:\n%s", m.String())
	}
	if logs := s.logs.String(); !strings.Contains(logs, "skipped the scheduled rescan") || !strings.Contains(logs, "due=2026-12-06T04:00:00") {
		t.Errorf("log after a skip:\n%s", logs)
	}

	gate <- struct{}{}
	first := receive(t, s.rounds)
	s.clock.set(s.cron.Add(2 * time.Hour)) // 05:00: a new one
	receive(t, s.runner.queued)
	second := receive(t, s.rounds)
	if first.ID == second.ID || !second.Started.Equal(s.cron.Add(2*time.Hour)) {
		t.Errorf("rescans %s (started %s) and %s (started %s); want a new one at 05:00", first.ID, first.Started, second.ID, second.Started)
	}
	list, err := s.db.Rescans(context.Background(), 0)
	if err != nil || len(list) != 2 {
		t.Errorf("stored rescans: %v, %d; want 2 (the 04:00 one skipped)", err, len(list))
	}
	m.Reset()
	s.scanner.WriteMetrics(&m)
	if !strings.Contains(m.String(), "\ncccp_rescan_skipped_total 1\n") {
		t.Errorf("metrics after a rescan that was not skipped:\n%s", m.String())
	}
}
