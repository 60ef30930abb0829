// Package rescan re-runs the test stage's scans on every delivered image on
// a schedule, without rebuilding: one pipeline run of kind rescan per entry,
// on the digest its last passed branch run delivered. It records what each
// scan found and what changed since the scan before (new and resolved
// findings), shows a whole rescan's progress entry by entry, and tells an
// entry's notify-email only when something changed.
//
// The scans of many images are spread: at most Parallel rescan runs of one
// rescan are queued or running at a time, so a rescan of hundreds of images
// never fills the queue ahead of the pushes and pull requests people wait
// on; and a scheduled rescan starts its entries evenly over Spread, so the
// registry and the scanners' package mirrors see a trickle, not a burst at
// the cron time (spread.go). A rescan that a stop of cccp cut short is
// resumed at the next start (resume.go).
package rescan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Runner queues runs and waits for them; *pipeline.Runner implements it.
type Runner interface {
	Enqueue(ctx context.Context, req pipeline.Request) (*store.Run, error)
	Wait(ctx context.Context, id string) (*store.Run, error)
}

// Store keeps rescans, scans and runs; *store.DB implements it.
type Store interface {
	LastDelivered(ctx context.Context, project string) (*store.Run, error)
	Runs(ctx context.Context, f store.RunFilter) ([]*store.Run, error)
	CreateRescan(ctx context.Context, r *store.Rescan) error
	UpdateRescan(ctx context.Context, id string, fn func(*store.Rescan) error) (*store.Rescan, error)
	Rescans(ctx context.Context, limit int) ([]*store.Rescan, error)
	SaveRescan(ctx context.Context, r *store.Rescan, scans []*store.Scan) error
	Scans(ctx context.Context, project string, limit int) ([]*store.Scan, error)
}

// Notifier sends one message to people (the notify outbox implements it).
// It must not block for long: sending is the outbox's job.
type Notifier interface {
	Notify(ctx context.Context, to []string, subject, text string) error
}

// DefaultParallel is how many rescan runs of one rescan are queued or
// running at once unless configured.
const DefaultParallel = 2

// Config is what a Scanner needs. Runner, Store and Entries are required.
type Config struct {
	Runner Runner
	Store  Store
	// Entries is the index now: every entry is rescanned.
	Entries func() []*index.Entry
	// Notifier tells an entry's notify-email about changed findings; nil
	// sends nothing.
	Notifier Notifier
	// Parallel bounds the rescan runs of one rescan queued or running at
	// once (default DefaultParallel).
	Parallel int
	// Spread is the window over which a scheduled rescan starts its
	// entries, evenly, in a stable order (spread.go); 0 starts them all at
	// once, Parallel at a time. A rescan started by hand is not spread.
	Spread time.Duration
	// Clock is the time rescans read and wait on (default the wall clock).
	Clock Clock
	// BaseURL is where people reach cccp, for links in messages.
	BaseURL string
	Logger  *slog.Logger
}

// Scanner runs rescans, one at a time.
type Scanner struct {
	cfg   Config
	log   *slog.Logger
	clock Clock

	resumed sync.Once
	// skipped counts the scheduled rescans skipped because the one before
	// was still under way (cccp_rescan_skipped_total).
	skipped atomic.Int64
	// afterRound, when set (by tests), is called when a rescan's work has
	// ended and the next may start.
	afterRound func(*store.Rescan)

	mu      sync.Mutex
	running string // ID of the rescan under way, "" when none
	// cur is the progress of the rescan under way, ahead of the store
	// (flushed every FlushEvery, so a rescan of hundreds of images does not
	// rewrite its record hundreds of times).
	cur     *store.Rescan
	pending []*store.Scan // recorded since the last write
	flushed time.Time
}

// FlushEvery is how often a rescan's progress is written to the store
// while it runs; Progress shows it live.
const FlushEvery = time.Second

// ErrBusy is returned when a rescan is asked for while one is under way.
var ErrBusy = errors.New("a rescan is already under way")

// New checks cfg and returns a Scanner.
func New(cfg Config) (*Scanner, error) {
	var missing []string
	if cfg.Runner == nil {
		missing = append(missing, "Runner")
	}
	if cfg.Store == nil {
		missing = append(missing, "Store")
	}
	if cfg.Entries == nil {
		missing = append(missing, "Entries")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("rescan: missing configuration: %s", strings.Join(missing, ", "))
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.Spread < 0 {
		return nil, fmt.Errorf("rescan: negative spread %s", cfg.Spread)
	}
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	return &Scanner{cfg: cfg, log: cfg.Logger, clock: cfg.Clock}, nil
}

// Run rescans on sched until ctx ends, after resuming the rescan a stop of
// cccp cut short (Resume). A scheduled rescan that comes due while the one
// before is still under way (a long spread, a slow scan, a rescan started
// by hand) is skipped, with a warning and cccp_rescan_skipped_total: the
// round under way scans every entry anyway, and the next due time starts a
// fresh one.
func (s *Scanner) Run(ctx context.Context, sched Schedule) {
	if err := s.Resume(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("rescan: resume", "err", err)
	}
	for {
		next := sched.Next(s.clock.Now())
		if next.IsZero() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(next.Sub(s.clock.Now())):
		}
		r, err := s.begin(ctx, "schedule", s.cfg.Spread)
		switch {
		case errors.Is(err, ErrBusy):
			s.skipped.Add(1)
			s.log.Warn("rescan: skipped the scheduled rescan, the one before is still under way", "due", next, "err", err)
		case err != nil:
			if ctx.Err() == nil {
				s.log.Error("rescan", "err", err)
			}
		default:
			go s.work(ctx, r)
		}
	}
}

