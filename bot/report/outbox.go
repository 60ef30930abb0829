// Package report is the bot's reporting: the outbox that sends forge
// statuses and pull-request comments (bot/report.Outbox), and the pieces
// comments are assembled from (render.go).
//
// An outbox report is stored with the change that caused it (the store's
// outbox, keyed by target so a newer report replaces an older one), sent
// with exponential backoff honouring the forge's Retry-After, given up on a
// permanent refusal with the reason kept, and remembered once sent (meta
// namespace "bot-sent": a hash per target), so sending the same report
// again is a no-op.
package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/internal/retry"
	"github.com/cccp-project/cccp/internal/store"
)

// Report kinds in the outbox.
const (
	KindStatus  = "status"
	KindComment = "comment"
)

// NsSent is the meta namespace of what was last sent per target.
const NsSent = "bot-sent"

// Payload is what one outbox report sends.
type Payload struct {
	Forge  string        `json:"forge"`
	Repo   string        `json:"repo"`
	Status *event.Status `json:"status,omitempty"`
	Number int           `json:"number,omitempty"`
	Marker string        `json:"marker,omitempty"`
	Body   string        `json:"body,omitempty"`
}

// Make encodes an outbox report; a newer one replaces an older one of the
// same key.
func Make(kind, key string, p Payload) (store.Report, error) {
	v, err := json.Marshal(p)
	if err != nil {
		return store.Report{}, fmt.Errorf("encode report %s: %w", key, err)
	}
	return store.Report{Key: key, Kind: kind, Payload: v}, nil
}

// StatusKey is the outbox key of a status: one per commit and check.
func StatusKey(forge, repo string, st event.Status) string {
	return KindStatus + ":" + forge + ":" + repo + ":" + st.SHA + ":" + st.Name
}

// Client is what the outbox asks of a forge.
type Client interface {
	SetStatus(ctx context.Context, repo string, st event.Status) error
	// UpsertComment edits the comment holding marker on pull request
	// number, or creates it.
	UpsertComment(ctx context.Context, repo string, number int, marker, body string) (int64, error)
}

// Store is the part of the store the outbox uses.
type Store interface {
	DueReports(ctx context.Context, now time.Time, limit int) ([]store.Report, error)
	RetryReport(ctx context.Context, key string, next time.Time, errMsg string) error
	FailReport(ctx context.Context, key string, updated time.Time, reason string) error
	DeleteReport(ctx context.Context, key string, updated time.Time) error
	PutMeta(ctx context.Context, ns, key string, val []byte) error
	GetMeta(ctx context.Context, ns, key string) ([]byte, error)
	PruneMeta(ctx context.Context, ns string, drop func(key string, val []byte) bool) (int, error)
}

// Config configures an Outbox. Store and Client are required.
type Config struct {
	Store Store
	// Client returns the client of a forge, nil for one not configured.
	Client func(forge string) Client
	// RetryBase and RetryMax bound the exponential backoff (defaults 5 s
	// and 30 min).
	RetryBase, RetryMax time.Duration
	// Poll is how often due reports are looked for when nothing woke the
	// outbox (default 5 s).
	Poll time.Duration
	// Mask masks secrets in an error before it is stored (default: none).
	Mask       func(string) string
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Outbox sends due reports. Run and SendDue must not run at once.
type Outbox struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}
	hold map[string]time.Time // forge -> no reports before; Run's goroutine only

	reports *prometheus.CounterVec
	due     prometheus.Gauge
}

// New returns an Outbox.
func New(cfg Config) *Outbox {
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.Mask == nil {
		cfg.Mask = func(s string) string { return s }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	o := &Outbox{
		cfg:  cfg,
		log:  cfg.Logger,
		wake: make(chan struct{}, 1),
		hold: map[string]time.Time{},
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cccp_reports_total",
			Help: "Forge reports by kind (status, comment) and result (sent, failed, unchanged).",
		}, []string{"kind", "result"}),
		due: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cccp_report_outbox_due",
			Help: "Reports due in the outbox, as last seen by the outbox worker.",
		}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(o.reports, o.due)
	}
	return o
}

// Wake tells the outbox that a report was put. It never blocks.
func (o *Outbox) Wake() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Run sends due reports until ctx ends.
func (o *Outbox) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-t.C:
		}
		for o.SendDue(ctx) == batch && ctx.Err() == nil {
			// A full batch: more may be due.
		}
		t.Reset(o.cfg.Poll)
	}
}

