package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Report kinds in the outbox.
const (
	reportStatus  = "status"
	reportComment = "comment"
)

// payload is what one outbox report sends.
type payload struct {
	Forge  string        `json:"forge"`
	Repo   string        `json:"repo"`
	Status *event.Status `json:"status,omitempty"`
	Number int           `json:"number,omitempty"`
	Marker string        `json:"marker,omitempty"`
	Body   string        `json:"body,omitempty"`
}

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
				rep, err := makeReport(reportStatus, statusKey(r.Cause.Forge, r.Cause.Repo, st), payload{
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
		notify(b.outWake)
		if len(changes) < changesPage {
			return
		}
	}
}

func statusKey(forge, repo string, st event.Status) string {
	return reportStatus + ":" + forge + ":" + repo + ":" + st.SHA + ":" + st.Name
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
	notify(b.outWake)
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
	rep, err := makeReport(reportComment, reportComment+":"+key, payload{
		Forge: rec.Forge, Repo: rec.Repo, Number: rec.Number, Marker: prMarker, Body: body})
	if err != nil {
		return nil, err
	}
	out := []store.Report{rep}
	waiting, err := waitingReports(rec)
	if err != nil {
		return nil, err
	}
	out = append(out, waiting...)
	if rec.Index {
		st := b.indexStatus(rec, runs)
		rep, err := makeReport(reportStatus, statusKey(rec.Forge, rec.Repo, st), payload{Forge: rec.Forge, Repo: rec.Repo, Status: &st})
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

// makeReport encodes an outbox report; a newer one replaces an older one
// of the same target.
func makeReport(kind, key string, p payload) (store.Report, error) {
	v, err := json.Marshal(p)
	if err != nil {
		return store.Report{}, fmt.Errorf("encode report %s: %w", key, err)
	}
	return store.Report{Key: key, Kind: kind, Payload: v}, nil
}

// ---- outbox

// outbox sends due reports until ctx ends.
func (b *Bot) outbox(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.outWake:
		case <-t.C:
		}
		for b.sendDue(ctx) == outboxBatch && ctx.Err() == nil {
			// A full batch: more may be due.
		}
		t.Reset(b.cfg.OutboxPoll)
	}
}

const outboxBatch = 100

// sendDue tries the due reports once, at most outboxBatch of them; it
// returns how many were sent.
func (b *Bot) sendDue(ctx context.Context) int {
	due, err := b.cfg.Store.DueReports(ctx, b.cfg.Now(), outboxBatch)
	if err != nil {
		b.log.Error("due reports", "err", err)
	}
	b.metrics.outbox.Set(float64(len(due)))
	sent := 0
	for _, r := range due {
		if ctx.Err() != nil {
			return sent
		}
		if b.send(ctx, r) {
			sent++
		}
	}
	return sent
}

func hash(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// send sends one report. What was last sent per target is remembered, so
// a report equal to it is dropped without calling the forge.
func (b *Bot) send(ctx context.Context, r store.Report) bool {
	var p payload
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		b.log.Error("undecodable report dropped", "key", r.Key, "err", err)
		b.cfg.Store.DeleteReport(ctx, r.Key, r.Updated)
		return false
	}
	h := hash(r.Payload)
	if last, err := b.cfg.Store.GetMeta(ctx, nsSent, r.Key); err == nil && sentHash(last) == h {
		b.metrics.reports.WithLabelValues(r.Kind, "unchanged").Inc()
		b.cfg.Store.DeleteReport(ctx, r.Key, r.Updated)
		return false
	}
	if until, ok := b.hold[p.Forge]; ok && b.cfg.Now().Before(until) {
		return false // the forge asked everyone to wait
	}
	c := b.client(p.Forge)
	if c == nil {
		b.log.Error("report for an unconfigured forge dropped", "key", r.Key)
		b.cfg.Store.DeleteReport(ctx, r.Key, r.Updated)
		return false
	}
	var err error
	switch r.Kind {
	case reportStatus:
		if p.Status == nil {
			err = errors.New("status report without a status")
			break
		}
		err = c.SetStatus(ctx, p.Repo, *p.Status)
	case reportComment:
		_, err = c.UpsertComment(ctx, p.Repo, p.Number, p.Marker, p.Body)
	default:
		err = fmt.Errorf("unknown report kind %q", r.Kind)
	}
	if err != nil && event.IsPermanent(err) {
		b.metrics.reports.WithLabelValues(r.Kind, "given_up").Inc()
		b.log.Error("report refused; giving up", "key", r.Key, "err", err)
		if ferr := b.cfg.Store.FailReport(ctx, r.Key, r.Updated, b.cfg.Masker.String(err.Error())); ferr != nil {
			b.log.Error("give up report", "key", r.Key, "err", ferr)
		}
		return false
	}
	if err != nil {
		b.metrics.reports.WithLabelValues(r.Kind, "failed").Inc()
		wait := b.backoff(r.Attempts, err)
		var re *event.RetryableError
		if errors.As(err, &re) && re.RetryAfter() > 0 {
			b.hold[p.Forge] = b.cfg.Now().Add(re.RetryAfter())
		}
		b.log.Warn("report failed; will retry", "key", r.Key, "attempt", r.Attempts+1, "in", wait, "err", err)
		msg := b.cfg.Masker.String(err.Error())
		if rerr := b.cfg.Store.RetryReport(ctx, r.Key, b.cfg.Now().Add(wait), msg); rerr != nil && !errors.Is(rerr, store.ErrNotFound) {
			b.log.Error("reschedule report", "key", r.Key, "err", rerr)
		}
		return false
	}
	b.metrics.reports.WithLabelValues(r.Kind, "sent").Inc()
	if err := b.cfg.Store.PutMeta(ctx, nsSent, r.Key, sentValue(h, b.cfg.Now())); err != nil {
		b.log.Error("remember sent report", "key", r.Key, "err", err)
	}
	if err := b.cfg.Store.DeleteReport(ctx, r.Key, r.Updated); err != nil {
		b.log.Error("delete sent report", "key", r.Key, "err", err)
	}
	return true
}

// sentValue is what nsSent keeps per target: the hash of the last report
// sent and when, so that old entries can be pruned.
func sentValue(hash string, at time.Time) []byte {
	return []byte(hash + " " + strconv.FormatInt(at.Unix(), 10))
}

func sentHash(v []byte) string { h, _, _ := strings.Cut(string(v), " "); return h }

func sentAt(v []byte) time.Time {
	_, at, _ := strings.Cut(string(v), " ")
	n, _ := strconv.ParseInt(at, 10, 64)
	return time.Unix(n, 0) // 0 (written before times were kept): the epoch, pruned
}

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
	sent, err := b.cfg.Store.PruneMeta(ctx, nsSent, func(_ string, v []byte) bool { return sentAt(v).Before(cut) })
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

// backoff is RetryBase * 2^attempts, capped at RetryMax, and never shorter
// than what the forge asked for.
func (b *Bot) backoff(attempts int, err error) time.Duration {
	d := b.cfg.RetryBase
	for i := 0; i < attempts && d < b.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, b.cfg.RetryMax)
	var re *event.RetryableError
	if errors.As(err, &re) && re.RetryAfter() > d {
		d = re.RetryAfter()
	}
	return d
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
