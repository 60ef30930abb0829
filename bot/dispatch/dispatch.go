// Package dispatch works stored webhook deliveries: it hands each to a
// worker, finishes processed ones in batches, and keeps a failed one
// pending with a stored next-attempt time, or gives up on it on a permanent
// error with the reason stored for a replay. No worker ever sleeps waiting
// for a forge: a delivery due later is read from the store when it is due.
//
// Deliveries reach the workers two ways: the intake hands each stored
// delivery over in memory (Queue, the common case), and the store's due
// deliveries are read at start, whenever the in-memory queue overflowed and
// when a put-off delivery comes due. The store is the truth: a delivery is
// pending until it is finished or given up, so a crash, an overflow or a
// forge outage delays it but never loses it.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/internal/retry"
	"github.com/cccp-project/cccp/internal/store"
)

// Store is the part of the store the dispatcher uses: the pending
// deliveries and their outcomes.
type Store interface {
	DueDeliveries(ctx context.Context, now time.Time, after uint64, limit int) ([]store.Delivery, time.Time, error)
	FinishDeliveries(ctx context.Context, refs []store.DeliveryRef) []error
	RetryDelivery(ctx context.Context, forge, id string, next time.Time, errMsg string) error
	FailDelivery(ctx context.Context, forge, id, reason string) error
	ReplayDelivery(ctx context.Context, forge, id string) error
}

// Process acts on one delivery. With a nil error, outcome names how it
// ended ("routed", "ignored") and the delivery is finished. An error keeps
// the delivery pending for a next attempt, unless it is permanent
// (Permanent, or Config.Permanent says so): then the delivery is given up.
// A *WaitError puts the delivery off to its time without counting an
// attempt's backoff.
type Process func(ctx context.Context, d store.Delivery) (outcome string, err error)

// Config configures a Dispatcher. Store and Process are required.
type Config struct {
	Store   Store
	Process Process
	// Workers is the number of workers (default 8).
	Workers int
	// Permanent tells the errors that trying again will not cure, besides
	// those wrapped by Permanent and event.IsPermanent ones.
	Permanent func(error) bool
	// RetryBase and RetryMax bound the exponential backoff (defaults 5 s
	// and 30 min).
	RetryBase, RetryMax time.Duration
	// Mask masks secrets in an error before it is stored (default: none).
	Mask       func(string) string
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// queueSize is how many handed-over deliveries wait in memory.
const queueSize = 1024

// pendingPage is how many stored deliveries a rescan reads (and holds) at
// once.
const pendingPage = 256

// Dispatcher works deliveries; Run starts it.
type Dispatcher struct {
	cfg Config
	log *slog.Logger

	work     chan job      // stored deliveries handed over in memory
	overflow atomic.Bool   // work was full: rescan the store
	wake     chan struct{} // overflow happened, or something came due
	ready    chan struct{} // closed once the first scan is done
	nextDue  atomic.Int64  // unix-nano of the earliest put-off delivery; 0 = none known

	holdMu sync.Mutex
	hold   map[string]time.Time // forge -> no processing that calls it before

	queue  prometheus.Gauge
	routed *prometheus.CounterVec
}

// job is one delivery for a worker; release, when set, returns the buffer
// holding d.Body once the job is done.
type job struct {
	d       store.Delivery
	release func()
}

// New returns a Dispatcher.
func New(cfg Config) *Dispatcher {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Minute
	}
	if cfg.Permanent == nil {
		cfg.Permanent = func(error) bool { return false }
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
	d := &Dispatcher{
		cfg:   cfg,
		log:   cfg.Logger,
		work:  make(chan job, queueSize),
		wake:  make(chan struct{}, 1),
		ready: make(chan struct{}),
		hold:  map[string]time.Time{},
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cccp_delivery_queue_depth",
			Help: "Stored deliveries not yet processed, as last seen by the dispatcher.",
		}),
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cccp_deliveries_processed_total",
			Help: "Processed deliveries by forge and outcome (routed, ignored, failed).",
		}, []string{"forge", "outcome"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(d.queue, d.routed)
	}
	return d
}

// Ready is closed once Run has read the deliveries pending at its start.
func (d *Dispatcher) Ready() <-chan struct{} { return d.ready }

// Queue hands a stored delivery over without waiting (an intake.HandOff).
// It reports whether the dispatcher took it, and with it release.
func (d *Dispatcher) Queue(del store.Delivery, release func()) bool {
	select {
	case d.work <- job{d: del, release: release}:
		return true
	default:
		d.overflow.Store(true) // rescan the store
		notify(d.wake)
		return false
	}
}

// Replay makes a delivery that was given up pending again and wakes the
// dispatcher (the web UI's, the API's and the command line's replay).
func (d *Dispatcher) Replay(ctx context.Context, forge, id string) error {
	if err := d.cfg.Store.ReplayDelivery(ctx, forge, id); err != nil {
		return err
	}
	d.dueAt(time.Unix(0, 1))
	notify(d.wake)
	return nil
}

