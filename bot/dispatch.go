package bot

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/store"
)

// Deliveries reach the workers two ways: the handler hands each stored
// delivery over in memory (the common case), and the store's pending list
// is read at start and whenever the in-memory queue overflowed. The store
// is the truth: a delivery is pending until FinishDelivery, so a crash or
// an overflow delays it but never loses it.

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
	var wg sync.WaitGroup
	for range b.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				b.process(ctx, j.d)
				inflight.Delete(j.d.Forge + "\x00" + j.d.ID)
				b.putBody(j.buf, j.d.Body)
			}
		}()
	}
	defer func() { close(jobs); wg.Wait() }()

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
		var after uint64
		for n := 0; ; {
			ds, err := b.cfg.Store.PendingDeliveries(ctx, after, pendingPage)
			if err != nil {
				// Undecodable records are named in err; the others are in ds.
				b.log.Error("pending deliveries", "err", err)
			}
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
	// A rescan decodes every pending delivery, so after an
	// overflow the store is read again only once the in-memory queue is
	// drained, and not more often than every few seconds; without an
	// overflow, once a minute as a safety net.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	maybeRescan := func() bool {
		since := time.Since(last)
		if since >= time.Minute || (b.overflow.Load() && len(b.work) == 0 && since >= 5*time.Second) {
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

// process parses and routes one delivery, then finishes it. Routing errors
// are retried a few times (a forge API may be down for a moment); a
// delivery that cannot be parsed is finished with an error logged, since it
// will never parse. When ctx ends the delivery stays pending.
func (b *Bot) process(ctx context.Context, d store.Delivery) {
	log := b.log.With("forge", d.Forge, "delivery", d.ID, "event", d.Event)
	f, ok := b.cfg.Forges[d.Forge]
	if !ok {
		log.Error("delivery of an unconfigured forge; dropping")
		b.finish(ctx, d, "failed")
		return
	}
	hdr := make(http.Header, len(d.Headers))
	for k, v := range d.Headers {
		hdr.Set(k, v)
	}
	ev, err := f.Webhook.Parse(hdr, d.Body)
	switch {
	case errors.Is(err, event.ErrIgnored):
		log.Debug("delivery ignored", "reason", err)
		b.finish(ctx, d, "ignored")
		return
	case err != nil:
		log.Error("parse delivery", "err", err)
		b.finish(ctx, d, "failed")
		return
	}
	ev.Forge, ev.DeliveryID = d.Forge, d.ID
	delay := time.Second
	for attempt := 1; ; attempt++ {
		err = b.route(ctx, ev)
		if err == nil || ctx.Err() != nil || attempt == 4 {
			break
		}
		log.Warn("route delivery; retrying", "attempt", attempt, "err", err)
		var re *event.RetryableError
		if errors.As(err, &re) && re.RetryAfter() > delay {
			delay = re.RetryAfter()
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay *= 5
	}
	if ctx.Err() != nil {
		return // stays pending; the next start routes it again
	}
	outcome := "routed"
	if err != nil {
		log.Error("route delivery", "err", err)
		outcome = "failed"
	}
	b.finish(ctx, d, outcome)
}

func (b *Bot) finish(ctx context.Context, d store.Delivery, outcome string) {
	b.metrics.routed.WithLabelValues(d.Forge, outcome).Inc()
	if err := b.cfg.Store.FinishDelivery(ctx, d.Forge, d.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		b.log.Error("finish delivery", "forge", d.Forge, "delivery", d.ID, "err", err)
	}
}
