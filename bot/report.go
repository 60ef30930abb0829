package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// reporter turns run changes into outbox reports. Observe only records
// the change; a goroutine renders and stores, so the pipeline never waits
// for the store or a forge.
type reporter struct {
	b    *Bot
	mu   sync.Mutex
	runs map[string]*store.Run // run ID -> newest seen state
	prs  map[string]bool       // pull requests whose comment to refresh
	wake chan struct{}
}

// Observe is the pipeline's Observer: it is told about every run change.
// It never blocks on I/O.
func (b *Bot) Observe(r *store.Run) {
	if b == nil || r == nil {
		return
	}
	c := *r
	c.Stages = append([]store.Stage(nil), r.Stages...)
	rp := b.rep
	rp.mu.Lock()
	if rp.runs == nil {
		rp.runs = map[string]*store.Run{}
	}
	rp.runs[c.ID] = &c
	rp.mu.Unlock()
	notify(rp.wake)
}

func (rp *reporter) refreshPR(key string) {
	rp.mu.Lock()
	if rp.prs == nil {
		rp.prs = map[string]bool{}
	}
	rp.prs[key] = true
	rp.mu.Unlock()
	notify(rp.wake)
}

func (rp *reporter) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-rp.wake:
		}
		rp.flush(ctx)
	}
}

// flush reports every recorded change.
func (rp *reporter) flush(ctx context.Context) {
	rp.mu.Lock()
	runs, prs := rp.runs, rp.prs
	rp.runs, rp.prs = nil, nil
	rp.mu.Unlock()
	if prs == nil {
		prs = map[string]bool{}
	}
	b := rp.b
	for _, r := range runs {
		c := b.client(r.Cause.Forge)
		if c == nil || r.Cause.Repo == "" {
			continue // not started by a forge event
		}
		if r.Cause.PR != 0 {
			prs[prKey(r.Cause.Forge, r.Cause.Repo, r.Cause.PR)] = true
		}
		if r.Kind == types.KindTrial {
			continue // reported in the index check
		}
		st := b.runStatus(r, c.Limit())
		if err := b.putReport(ctx, reportStatus, statusKey(r.Cause.Forge, r.Cause.Repo, st), payload{
			Forge: r.Cause.Forge, Repo: r.Cause.Repo, Status: &st}); err != nil {
			b.log.Error("put status report", "run", r.ID, "err", err)
		}
	}
	for key := range prs {
		if err := b.reportPR(ctx, key); err != nil {
			b.log.Error("put comment report", "pr", key, "err", err)
		}
	}
}

func statusKey(forge, repo string, st event.Status) string {
	return reportStatus + ":" + forge + ":" + repo + ":" + st.SHA + ":" + st.Name
}

// reportPR renders a pull request's comment (and an index PR's check) from
// its record and runs, and puts them in the outbox.
func (b *Bot) reportPR(ctx context.Context, key string) error {
	rec, err := b.loadPR(ctx, key)
	if err != nil || rec == nil {
		return err
	}
	c := b.client(rec.Forge)
	if c == nil {
		return nil
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
	if err := b.putReport(ctx, reportComment, reportComment+":"+key, payload{
		Forge: rec.Forge, Repo: rec.Repo, Number: rec.Number, Marker: prMarker, Body: body}); err != nil {
		return err
	}
	if rec.Index {
		st := b.indexStatus(rec, runs)
		return b.putReport(ctx, reportStatus, statusKey(rec.Forge, rec.Repo, st), payload{Forge: rec.Forge, Repo: rec.Repo, Status: &st})
	}
	return nil
}

// putReport stores a report in the outbox; a newer one replaces an older
// one of the same target.
func (b *Bot) putReport(ctx context.Context, kind, key string, p payload) error {
	v, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode report %s: %w", key, err)
	}
	if err := b.cfg.Store.PutReport(ctx, store.Report{Key: key, Kind: kind, Payload: v}); err != nil {
		return err
	}
	notify(b.outWake)
	return nil
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
	if last, err := b.cfg.Store.GetMeta(ctx, nsSent, r.Key); err == nil && string(last) == h {
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
	if err := b.cfg.Store.PutMeta(ctx, nsSent, r.Key, []byte(h)); err != nil {
		b.log.Error("remember sent report", "key", r.Key, "err", err)
	}
	if err := b.cfg.Store.DeleteReport(ctx, r.Key, r.Updated); err != nil {
		b.log.Error("delete sent report", "key", r.Key, "err", err)
	}
	return true
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
