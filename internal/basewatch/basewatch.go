// Package basewatch watches the base images that the index's builds start
// FROM but that the index does not build itself (a public `centos:7`, an
// image some other team pushes): on a schedule it asks each image's
// registry for the digest its tag points at now (a HEAD request, no pull),
// remembers the digests in the store, and queues a run of every entry built
// FROM an image whose digest changed (cause "base-image"). The pipeline's
// cascade then rebuilds those entries' descendants.
//
// Each image is asked once per round however many entries use it, a few at
// a time, and a registry that fails (an error, a 429) is left alone for an
// exponentially growing back-off (longer after a 429), so a rate-limited
// public registry is not hammered. An image seen for the first time is only
// remembered.
package basewatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// MetaNS is the store namespace of the last seen digests: key the image's
// full reference, value its digest.
const MetaNS = "base-digests"

// Meta keeps the last seen digests.
type Meta interface {
	GetMeta(ctx context.Context, ns, key string) ([]byte, error)
	PutMeta(ctx context.Context, ns, key string, val []byte) error
}

// Defaults of Config.
const (
	DefaultConcurrency = 4
	DefaultMaxBackoff  = 6 * time.Hour
	DefaultTimeout     = 30 * time.Second
)

// Config is what a Watcher needs; Images, Head, Meta and Queue are
// required.
type Config struct {
	// Interval between rounds; also the first back-off of a failing
	// registry. Run needs it above zero.
	Interval time.Duration
	// Images are the base images to watch now, with the entries built
	// FROM each (see Collect).
	Images func(ctx context.Context) ([]Watched, error)
	// Head returns the manifest digest a full reference points at now
	// (registry.Client.Digest: go-containerregistry's remote HEAD).
	Head func(ctx context.Context, ref string) (string, error)
	Meta Meta
	// Queue queues a branch run of the entry key.
	Queue func(ctx context.Context, key string, cause store.Cause) error
	// Concurrency is how many HEAD requests are in flight at once (default
	// DefaultConcurrency); Timeout bounds one (default DefaultTimeout);
	// MaxBackoff caps a registry's back-off (default DefaultMaxBackoff).
	Concurrency int
	Timeout     time.Duration
	MaxBackoff  time.Duration
	Now         func() time.Time // default time.Now
	Logger      *slog.Logger
}

// Watched is one base image and the entries built FROM it.
type Watched struct {
	Ref     string   // full reference, registry/repository:tag
	Entries []string // entry keys, app-id/job-id:desired-tag
	// Built is the digest each entry's last build started FROM, where
	// known: the baseline when the image is seen for the first time.
	Built map[string]string
}

// Watcher watches base image digests.
type Watcher struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	backoff map[string]hostState // registry host -> its back-off
}

type hostState struct {
	failures int
	until    time.Time
}

