package idpool

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Cleared hands out the members of a Pool, each of which runs as host
// ids of its own (IDs), only while no process runs as any of them: every
// process still running as one (left by a holder that crashed, or by a
// cccp of another Scope) is killed first, and again when the member is
// given back. The ids must be cccp's alone: no user or group of the
// machine may have one (CheckUnowned).
type Cleared struct {
	pool *Pool
	ids  []IDs
	log  *slog.Logger
	wait time.Duration

	mu sync.Mutex
	// held are members whose processes did not die: their locks stay
	// held by this process, so no one hands them out, until a later
	// Acquire finds them clear.
	held []*Lease
}

// NewCleared hands out pool's members, member i running as ids[i].
// Every process killed is logged to log (nil: discarded); one that does
// not die within wait (default 2s) of SIGKILL has its member held back.
func NewCleared(pool *Pool, ids []IDs, log *slog.Logger, wait time.Duration) (*Cleared, error) {
	if len(ids) != pool.Size() {
		return nil, fmt.Errorf("id pool: %d members but ids for %d", pool.Size(), len(ids))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if wait <= 0 {
		wait = 2 * time.Second
	}
	return &Cleared{pool: pool, ids: slices.Clone(ids), log: log, wait: wait}, nil
}

// IDs are the ids of the member l holds.
func (c *Cleared) IDs(l *Lease) IDs { return c.ids[l.Index] }

// Size is the number of members.
func (c *Cleared) Size() int { return c.pool.Size() }

// TryAcquire takes a free member nothing runs as; ok is false when all
// are held. A member where a process survives SIGKILL is held back and
// the next one tried.
func (c *Cleared) TryAcquire() (l *Lease, ok bool, err error) {
	c.retryHeld()
	for {
		l, ok, err := c.pool.TryAcquire()
		if err != nil || !ok {
			return nil, ok, err
		}
		if err := clearIDs(c.log, c.ids[l.Index], c.wait); err != nil {
			c.log.Warn("idpool: member held back: a process of its ids survives SIGKILL", "member", l.Key, "err", err)
			c.holdBack(l)
			continue
		}
		return l, true, nil
	}
}

// Acquire takes a free member nothing runs as, waiting while all are
// held, until ctx ends.
func (c *Cleared) Acquire(ctx context.Context) (*Lease, error) {
	poll := c.pool.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	for {
		l, ok, err := c.TryAcquire()
		if err != nil || ok {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("id pool: all %d members in use: %w", c.pool.Size(), ctx.Err())
		case <-time.After(poll):
		}
	}
}

// Release kills what still runs as l's ids and gives the member back; a
// member whose processes do not die is held back from everyone, and the
// error says so. A second call does nothing.
func (c *Cleared) Release(l *Lease) error {
	if l == nil || l.f == nil {
		return nil
	}
	if err := clearIDs(c.log, c.ids[l.Index], c.wait); err != nil {
		c.holdBack(l)
		return fmt.Errorf("%s held back: %w", l.Key, err)
	}
	return l.Release()
}

func (c *Cleared) holdBack(l *Lease) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.held, l) {
		c.held = append(c.held, l)
	}
}

// retryHeld gives back the held-back members that are clear now.
func (c *Cleared) retryHeld() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = slices.DeleteFunc(c.held, func(l *Lease) bool {
		if len(inRange(c.ids[l.Index])) > 0 {
			return false
		}
		l.Release()
		return true
	})
}

// Clear kills what runs as l's ids, keeping the member: for a holder
// that removes what the ids left (files) before it gives the member
// back, with nothing of them running to make more.
func (c *Cleared) Clear(l *Lease) error {
	return clearIDs(c.log, c.ids[l.Index], c.wait)
}

// TryTake takes the member at index i, cleared of its processes, if no
// one holds it; ok is false when someone does (or it is held back).
func (c *Cleared) TryTake(i int) (l *Lease, ok bool, err error) {
	if i < 0 || i >= c.pool.Size() {
		return nil, false, fmt.Errorf("id pool: no member %d", i)
	}
	f, err := c.pool.lock(c.pool.keys[i])
	if err != nil || f == nil {
		return nil, false, err
	}
	l = &Lease{Index: i, Key: c.pool.keys[i], f: f}
	if err := clearIDs(c.log, c.ids[i], c.wait); err != nil {
		c.holdBack(l)
		return nil, false, fmt.Errorf("%s held back: %w", l.Key, err)
	}
	return l, true, nil
}