// Held returns until when forge asked not to be called, or zero. A Process
// that would call the forge returns a *WaitError until then.
func (d *Dispatcher) Held(forge string) time.Time {
	d.holdMu.Lock()
	defer d.holdMu.Unlock()
	if until, ok := d.hold[forge]; ok && d.cfg.Now().Before(until) {
		return until
	}
	return time.Time{}
}

func (d *Dispatcher) holdForge(forge string, until time.Time) {
	d.holdMu.Lock()
	defer d.holdMu.Unlock()
	if until.After(d.hold[forge]) {
		d.hold[forge] = until
	}
}

// permanentError marks an error trying again will not cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one trying again will not cure: the delivery is
// given up.
func Permanent(err error) error { return &permanentError{err} }

// WaitError puts a delivery off until a time without counting a failure's
// backoff (the forge asked to wait).
type WaitError struct {
	Until time.Time
	Err   error
}

func (e *WaitError) Error() string { return e.Err.Error() }
func (e *WaitError) Unwrap() error { return e.Err }

func (d *Dispatcher) permanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p) || event.IsPermanent(err) || d.cfg.Permanent(err)
}

// Run works deliveries until ctx ends: first every pending one, then
// those handed over and those coming due.
func (d *Dispatcher) Run(ctx context.Context) error {
	var inflight sync.Map // forge/id -> struct{}: queued or being processed
	jobs := make(chan job)
	fin := newFinisher(d, &inflight)
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				k := j.d.Forge + "\x00" + j.d.ID
				if outcome, next := d.process(ctx, j.d); outcome != "" {
					fin.add(j.d, outcome) // inflight until its finish is committed
				} else {
					// Out of flight first, then due: a rescan woken for
					// next hands it out. (Due first, a rescan could find it
					// due but in flight, pass it over and clear the wake-up:
					// the retry then waited for the minute's safety rescan.)
					inflight.Delete(k)
					d.dueAt(next)
				}
				if j.release != nil {
					j.release()
				}
			}
		}()
	}
	defer func() { close(jobs); wg.Wait(); fin.close() }()

	hand := func(j job) bool {
		k := j.d.Forge + "\x00" + j.d.ID
		if _, busy := inflight.LoadOrStore(k, struct{}{}); busy {
			if j.release != nil {
				j.release()
			}
			return true
		}
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			inflight.Delete(k)
			return false
		}
	}
	rescan := func() bool {
		d.overflow.Store(false)
		d.nextDue.Store(0) // what this scan leaves out sets it again
		var after uint64
		for n := 0; ; {
			ds, next, err := d.cfg.Store.DueDeliveries(ctx, d.cfg.Now(), after, pendingPage)
			if err != nil {
				// Undecodable records are named in err; the others are in ds.
				d.log.Error("pending deliveries", "err", err)
			}
			d.dueAt(next)
			n += len(ds)
			d.queue.Set(float64(n))
			for _, del := range ds {
				if !hand(job{d: del}) {
					return false
				}
			}
			if len(ds) < pendingPage {
				return true
			}
			after = ds[len(ds)-1].Seq
		}
	}
	if !rescan() {
		return ctx.Err()
	}
	last := time.Now()
	close(d.ready)
	// A rescan decodes every due delivery, so after an overflow the store
	// is read again only once the in-memory queue is drained, and not more
	// often than every few seconds; a delivery waiting for its next attempt
	// is read when that time comes; without either, once a minute as a
	// safety net.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	maybeRescan := func() bool {
		since := time.Since(last)
		nd := d.nextDue.Load()
		if since >= time.Minute || (d.overflow.Load() && len(d.work) == 0 && since >= 5*time.Second) ||
			(nd != 0 && !d.cfg.Now().Before(time.Unix(0, nd))) {
			last = time.Now()
			return rescan()
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case j := <-d.work:
			d.queue.Set(float64(len(d.work)))
			if !hand(j) {
				return ctx.Err()
			}
		case <-d.wake:
			if !maybeRescan() {
				return ctx.Err()
			}
		case <-tick.C:
			if !maybeRescan() {
				return ctx.Err()
			}
		}
	}
}

// dueAt lowers the time of the next rescan to t (zero: no change) and
// wakes the dispatcher then.
func (d *Dispatcher) dueAt(t time.Time) {
	if t.IsZero() {
		return
	}
	n := t.UnixNano()
	for {
		cur := d.nextDue.Load()
		if cur != 0 && cur <= n {
			return
		}
		if d.nextDue.CompareAndSwap(cur, n) {
			break
		}
	}
	if w := t.Sub(d.cfg.Now()); w < time.Second { // else the ticker's
		time.AfterFunc(max(w, 0), func() { notify(d.wake) })
	}
}