// New checks cfg.
func New(cfg Config) (*Watcher, error) {
	if cfg.Images == nil || cfg.Head == nil || cfg.Meta == nil || cfg.Queue == nil {
		return nil, errors.New("basewatch: Images, Head, Meta and Queue are required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cfg: cfg, log: cfg.Logger, backoff: map[string]hostState{}}, nil
}

// Result counts what one round did.
type Result struct {
	Asked    int // HEAD requests made
	Deferred int // images not asked: their registry is backing off
	Changed  int // images whose digest changed
	Queued   int // runs queued
	Failed   int // HEAD requests that failed
}

// Run watches every Interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	if w.cfg.Interval <= 0 {
		return
	}
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		res, err := w.Round(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("watch base images", "err", err)
		}
		if res.Changed > 0 {
			w.log.Info("base images changed", "changed", res.Changed, "queued", res.Queued)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round asks for the digest of every watched image whose registry is not
// backing off, and queues the entries of those that changed.
func (w *Watcher) Round(ctx context.Context) (Result, error) {
	var res Result
	images, err := w.cfg.Images(ctx)
	if err != nil {
		return res, fmt.Errorf("base images to watch: %w", err)
	}
	now := w.cfg.Now()
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, im := range images {
		host := hostOf(im.Ref)
		if w.backingOff(host, now) {
			res.Deferred++
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return res, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			changed, queued, err := w.check(ctx, im, host)
			mu.Lock()
			defer mu.Unlock()
			res.Asked++
			res.Queued += queued
			if changed {
				res.Changed++
			}
			if err != nil {
				res.Failed++
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return res, errors.Join(errs...)
}

// check asks for one image's digest and queues its entries when it changed.
func (w *Watcher) check(ctx context.Context, im Watched, host string) (changed bool, queued int, err error) {
	hctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	digest, err := w.cfg.Head(hctx, im.Ref)
	cancel()
	if err != nil {
		if ctx.Err() == nil && !notFound(err) {
			w.fail(host, err)
		}
		return false, 0, fmt.Errorf("digest of %s: %w", im.Ref, err)
	}
	w.ok(host)
	last, err := w.cfg.Meta.GetMeta(ctx, MetaNS, im.Ref)
	var stale []string // entries to queue
	switch {
	case errors.Is(err, store.ErrNotFound):
		// First sight: the entries built from another digest than the
		// tag's now are stale; the others are not.
		for _, k := range im.Entries {
			if d := im.Built[k]; d != "" && d != digest {
				stale = append(stale, k)
			}
		}
	case err != nil:
		return false, 0, fmt.Errorf("last digest of %s: %w", im.Ref, err)
	case string(last) == digest:
		return false, 0, nil
	default:
		stale = im.Entries
	}
	if len(stale) > 0 {
		changed = true
		from := string(last)
		if from == "" {
			from = "the digest it was built from"
		}
		cause := store.Cause{Kind: types.CauseBaseImage,
			Detail: fmt.Sprintf("base image %s changed from %s to %s", im.Ref, from, digest)}
		var errs []error
		for _, k := range stale {
			if err := w.cfg.Queue(ctx, k, cause); err != nil {
				errs = append(errs, fmt.Errorf("queue %s after %s changed: %w", k, im.Ref, err))
				continue
			}
			queued++
		}
		if len(errs) > 0 {
			return changed, queued, errors.Join(errs...) // not remembered: the next round queues again
		}
	}
	if err := w.cfg.Meta.PutMeta(ctx, MetaNS, im.Ref, []byte(digest)); err != nil {
		return changed, queued, fmt.Errorf("remember digest of %s: %w", im.Ref, err)
	}
	return changed, queued, nil
}

func (w *Watcher) backingOff(host string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return now.Before(w.backoff[host].until)
}

func (w *Watcher) ok(host string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.backoff, host)
}

// fail starts or doubles host's back-off: Interval, 2×Interval, ... up to
// MaxBackoff; four times that after a 429 (go-containerregistry's error
// does not carry the Retry-After header).
func (w *Watcher) fail(host string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.backoff[host]
	st.failures++
	d := w.cfg.Interval
	if d <= 0 {
		d = time.Minute
	}
	for i := 1; i < st.failures && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	if rateLimited(err) {
		d *= 4 // the registry said so itself: wait longer from the start
	}
	d = min(d, w.cfg.MaxBackoff)
	st.until = w.cfg.Now().Add(d)
	w.backoff[host] = st
	w.log.Warn("registry failing; backing off", "registry", host, "failures", st.failures, "for", d, "err", err)
}

// BackingOff lists the registries that are backing off now.
func (w *Watcher) BackingOff() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.cfg.Now()
	var out []string
	for h, st := range w.backoff {
		if now.Before(st.until) {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

func notFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// rateLimited tells whether the registry refused for too many requests
// (go-containerregistry has retried it already by then).
func rateLimited(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusTooManyRequests
}

func hostOf(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref
	}
	return r.Context().RegistryStr()
}