// Start begins a rescan of every entry and returns it at once, its work
// going on until done or ctx ends.
func (s *Scanner) Start(ctx context.Context, trigger string) (*store.Rescan, error) {
	r, err := s.begin(ctx, trigger, 0)
	if err != nil {
		return nil, err
	}
	go s.work(ctx, r)
	return r, nil
}

// Rescan rescans every entry and returns when all are done.
func (s *Scanner) Rescan(ctx context.Context, trigger string) (*store.Rescan, error) {
	r, err := s.begin(ctx, trigger, 0)
	if err != nil {
		return nil, err
	}
	return s.work(ctx, r), nil
}

// target is one entry to rescan and the run that delivered its image.
type target struct {
	entry     *index.Entry
	delivered *store.Run
	digest    string
}

// begin records a new rescan: every entry of the index, those with nothing
// delivered already skipped, the others due over spread.
func (s *Scanner) begin(ctx context.Context, trigger string, spread time.Duration) (*store.Rescan, error) {
	s.mu.Lock()
	if s.running != "" {
		id := s.running
		s.mu.Unlock()
		return nil, fmt.Errorf("rescan %s: %w", id, ErrBusy)
	}
	s.running = "starting"
	s.mu.Unlock()
	entries := slices.Clone(s.cfg.Entries())
	slices.SortFunc(entries, func(a, b *index.Entry) int { return strings.Compare(a.Key(), b.Key()) })
	r := &store.Rescan{Trigger: trigger, Started: s.clock.Now().UTC()}
	for _, e := range entries {
		re := store.RescanEntry{Project: e.Key(), State: store.Queued}
		if _, _, err := s.delivered(ctx, e.Key()); err != nil {
			re.State, re.Note = store.Skipped, err.Error()
		}
		r.Entries = append(r.Entries, re)
	}
	planDue(r, spread)
	if err := s.cfg.Store.CreateRescan(ctx, r); err != nil {
		s.mu.Lock()
		s.running = ""
		s.mu.Unlock()
		return nil, fmt.Errorf("rescan: %w", err)
	}
	s.mu.Lock()
	s.running, s.cur, s.flushed = r.ID, cloneRescan(r), s.clock.Now()
	s.mu.Unlock()
	s.log.Info("rescan started", "rescan", r.ID, "entries", len(r.Entries), "trigger", trigger, "spread", spread)
	return r, nil
}

// errNothingDelivered skips an entry whose image was never delivered.
var errNothingDelivered = errors.New("nothing delivered yet: no passed branch run")

// delivered finds the branch run that delivered project's image last and
// the digest it built (store.DB.LastDelivered: one record, however many
// rescans came since).
func (s *Scanner) delivered(ctx context.Context, project string) (*store.Run, string, error) {
	run, err := s.cfg.Store.LastDelivered(ctx, project)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", errNothingDelivered
	}
	if err != nil {
		return nil, "", fmt.Errorf("find the delivered image: %w", err)
	}
	return run, run.DeliveredDigest(), nil
}

// work runs every entry of r not yet done, each at its due time and at
// most Parallel at a time, and records the end of r.
func (s *Scanner) work(ctx context.Context, r *store.Rescan) *store.Rescan {
	defer func() {
		s.mu.Lock()
		s.running, s.cur = "", nil
		s.mu.Unlock()
		if s.afterRound != nil {
			s.afterRound(r)
		}
	}()
	todo := make(chan item)
	var wg sync.WaitGroup
	for range s.cfg.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range todo {
				s.scanEntry(ctx, r.ID, it)
			}
		}()
	}