const batch = 100

// SendDue tries the due reports once, at most a batch of them; it returns
// how many were sent.
func (o *Outbox) SendDue(ctx context.Context) int {
	due, err := o.cfg.Store.DueReports(ctx, o.cfg.Now(), batch)
	if err != nil {
		o.log.Error("due reports", "err", err)
	}
	o.due.Set(float64(len(due)))
	sent := 0
	for _, r := range due {
		if ctx.Err() != nil {
			return sent
		}
		if o.send(ctx, r) {
			sent++
		}
	}
	return sent
}

func hash(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// send sends one report. What was last sent per target is remembered, so
// a report equal to it is dropped without calling the forge.
func (o *Outbox) send(ctx context.Context, r store.Report) bool {
	st := o.cfg.Store
	var p Payload
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		o.log.Error("undecodable report dropped", "key", r.Key, "err", err)
		st.DeleteReport(ctx, r.Key, r.Updated)
		return false
	}
	h := hash(r.Payload)
	if last, err := st.GetMeta(ctx, NsSent, r.Key); err == nil && sentHash(last) == h {
		o.reports.WithLabelValues(r.Kind, "unchanged").Inc()
		st.DeleteReport(ctx, r.Key, r.Updated)
		return false
	}
	if until, ok := o.hold[p.Forge]; ok && o.cfg.Now().Before(until) {
		return false // the forge asked everyone to wait
	}
	c := o.cfg.Client(p.Forge)
	if c == nil {
		o.log.Error("report for an unconfigured forge dropped", "key", r.Key)
		st.DeleteReport(ctx, r.Key, r.Updated)
		return false
	}
	var err error
	switch r.Kind {
	case KindStatus:
		if p.Status == nil {
			err = errors.New("status report without a status")
			break
		}
		err = c.SetStatus(ctx, p.Repo, *p.Status)
	case KindComment:
		_, err = c.UpsertComment(ctx, p.Repo, p.Number, p.Marker, p.Body)
	default:
		err = fmt.Errorf("unknown report kind %q", r.Kind)
	}
	if err != nil && event.IsPermanent(err) {
		o.reports.WithLabelValues(r.Kind, "given_up").Inc()
		o.log.Error("report refused; giving up", "key", r.Key, "err", err)
		if ferr := st.FailReport(ctx, r.Key, r.Updated, o.cfg.Mask(err.Error())); ferr != nil {
			o.log.Error("give up report", "key", r.Key, "err", ferr)
		}
		return false
	}
	if err != nil {
		o.reports.WithLabelValues(r.Kind, "failed").Inc()
		wait := retry.Backoff(o.cfg.RetryBase, o.cfg.RetryMax, r.Attempts, err)
		var re *event.RetryableError
		if errors.As(err, &re) && re.RetryAfter() > 0 {
			o.hold[p.Forge] = o.cfg.Now().Add(re.RetryAfter())
		}
		o.log.Warn("report failed; will retry", "key", r.Key, "attempt", r.Attempts+1, "in", wait, "err", err)
		msg := o.cfg.Mask(err.Error())
		if rerr := st.RetryReport(ctx, r.Key, o.cfg.Now().Add(wait), msg); rerr != nil && !errors.Is(rerr, store.ErrNotFound) {
			o.log.Error("reschedule report", "key", r.Key, "err", rerr)
		}
		return false
	}
	o.reports.WithLabelValues(r.Kind, "sent").Inc()
	if err := st.PutMeta(ctx, NsSent, r.Key, sentValue(h, o.cfg.Now())); err != nil {
		o.log.Error("remember sent report", "key", r.Key, "err", err)
	}
	if err := st.DeleteReport(ctx, r.Key, r.Updated); err != nil {
		o.log.Error("delete sent report", "key", r.Key, "err", err)
	}
	return true
}

// Prune forgets what was sent before cut; it returns how many targets.
func (o *Outbox) Prune(ctx context.Context, cut time.Time) (int, error) {
	return o.cfg.Store.PruneMeta(ctx, NsSent, func(_ string, v []byte) bool { return sentAt(v).Before(cut) })
}

// sentValue is what NsSent keeps per target: the hash of the last report
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
