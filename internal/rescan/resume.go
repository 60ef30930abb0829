package rescan

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Resume goes on with the rescan a stop of cccp cut short, in the
// background, and returns: its entries that had not ended are scanned
// (those whose runs were queued or running wait for those runs, which the
// pipeline resumes; the others start at their due times, at once when
// those have passed), its record completes, and people hear of the scans
// that changed, once: an entry recorded before the stop was told about
// then and is not scanned again. Only the newest rescan is resumed; older
// ones left open (by a version of cccp that did not resume) are closed,
// their open entries cancelled.
//
// Run calls it first; call it before anything can Start a rescan, so a
// new rescan does not take the place of the cut one. Only the first call
// does anything.
func (s *Scanner) Resume(ctx context.Context) error {
	var err error
	s.resumed.Do(func() { err = s.resume(ctx) })
	return err
}

func (s *Scanner) resume(ctx context.Context) error {
	list, err := s.cfg.Store.Rescans(ctx, 10)
	if err != nil {
		return fmt.Errorf("find an interrupted rescan: %w", err)
	}
	var cut *store.Rescan
	for i, r := range list { // newest first
		if !r.Finished.IsZero() {
			continue
		}
		if i == 0 {
			cut = r // only the newest: a newer one ended, so this one's entries were scanned since
			continue
		}
		if err := s.cancel(ctx, r.ID); err != nil {
			return err
		}
	}
	if cut == nil {
		return nil
	}
	s.adopt(ctx, cut)
	s.mu.Lock()
	if s.running != "" {
		running := s.running
		s.mu.Unlock()
		return fmt.Errorf("resume rescan %s: rescan %s: %w", cut.ID, running, ErrBusy)
	}
	s.running, s.cur, s.flushed = cut.ID, cloneRescan(cut), s.clock.Now()
	s.mu.Unlock()
	s.log.Info("rescan resumed", "rescan", cut.ID, "done", cut.Done(), "entries", len(cut.Entries), "trigger", cut.Trigger)
	go s.work(ctx, cut)
	return nil
}

// adopt finds the runs that entries of r still queued in the store had
// started before cccp stopped: their progress is written every FlushEvery,
// so a stop without the last write (a crash) can leave an entry queued
// whose run is in the pipeline, or even done. Such an entry waits for that
// run instead of queueing a second one.
//
// One pass over the rescan runs, newest first, until every queued entry
// has its run or a run of an older rescan comes (rescans run one at a
// time, so r's runs are all newer than those): not a query per entry.
func (s *Scanner) adopt(ctx context.Context, r *store.Rescan) {
	queued := map[string]*store.RescanEntry{}
	for i := range r.Entries {
		if e := &r.Entries[i]; e.State == store.Queued {
			queued[e.Project] = e
		}
	}
	self, err := strconv.ParseUint(r.ID, 10, 64)
	if err != nil || len(queued) == 0 {
		return
	}
	const page = 256
	f := store.RunFilter{Kind: types.KindRescan, Limit: page}
	for {
		runs, err := s.cfg.Store.Runs(ctx, f)
		if err != nil {
			s.log.Warn("rescan: look for the runs of resumed entries", "rescan", r.ID, "err", err)
			return
		}
		for _, run := range runs {
			if run.Kind != types.KindRescan || run.Cause.Kind != types.CauseRescan {
				continue // a rescan run started by hand
			}
			of, err := strconv.ParseUint(strings.TrimPrefix(run.Cause.Detail, "rescan "), 10, 64)
			switch {
			case err != nil:
				continue
			case of < self:
				return // older than r's runs: the rest are older still
			case of > self:
				continue
			}
			if e := queued[run.Project]; e != nil { // the newest of its runs
				e.State, e.RunID = store.Running, run.ID
				delete(queued, run.Project)
				if len(queued) == 0 {
					return
				}
			}
		}
		if len(runs) < page {
			return
		}
		f.Before = runs[len(runs)-1].ID
	}
}

// cancel closes rescan id, its open entries cancelled.
func (s *Scanner) cancel(ctx context.Context, id string) error {
	_, err := s.cfg.Store.UpdateRescan(ctx, id, func(r *store.Rescan) error {
		for i := range r.Entries {
			if e := &r.Entries[i]; !e.State.Done() {
				e.State, e.Note = store.Cancelled, "cccp stopped during this rescan, and a newer one was under way"
			}
		}
		r.Finished = s.clock.Now().UTC()
		return nil
	})
	if err != nil {
		return fmt.Errorf("close interrupted rescan %s: %w", id, err)
	}
	return nil
}
