package bot

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// reporter turns run changes into outbox reports. The store records every
// change of a run caused by a forge event in the run's own transaction
// (store.RunChanges); the reporter renders them and puts the reports in the
// outbox together with the change's acknowledgement, in one transaction.
// So a crash loses no report, and the pipeline never waits for rendering
// or a forge: Observe only wakes the reporter.
type reporter struct {
	b    *Bot
	wake chan struct{}
}

// Observe is the pipeline's Observer: it is told about every run change,
// already recorded by the store. It never blocks.
func (b *Bot) Observe(r *store.Run) {
	if b == nil || r == nil {
		return
	}
	notify(b.rep.wake)
}

func (rp *reporter) loop(ctx context.Context) {
	t := time.NewTicker(rp.b.cfg.OutboxPoll)
	defer t.Stop()
	for {
		rp.flush(ctx) // at start: what a crash left behind
		select {
		case <-ctx.Done():
			return
		case <-rp.wake:
		case <-t.C:
		}
	}
}

// changesPage is how many run changes one flush transaction reports.
const changesPage = 256

// flush reports every recorded run change. On an error the changes stay
// recorded and are reported at the next wake.
func (rp *reporter) flush(ctx context.Context) {
	b := rp.b
	for ctx.Err() == nil {
		changes, err := b.cfg.Store.RunChanges(ctx, changesPage)
		if err != nil {
			b.log.Error("run changes", "err", err) // undecodable ones are named; the others are in changes
		}
		if len(changes) == 0 {
			return
		}
		var reports []store.Report
		prs := map[string]bool{}
		for _, ch := range changes {
			r := ch.Run
			c := b.client(r.Cause.Forge)
			if c == nil || r.Cause.Repo == "" {
				continue // not started by a configured forge
			}
			if r.Cause.PR != 0 {
				prs[prKey(r.Cause.Forge, r.Cause.Repo, r.Cause.PR)] = true
			}
			if r.Kind == types.KindTrial {
				continue // reported in the index check
			}
			for _, st := range append([]event.Status{b.runStatus(r, c.Limit())}, b.foldedStatuses(r)...) {
				rep, err := report.Make(report.KindStatus, report.StatusKey(r.Cause.Forge, r.Cause.Repo, st), report.Payload{
					Forge: r.Cause.Forge, Repo: r.Cause.Repo, Status: &st})
				if err != nil {
					b.log.Error("status report", "run", r.ID, "err", err)
					continue
				}
				reports = append(reports, rep)
			}
		}
		for key := range prs {
			reps, err := b.prReports(ctx, key)
			if err != nil {
				b.log.Error("render comment report; will try again", "pr", key, "err", err)
				return
			}
			reports = append(reports, reps...)
		}
		if err := b.cfg.Store.PutReports(ctx, reports, changes); err != nil {
			b.log.Error("put reports; will try again", "err", err)
			return
		}
		b.outbox.Wake()
		if len(changes) < changesPage {
			return
		}
	}
}

// reportPR renders a pull request's comment (and an index PR's check) from
// its record and runs, and puts them in the outbox.
func (b *Bot) reportPR(ctx context.Context, key string) error {
	reps, err := b.prReports(ctx, key)
	if err != nil || len(reps) == 0 {
		return err
	}
	if err := b.cfg.Store.PutReports(ctx, reps, nil); err != nil {
		return err
	}
	b.outbox.Wake()
	return nil
}

// prReports renders a pull request's comment (and an index PR's check)
// from its record and runs.
func (b *Bot) prReports(ctx context.Context, key string) ([]store.Report, error) {
	rec, err := b.loadPR(ctx, key)
	if err != nil || rec == nil {
		return nil, err
	}
	c := b.client(rec.Forge)
	if c == nil {
		return nil, nil
	}
	var runs []*store.Run
	for _, id := range rec.Runs {
		r, err := b.cfg.Store.Run(ctx, id)
		if err != nil {
			b.log.Warn("load run for comment", "run", id, "err", err)
			continue
		}
		runs = append(runs, r)
	}
	body := b.renderComment(rec, runs, c.Limit())
	rep, err := report.Make(report.KindComment, report.KindComment+":"+key, report.Payload{
		Forge: rec.Forge, Repo: rec.Repo, Number: rec.Number, Marker: prMarker, Body: body})
	if err != nil {
		return nil, err
	}
	out := []store.Report{rep}
	waiting, err := b.waitingReports(rec)
	if err != nil {
		return nil, err
	}
	out = append(out, waiting...)
	if rec.Index {
		st := b.indexStatus(rec, runs)
		rep, err := report.Make(report.KindStatus, report.StatusKey(rec.Forge, rec.Repo, st), report.Payload{Forge: rec.Forge, Repo: rec.Repo, Status: &st})
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

// sendDue sends the due reports once (for tests).
func (b *Bot) sendDue(ctx context.Context) int { return b.outbox.SendDue(ctx) }

// pruneLoop forgets, every hour, what is older than Keep: delivery IDs and
// given-up deliveries, the hashes of reports sent, and the records and
// approvals of pull requests idle since.
func (b *Bot) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		b.prune(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Bot) prune(ctx context.Context) {
	cut := b.cfg.Now().Add(-b.cfg.Keep)
	n, err := b.cfg.Store.PruneDeliveries(ctx, cut)
	if err != nil {
		b.log.Error("prune deliveries", "err", err)
	}
	sent, err := b.outbox.Prune(ctx, cut)
	if err != nil {
		b.log.Error("prune sent reports", "err", err)
	}
	var idle []string
	prs, err := b.cfg.Store.PruneMeta(ctx, nsPR, func(key string, v []byte) bool {
		var rec prRecord
		if json.Unmarshal(v, &rec) != nil || rec.Updated.Before(cut) {
			idle = append(idle, key)
			return true
		}
		return false
	})
	if err != nil {
		b.log.Error("prune pull requests", "err", err)
	}
	for _, key := range idle {
		if err := b.cfg.Store.DeleteMeta(ctx, nsOkToTest, key); err != nil {
			b.log.Error("prune approval", "pr", key, "err", err)
		}
	}
	if n+sent+prs > 0 {
		b.log.Info("pruned", "deliveries", n, "sent_reports", sent, "pull_requests", prs)
	}
}

// ---- keyed mutex

type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	n int
}

func newKeyedMutex() *keyedMutex { return &keyedMutex{locks: map[string]*keyLock{}} }

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.n++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.n--; l.n == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
