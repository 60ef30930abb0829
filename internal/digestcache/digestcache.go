// Package digestcache remembers which manifest digest an image tag pointed
// at, for a short time, so that many builds FROM one image ask its registry
// once: the up-to-date check of a cascade of 1,000 entries FROM the same
// base makes one HEAD request per TTL, not 1,000.
//
// A digest is used for at most TTL after the HEAD that saw it started, so
// a tag that moved is seen within TTL. Callers that ask for one image
// while its HEAD is in flight wait for that HEAD instead of making their
// own. A digest seen by someone else's fresh HEAD (the base-image watcher,
// through Head) is remembered too, so a run it queues for a moved tag sees
// the new digest at once. At most Max images are remembered; errors are
// not.
package digestcache

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults of Config.
const (
	// DefaultTTL bounds how old a digest may be: a base tag that moved is
	// seen by the up-to-date check at most this late (and the base-image
	// watcher, when it sees it first, tells the cache at once).
	DefaultTTL     = time.Minute
	DefaultMax     = 4096
	DefaultTimeout = 30 * time.Second
)

// Config configures a Cache; Head is required.
type Config struct {
	// Head asks the registry for the manifest digest a full reference
	// points at now (registry.Client.Digest).
	Head func(ctx context.Context, ref string) (string, error)
	// TTL is how long a digest is used after the HEAD that saw it
	// started (default DefaultTTL).
	TTL time.Duration
	// Max is how many images are remembered (default DefaultMax); past
	// it the expired, then the oldest, are forgotten.
	Max int
	// Timeout bounds one HEAD, which runs apart from the context of the
	// caller that started it, since others may be waiting for it
	// (default DefaultTimeout).
	Timeout time.Duration
	Now     func() time.Time // default time.Now
}

// Cache remembers digests; it is safe for concurrent use.
type Cache struct {
	cfg   Config
	group singleflight.Group

	mu   sync.Mutex
	seen map[string]seen // ref -> its newest digest
}

type seen struct {
	digest string
	at     time.Time // when the HEAD that saw it started
}

// New checks cfg and returns an empty Cache.
func New(cfg Config) (*Cache, error) {
	if cfg.Head == nil {
		return nil, errors.New("digestcache: Head is required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Max <= 0 {
		cfg.Max = DefaultMax
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{cfg: cfg, seen: map[string]seen{}}, nil
}

// Digest returns the digest ref pointed at no longer than TTL ago: the one
// remembered, or the answer of one HEAD shared by every caller asking for
// ref meanwhile.
func (c *Cache) Digest(ctx context.Context, ref string) (string, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	s, ok := c.seen[ref]
	c.mu.Unlock()
	if ok && now.Sub(s.at) < c.cfg.TTL && !now.Before(s.at) {
		return s.digest, nil
	}
	ch := c.group.DoChan(ref, func() (any, error) {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
		defer cancel()
		return c.Head(hctx, ref)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Head asks the registry for ref's digest now, whatever is remembered, and
// remembers the answer: the base-image watcher asks through it, so what it
// sees is what the next Digest returns.
func (c *Cache) Head(ctx context.Context, ref string) (string, error) {
	at := c.cfg.Now()
	d, err := c.cfg.Head(ctx, ref)
	if err != nil {
		return "", err
	}
	c.remember(ref, d, at)
	return d, nil
}

// remember keeps d as ref's digest seen at at, unless a HEAD that started
// later saw one already.
func (c *Cache) remember(ref, d string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.seen[ref]; ok && s.at.After(at) {
		return
	}
	if _, ok := c.seen[ref]; !ok && len(c.seen) >= c.cfg.Max {
		c.evict(c.cfg.Now())
	}
	c.seen[ref] = seen{digest: d, at: at}
}

// evict forgets the expired digests, or, when none is, the oldest one.
func (c *Cache) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	dropped := false
	for ref, s := range c.seen {
		if now.Sub(s.at) >= c.cfg.TTL {
			delete(c.seen, ref)
			dropped = true
			continue
		}
		if oldest == "" || s.at.Before(oldestAt) {
			oldest, oldestAt = ref, s.at
		}
	}
	if !dropped && oldest != "" {
		delete(c.seen, oldest)
	}
}

// Len is how many images are remembered.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