feed:
	for _, it := range items(r) {
		if wait := it.due.Sub(s.clock.Now()); wait > 0 {
			select {
			case <-s.clock.After(wait):
			case <-ctx.Done():
				break feed
			}
		}
		select {
		case todo <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(todo)
	wg.Wait()
	if ctx.Err() != nil {
		s.flush(ctx, time.Time{}) // the scans that ended; Resume goes on with the others at the next start
		return r
	}
	done := s.flush(ctx, s.clock.Now().UTC())
	if done == nil {
		return r
	}
	r = done
	s.log.Info("rescan finished", "rescan", r.ID, "entries", len(done.Entries), "took", done.Finished.Sub(done.Started))
	return done
}

// setEntry changes project's part in the rescan under way, adds its scan
// (if any) to the next write, and writes when the last write was
// FlushEvery ago.
func (s *Scanner) setEntry(ctx context.Context, id, project string, scan *store.Scan, fn func(e *store.RescanEntry)) {
	s.mu.Lock()
	if s.cur == nil || s.cur.ID != id {
		s.mu.Unlock()
		return
	}
	for i := range s.cur.Entries {
		if s.cur.Entries[i].Project == project {
			fn(&s.cur.Entries[i])
		}
	}
	if scan != nil {
		s.pending = append(s.pending, scan)
	}
	due := s.clock.Now().Sub(s.flushed) >= FlushEvery
	s.mu.Unlock()
	if due {
		s.flush(ctx, time.Time{})
	}
}

// flush writes the progress of the rescan under way and the scans recorded
// since the last write in one transaction, then tells people about the
// scans that changed: after the write, so a stop of cccp in between never
// loses a scan that someone was told about. finished, when set, ends the
// rescan.
func (s *Scanner) flush(ctx context.Context, finished time.Time) *store.Rescan {
	s.mu.Lock()
	if s.cur == nil {
		s.mu.Unlock()
		return nil
	}
	snap, scans := cloneRescan(s.cur), s.pending
	snap.Finished = finished
	s.pending, s.flushed = nil, s.clock.Now()
	s.mu.Unlock()
	if err := s.cfg.Store.SaveRescan(context.WithoutCancel(ctx), snap, scans); err != nil {
		s.log.Error("rescan: record progress and findings", "rescan", snap.ID, "scans", len(scans), "err", err)
		s.mu.Lock()
		s.pending = append(scans, s.pending...) // the next write tries again
		s.mu.Unlock()
		return nil
	}
	for _, sc := range scans {
		if len(sc.New) > 0 || len(sc.Resolved) > 0 {
			s.notify(ctx, sc.Project, sc)
		}
	}
	return snap
}

// Progress is the rescan under way, as it is now (nil when none).
func (s *Scanner) Progress() *store.Rescan {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil
	}
	return cloneRescan(s.cur)
}

func cloneRescan(r *store.Rescan) *store.Rescan {
	c := *r
	c.Entries = slices.Clone(r.Entries)
	return &c
}

// scanEntry runs one entry's rescan run (or, resumed, waits for the one
// it had started before cccp stopped), waits for it, and records its
// findings.
func (s *Scanner) scanEntry(ctx context.Context, id string, it item) {
	project := it.project
	// An entry handed over as cccp stops (a select with both the hand-over
	// and ctx's end ready picks either), or whose look-up or queueing ends
	// with ctx, stays to do: Resume scans it at the next start. Recorded
	// as skipped or failed with ctx's error, it would count as done and
	// never be scanned.
	if ctx.Err() != nil {
		return
	}
	delivered, digest, err := s.delivered(ctx, project)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		s.setEntry(ctx, id, project, nil, func(e *store.RescanEntry) { e.State, e.Note = store.Skipped, err.Error() })
		return
	}
	var done *store.Run
	if it.runID != "" {
		done, err = s.cfg.Runner.Wait(ctx, it.runID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.log.Warn("rescan: the run of a resumed entry is gone; starting another", "rescan", id, "project", project, "run", it.runID)
			done = nil
		case err != nil:
			return // cccp is stopping
		default:
			digest = cmp.Or(scannedDigest(done), digest)
		}
	}
	if done == nil {
		run, err := s.cfg.Runner.Enqueue(ctx, pipeline.Request{
			Project: project, Kind: types.KindRescan,
			Cause:  store.Cause{Kind: types.CauseRescan, Detail: "rescan " + id},
			GitURL: delivered.GitURL, Branch: delivered.Branch, Commit: delivered.Commit, Digest: digest,
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			state, note := store.Failed, err.Error()
			if errors.Is(err, pipeline.ErrUnknownProject) {
				state, note = store.Skipped, "no longer in the index"
			}
			s.setEntry(ctx, id, project, nil, func(e *store.RescanEntry) { e.State, e.Note = state, note })
			return
		}
		s.setEntry(ctx, id, project, nil, func(e *store.RescanEntry) { e.State, e.RunID = store.Running, run.ID })
		done, err = s.cfg.Runner.Wait(ctx, run.ID)
		if err != nil {
			return // cccp is stopping
		}
	}
	scan, err := s.scanOf(ctx, id, delivered, done, digest)
	if err != nil {
		s.log.Error("rescan: compare findings", "rescan", id, "project", project, "err", err)
	}
	state, note := done.State, done.Error
	if state == store.Failed && scan != nil && scan.State == store.Passed {
		// The scans ran and found something: that is the scan's result,
		// not a failure to scan.
		state, note = store.Passed, ""
	}
	changed := scan != nil && (len(scan.New) > 0 || len(scan.Resolved) > 0)
	s.setEntry(ctx, id, project, scan, func(e *store.RescanEntry) { e.State, e.Note, e.Changed = state, note, changed })
}

// scannedDigest is the image a rescan run scanned ("" when it says none).
func scannedDigest(run *store.Run) string {
	for _, st := range run.Stages {
		if st.Name == types.StageTest && st.Digest != "" {
			return st.Digest
		}
	}
	return ""
}
