package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
)

// Deliveries reach the workers two ways: the handler hands each stored
// delivery over in memory (the common case), and the store's due
// deliveries are read at start, whenever the in-memory queue overflowed and
// when a delivery put off after a failed routing comes due. The store is
// the truth: a delivery is pending until it is finished or given up, so a
// crash, an overflow or a forge outage delays it but never loses it.

const queueSize = 1024

// pendingPage is how many stored deliveries a rescan reads (and holds) at
// once.
const pendingPage = 256

// job is one delivery for a worker; buf, when set, is the pooled buffer
// holding d.Body, returned to the pool once the job is done.
type job struct {
	d   store.Delivery
	buf *[]byte
}

// queue hands a stored delivery to the dispatcher without waiting. It
// reports whether the dispatcher took it (and with it the body buffer).
func (b *Bot) queue(j job) bool {
	select {
	case b.work <- j:
		return true
	default:
		b.overflow.Store(true) // rescan the store
		notify(b.wake)
		return false
	}
}

// dispatch runs the workers until ctx ends.
func (b *Bot) dispatch(ctx context.Context) error {
	var inflight sync.Map // forge/id -> struct{}: queued or being processed
	jobs := make(chan job)
	fin := newFinisher(b, &inflight)
	var wg sync.WaitGroup
	for range b.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				k := j.d.Forge + "\x00" + j.d.ID
				if outcome := b.process(ctx, j.d); outcome != "" {
					fin.add(j.d, outcome) // inflight until its finish is committed
				} else {
					inflight.Delete(k)
				}
				b.putBody(j.buf, j.d.Body)
			}
		}()
	}
	defer func() { close(jobs); wg.Wait(); fin.close() }()

	hand := func(j job) bool {
		k := j.d.Forge + "\x00" + j.d.ID
		if _, busy := inflight.LoadOrStore(k, struct{}{}); busy {
			b.putBody(j.buf, j.d.Body)
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
		b.overflow.Store(false)
		b.nextDue.Store(0) // what this scan leaves out sets it again
		var after uint64
		for n := 0; ; {
			ds, next, err := b.cfg.Store.DueDeliveries(ctx, b.cfg.Now(), after, pendingPage)
			if err != nil {
				// Undecodable records are named in err; the others are in ds.
				b.log.Error("pending deliveries", "err", err)
			}
			b.dueAt(next)
			n += len(ds)
			b.metrics.queue.Set(float64(n))
			for _, d := range ds {
				if !hand(job{d: d}) {
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
	close(b.ready)
	// A rescan decodes every due delivery, so after an overflow the store
	// is read again only once the in-memory queue is drained, and not more
	// often than every few seconds; a delivery waiting for its next attempt
	// is read when that time comes; without either, once a minute as a
	// safety net.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	maybeRescan := func() bool {
		since := time.Since(last)
		nd := b.nextDue.Load()
		if since >= time.Minute || (b.overflow.Load() && len(b.work) == 0 && since >= 5*time.Second) ||
			(nd != 0 && !b.cfg.Now().Before(time.Unix(0, nd))) {
			last = time.Now()
			return rescan()
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case j := <-b.work:
			b.metrics.queue.Set(float64(len(b.work)))
			if !hand(j) {
				return ctx.Err()
			}
		case <-b.wake:
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
func (b *Bot) dueAt(t time.Time) {
	if t.IsZero() {
		return
	}
	n := t.UnixNano()
	for {
		cur := b.nextDue.Load()
		if cur != 0 && cur <= n {
			return
		}
		if b.nextDue.CompareAndSwap(cur, n) {
			break
		}
	}
	if d := t.Sub(b.cfg.Now()); d < time.Second { // else the ticker's
		time.AfterFunc(max(d, 0), func() { notify(b.wake) })
	}
}

// errBadEvent marks an event that routing can never act on.
var errBadEvent = errors.New("bad event")

// permanent reports whether a routing error will not go away by trying
// again: the forge refused the request (a 4xx), the event cannot be acted
// on, or it names a project the index lacks.
func permanent(err error) bool {
	return event.IsPermanent(err) || errors.Is(err, errBadEvent) || errors.Is(err, pipeline.ErrUnknownProject)
}

// needsForge reports whether routing ev calls the forge's API (a push to
// an application repository does not).
func (b *Bot) needsForge(ev *event.Event) bool {
	return ev.Kind != event.KindPush || b.isIndexRepo(ev)
}

// process parses and routes one delivery. It returns the outcome to finish
// it with ("routed", "ignored"), or "" when the delivery was dealt with
// here: put off to a stored next attempt (a transient error: the forge is
// down or asked to wait), given up (a permanent error, the reason stored
// for a replay), or left pending because ctx ended. No worker waits for a
// forge: a delivery due later is picked up again by the dispatcher.
func (b *Bot) process(ctx context.Context, d store.Delivery) string {
	log := b.log.With("forge", d.Forge, "delivery", d.ID, "event", d.Event)
	f, ok := b.cfg.Forges[d.Forge]
	if !ok {
		b.giveUp(ctx, log, d, fmt.Errorf("forge %s is not configured", d.Forge))
		return ""
	}
	hdr := make(http.Header, len(d.Headers))
	for k, v := range d.Headers {
		hdr[http.CanonicalHeaderKey(k)] = []string{v}
	}
	ev, err := f.Webhook.Parse(hdr, d.Body)
	switch {
	case errors.Is(err, event.ErrIgnored):
		log.Debug("delivery ignored", "reason", err)
		return "ignored"
	case err != nil:
		b.giveUp(ctx, log, d, fmt.Errorf("parse: %w", err))
		return ""
	}
	ev.Forge, ev.DeliveryID = d.Forge, d.ID
	if until := b.routeHeld(d.Forge); !until.IsZero() && b.needsForge(ev) {
		b.putOff(ctx, log, d, until, fmt.Errorf("%s asked to wait until %s", d.Forge, until.UTC().Format(time.RFC3339)))
		return ""
	}
	err = b.route(ctx, ev)
	switch {
	case err == nil:
		return "routed"
	case ctx.Err() != nil:
		return "" // stays pending; the next start routes it again
	case permanent(err):
		b.giveUp(ctx, log, d, err)
		return ""
	}
	wait := b.backoff(d.Attempts, err)
	var re *event.RetryableError
	if errors.As(err, &re) && re.RetryAfter() > 0 {
		b.holdRoutes(d.Forge, b.cfg.Now().Add(re.RetryAfter()))
	}
	b.putOff(ctx, log, d, b.cfg.Now().Add(wait), err)
	return ""
}

// putOff keeps d pending, due again at next.
func (b *Bot) putOff(ctx context.Context, log *slog.Logger, d store.Delivery, next time.Time, cause error) {
	b.metrics.routed.WithLabelValues(d.Forge, "retry").Inc()
	log.Warn("route delivery; will retry", "attempt", d.Attempts+1, "at", next, "err", cause)
	if err := b.cfg.Store.RetryDelivery(ctx, d.Forge, d.ID, next, b.cfg.Masker.String(cause.Error())); err != nil {
		log.Error("store next attempt", "err", err)
	}
	b.dueAt(next)
}

// giveUp stops trying d: the reason is stored, and the delivery can be
// replayed (ReplayDelivery, or the forge's redelivery).
func (b *Bot) giveUp(ctx context.Context, log *slog.Logger, d store.Delivery, cause error) {
	b.metrics.routed.WithLabelValues(d.Forge, "failed").Inc()
	log.Error("route delivery; giving up", "err", cause)
	if err := b.cfg.Store.FailDelivery(ctx, d.Forge, d.ID, b.cfg.Masker.String(cause.Error())); err != nil {
		log.Error("store give-up", "err", err)
	}
}

// routeHeld returns until when forge asked not to be called, or zero.
func (b *Bot) routeHeld(forge string) time.Time {
	b.holdMu.Lock()
	defer b.holdMu.Unlock()
	if until, ok := b.routeHold[forge]; ok && b.cfg.Now().Before(until) {
		return until
	}
	return time.Time{}
}

func (b *Bot) holdRoutes(forge string, until time.Time) {
	b.holdMu.Lock()
	defer b.holdMu.Unlock()
	if until.After(b.routeHold[forge]) {
		b.routeHold[forge] = until
	}
}

// ReplayDelivery makes a delivery cccp gave up pending again and wakes the
// dispatcher (the web UI's, the API's and the command line's replay).
func (b *Bot) ReplayDelivery(ctx context.Context, forge, id string) error {
	if err := b.cfg.Store.ReplayDelivery(ctx, forge, id); err != nil {
		return err
	}
	b.dueAt(time.Unix(0, 1))
	notify(b.wake)
	return nil
}

// finisher finishes processed deliveries in batches: a worker hands its
// delivery over and takes the next one instead of waiting for a commit,
// and many finishes share one transaction. A delivery stays in flight (not
// handed out again) until its finish is committed; one whose finish is
// lost to a crash is routed again and finds the runs it created.
type finisher struct {
	b        *Bot
	inflight *sync.Map
	ch       chan finished
	done     chan struct{}
}

type finished struct {
	ref     store.DeliveryRef
	outcome string
}

func newFinisher(b *Bot, inflight *sync.Map) *finisher {
	f := &finisher{b: b, inflight: inflight, ch: make(chan finished, 4096), done: make(chan struct{})}
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
		// Not cancelled with the dispatcher: the routing is done, and a
		// finish that lands saves routing it again.
		errs := f.b.cfg.Store.FinishDeliveries(context.Background(), refs)
		for i, x := range batch {
			if err := errs[i]; err != nil && !errors.Is(err, store.ErrNotFound) {
				f.b.log.Error("finish delivery", "forge", x.ref.Forge, "delivery", x.ref.ID, "err", err)
			}
			f.b.metrics.routed.WithLabelValues(x.ref.Forge, x.outcome).Inc()
			f.inflight.Delete(x.ref.Forge + "\x00" + x.ref.ID)
		}
	}
}