// process runs Process on one delivery. It returns the outcome to finish
// it with, or "" when the delivery was dealt with here: put off to a
// stored next attempt (a transient error: the forge is down or asked to
// wait; next is that time, for the caller to wake the dispatcher at once
// the delivery is out of flight), given up (a permanent error, the reason
// stored for a replay), or left pending because ctx ended.
func (d *Dispatcher) process(ctx context.Context, del store.Delivery) (outcome string, next time.Time) {
	outcome, err := d.cfg.Process(ctx, del)
	if err == nil {
		return outcome, time.Time{}
	}
	log := d.log.With("forge", del.Forge, "delivery", del.ID, "event", del.Event) // not on the common path: it allocates
	var wait *WaitError
	switch {
	case ctx.Err() != nil:
		return "", time.Time{} // stays pending; the next start processes it again
	case errors.As(err, &wait):
		d.putOff(ctx, log, del, wait.Until, err)
		return "", wait.Until
	case d.permanent(err):
		d.giveUp(ctx, log, del, err)
		return "", time.Time{}
	}
	next = d.cfg.Now().Add(retry.Backoff(d.cfg.RetryBase, d.cfg.RetryMax, del.Attempts, err))
	var re *event.RetryableError
	if errors.As(err, &re) && re.RetryAfter() > 0 {
		d.holdForge(del.Forge, d.cfg.Now().Add(re.RetryAfter()))
	}
	d.putOff(ctx, log, del, next, err)
	return "", next
}

// putOff keeps del pending, due again at next (the caller wakes the
// dispatcher then).
func (d *Dispatcher) putOff(ctx context.Context, log *slog.Logger, del store.Delivery, next time.Time, cause error) {
	d.routed.WithLabelValues(del.Forge, "retry").Inc()
	log.Warn("route delivery; will retry", "attempt", del.Attempts+1, "at", next, "err", cause)
	if err := d.cfg.Store.RetryDelivery(ctx, del.Forge, del.ID, next, d.cfg.Mask(cause.Error())); err != nil {
		log.Error("store next attempt", "err", err)
	}
}

// giveUp stops trying del: the reason is stored, and the delivery can be
// replayed (Replay, or the forge's redelivery).
func (d *Dispatcher) giveUp(ctx context.Context, log *slog.Logger, del store.Delivery, cause error) {
	d.routed.WithLabelValues(del.Forge, "failed").Inc()
	log.Error("route delivery; giving up", "err", cause)
	if err := d.cfg.Store.FailDelivery(ctx, del.Forge, del.ID, d.cfg.Mask(cause.Error())); err != nil {
		log.Error("store give-up", "err", err)
	}
}

// finisher finishes processed deliveries in batches: a worker hands its
// delivery over and takes the next one instead of waiting for a commit,
// and many finishes share one transaction. A delivery stays in flight (not
// handed out again) until its finish is committed; one whose finish is
// lost to a crash is processed again (Process must find what it did).
type finisher struct {
	d        *Dispatcher
	inflight *sync.Map
	ch       chan finished
	done     chan struct{}
}

type finished struct {
	ref     store.DeliveryRef
	outcome string
}

func newFinisher(d *Dispatcher, inflight *sync.Map) *finisher {
	f := &finisher{d: d, inflight: inflight, ch: make(chan finished, 4096), done: make(chan struct{})}
	go f.loop()
	return f
}

func (f *finisher) add(d store.Delivery, outcome string) {
	f.ch <- finished{store.DeliveryRef{Forge: d.Forge, ID: d.ID}, outcome}
}

func (f *finisher) close() { close(f.ch); <-f.done }

func (f *finisher) loop() {
	defer close(f.done)
	var batch []finished
	var refs []store.DeliveryRef
	for first := range f.ch {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < 4096 {
			select {
			case x, ok := <-f.ch:
				if !ok {
					break drain
				}
				batch = append(batch, x)
			default:
				break drain
			}
		}
		refs = refs[:0]
		for _, x := range batch {
			refs = append(refs, x.ref)
		}
		// Not cancelled with the dispatcher: the processing is done, and a
		// finish that lands saves doing it again.
		errs := f.d.cfg.Store.FinishDeliveries(context.Background(), refs)
		for i, x := range batch {
			if err := errs[i]; err != nil && !errors.Is(err, store.ErrNotFound) {
				f.d.log.Error("finish delivery", "forge", x.ref.Forge, "delivery", x.ref.ID, "err", err)
			}
			f.d.routed.WithLabelValues(x.ref.Forge, x.outcome).Inc()
			f.inflight.Delete(x.ref.Forge + "\x00" + x.ref.ID)
		}
	}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Errorf is fmt.Errorf marked Permanent.
func Errorf(format string, args ...any) error { return Permanent(fmt.Errorf(format, args...)) }
