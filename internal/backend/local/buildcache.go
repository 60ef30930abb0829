package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The build cache: what builds leave in buildah's storage. Bases they
// pulled, the intermediate images of the layer cache (--layers), the
// chowned copies of a base's layers that builds in a user namespace make
// (one per id range, kept with the base image; see buildah.IDMap), and
// the working containers of builds that were killed. Nothing in buildah
// removes them; this does, in a storage that is the backend's own
// (Config.Buildah.Root set: cccp serve gives builds DATA/build-storage), so
// nothing of another user of the machine's storage is ever touched.
//
// Which images a build used is recorded when it succeeds: the DiffIDs of
// its image, and every prefix of them. An image in the storage was used
// then when its own DiffIDs are one of those: its base, or a step of its
// build the layer cache kept. An image no build used is dated from when
// the pruning first saw it, so one made by a failed build, or found on
// the first prune after an upgrade, gets the full window too.
//
// The record is a small JSON file in the backend's folder
// (build-cache.json): chains of DiffIDs with the last time a build used
// them, and per image ID when it was first seen and its chain (asked of
// buildah once: an image ID names its content).
//
// Removal never runs while a build of this backend is in buildah: a
// concurrent rmi and commit or cache lookup in one storage can fail the
// build ("layer not known", containers/buildah#5674). Builds hold the
// cache's gate shared from buildah's start to their image's removal;
// PruneBuildCache waits until no build holds it (new builds go on
// meanwhile), takes it alone, and holds the builds that start then for
// as long as the removal takes (seconds).

// cacheRecord is the file name of the record in the backend's folder.
const cacheRecord = "build-cache.json"

// DefaultCacheWait is how long PruneBuildCache waits for a moment with no
// build in buildah before it gives up until its next round.
const DefaultCacheWait = 10 * time.Minute

// ErrSharedStorage is a prune refused in a storage that is not the
// backend's own (Config.Buildah.Root unset).
var ErrSharedStorage = errors.New("the build storage is not cccp's own (no storage root set): nothing is pruned in a storage others may use")

type buildCache struct {
	gate sync.RWMutex // builds hold it shared; a prune alone

	mu     sync.Mutex // the record file
	path   string
	wait   time.Duration
	poll   time.Duration
	now    func() time.Time
	images atomic.Int64 // removed
	ctrs   atomic.Int64 // removed
	busy   atomic.Int64 // prunes that held new builds back to run
}

// cacheLedger is build-cache.json.
type cacheLedger struct {
	// Chains: chain key -> last time a build used it (Unix seconds).
	Chains map[string]int64 `json:"chains"`
	// Seen: image ID -> when a prune first saw it.
	Seen map[string]int64 `json:"seen"`
	// Keys: image ID -> the chain key of its DiffIDs.
	Keys map[string]string `json:"keys"`
}

func newBuildCache(dir string) *buildCache {
	return &buildCache{path: filepath.Join(dir, cacheRecord), wait: DefaultCacheWait, poll: time.Second, now: time.Now}
}

// hold keeps prunes off while a build uses the storage; call what it
// returns when the build is done with it.
func (c *buildCache) hold() func() {
	c.gate.RLock()
	return c.gate.RUnlock
}

// chainKey names a list of DiffIDs.
func chainKey(diffIDs []string) string {
	h := sha256.Sum256([]byte(strings.Join(diffIDs, "\n")))
	return hex.EncodeToString(h[:16])
}

func (c *buildCache) load() (*cacheLedger, error) {
	l := &cacheLedger{Chains: map[string]int64{}, Seen: map[string]int64{}, Keys: map[string]string{}}
	data, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("build cache record: %w", err)
	}
	if err := json.Unmarshal(data, l); err != nil {
		return nil, fmt.Errorf("build cache record %s: %w", c.path, err)
	}
	for _, m := range []*map[string]int64{&l.Chains, &l.Seen} {
		if *m == nil {
			*m = map[string]int64{}
		}
	}
	if l.Keys == nil {
		l.Keys = map[string]string{}
	}
	return l, nil
}

func (c *buildCache) save(l *cacheLedger) error {
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("build cache record: %w", err)
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("build cache record: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("build cache record: %w", err)
	}
	return nil
}

// used records that a build used image and everything it was built on.
func (b *Backend) cacheUsed(ctx context.Context, image string) error {
	if b.cfg.Buildah.Root == "" {
		return nil
	}
	ids, err := b.cfg.Buildah.DiffIDs(ctx, image)
	if err != nil {
		return err
	}
	c := b.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.load()
	if err != nil {
		return err
	}
	now := c.now().Unix()
	for n := 1; n <= len(ids); n++ {
		l.Chains[chainKey(ids[:n])] = now
	}
	return c.save(l)
}

// cleanContainers removes every buildah working container in the
// backend's own storage: run when no build is in buildah, each is what a
// killed build left. A container of another tool (podman's) is not
// buildah's to remove.
func (b *Backend) cleanContainers(ctx context.Context, dryRun bool) ([]string, error) {
	ctrs, err := b.cfg.Buildah.StoreContainers(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, ct := range ctrs {
		if !ct.Builder {
			continue
		}
		what := fmt.Sprintf("container %s (%.12s, of image %.12s)", ct.Name, ct.ID, ct.ImageID)
		if !dryRun {
			if err := b.cfg.Buildah.RemoveContainer(ctx, ct.ID); err != nil {
				errs = append(errs, err)
				continue
			}
			b.cache.ctrs.Add(1)
			b.log.Info("build cache: removed a killed build's working container", "container", ct.Name, "id", ct.ID)
		}
		removed = append(removed, what)
	}
	return removed, errors.Join(errs...)
}

// afterFailedBuild removes the working containers a failed or cancelled
// build left (buildah leaves them, mounted, when it is stopped in a RUN
// step), when no other build is in buildah to tell them apart from its
// own; else the next prune or start does.
func (b *Backend) afterFailedBuild() {
	if b.cfg.Buildah.Root == "" || !b.cache.gate.TryLock() {
		return
	}
	defer b.cache.gate.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := b.cleanContainers(ctx, false); err != nil {
		b.log.Warn("build cache: remove a failed build's working containers", "err", err)
	}
}

// closeStorage, with no build left, removes what killed builds left in
// the backend's own storage (the start after a crash does it otherwise)
// and then its run root: state of this process's builds (locks, mount
// counts) that a reboot would clear, and that would otherwise pile up on
// /run for every storage ever used (a test's).
func (b *Backend) closeStorage() {
	if b.cfg.Buildah.Root == "" {
		return
	}
	b.cache.gate.Lock() // a prune under way ends first
	defer b.cache.gate.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := b.cleanContainers(ctx, false); err != nil {
		b.log.Warn("build cache: remove killed builds' working containers", "err", err)
		return
	}
	if rr := b.cfg.Buildah.RunRoot; rr != "" {
		if err := os.RemoveAll(rr); err != nil {
			b.log.Warn("build cache: remove the storage's run root", "dir", rr, "err", err)
		}
	}
}

// PruneBuildCache removes from the backend's own build storage the
// working containers killed builds left, and the images (bases, layer
// cache, with their id-mapped copies) no build used since unusedSince,
// and returns what it removed (dryRun: would remove). It waits for a
// moment with no build in buildah (at most DefaultCacheWait; then it
// holds new builds back and waits for the running ones) and holds new
// builds off while it removes.
func (b *Backend) PruneBuildCache(ctx context.Context, unusedSince time.Time, dryRun bool) ([]string, error) {
	if b.cfg.Buildah.Root == "" {
		return nil, ErrSharedStorage
	}
	c := b.cache
	var removed []string
	var cerr error
	if !dryRun {
		if err := c.lockAlone(ctx); err != nil {
			return nil, err
		}
		defer c.gate.Unlock()
		removed, cerr = b.cleanContainers(ctx, false)
	} else if c.gate.TryLock() {
		// Working containers are leftovers only while no build is in
		// buildah: a dry run during a build would list the build's own.
		removed, cerr = b.cleanContainers(ctx, true)
		c.gate.Unlock()
	}
	imgs, ierr := b.pruneImages(ctx, unusedSince, dryRun)
	removed = append(removed, imgs...)
	return removed, errors.Join(cerr, ierr)
}

// lockAlone takes the gate alone once no build holds it, trying every
// poll while builds go on. After c.wait it stops letting new builds in
// (a waiting Lock holds new readers back) and waits for the builds
// already in buildah, so builds that never pause cannot put the prune
// off for ever.
func (c *buildCache) lockAlone(ctx context.Context) error {
	deadline := time.Now().Add(c.wait)
	for !c.gate.TryLock() {
		if time.Now().After(deadline) {
			c.busy.Add(1)
			c.gate.Lock()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.poll):
		}
	}
	return nil
}

func (b *Backend) pruneImages(ctx context.Context, unusedSince time.Time, dryRun bool) ([]string, error) {
	c := b.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.load()
	if err != nil {
		return nil, err
	}
	imgs, err := b.cfg.Buildah.StoreImages(ctx)
	if err != nil {
		return nil, err
	}
	now := c.now().Unix()
	present := map[string]bool{}
	var removed []string
	var errs []error
	for _, img := range imgs {
		present[img.ID] = true
		if _, ok := l.Seen[img.ID]; !ok {
			l.Seen[img.ID] = now
		}
		key, ok := l.Keys[img.ID]
		if !ok {
			ids, err := b.cfg.Buildah.DiffIDs(ctx, img.ID)
			if err != nil {
				errs = append(errs, err) // kept: unknown what it holds
				continue
			}
			key = chainKey(ids)
			l.Keys[img.ID] = key
		}
		last := max(l.Seen[img.ID], l.Chains[key])
		if last >= unusedSince.Unix() {
			continue
		}
		what := fmt.Sprintf("image %.12s %s (last used %s)", img.ID, names(img.Names), time.Unix(last, 0).UTC().Format(time.RFC3339))
		if !dryRun {
			if err := b.cfg.Buildah.RemoveStoreImage(ctx, img); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(present, img.ID)
			c.images.Add(1)
			b.log.Info("build cache: removed an image no build used", "image", img.ID, "names", img.Names,
				"last_used", time.Unix(last, 0).UTC())
		}
		removed = append(removed, what)
	}
	if dryRun {
		return removed, errors.Join(errs...)
	}
	// Forget what is gone, and the chains no build used in the window.
	for id := range l.Seen {
		if !present[id] {
			delete(l.Seen, id)
			delete(l.Keys, id)
		}
	}
	for k, t := range l.Chains {
		if t < unusedSince.Unix() {
			delete(l.Chains, k)
		}
	}
	if err := c.save(l); err != nil {
		errs = append(errs, err)
	}
	return removed, errors.Join(errs...)
}

func names(n []string) string {
	if len(n) == 0 {
		return "<none>"
	}
	return strings.Join(n, ",")
}

// WriteBuildCacheMetrics writes what the pruning of the build cache
// removed since cccp started.
func (b *Backend) WriteBuildCacheMetrics(w io.Writer) error {
	c := b.cache
	_, err := fmt.Fprintf(w, "# HELP cccp_build_cache_removed_total What the pruning of the build storage removed: images no build used within retention.build_cache_unused_for, working containers of killed builds.\n"+
		"# TYPE cccp_build_cache_removed_total counter\n"+
		"cccp_build_cache_removed_total{kind=\"image\"} %d\ncccp_build_cache_removed_total{kind=\"container\"} %d\n"+
		"# HELP cccp_build_cache_prunes_busy_total Prunes of the build storage that found builds running for their whole wait, held new builds back and waited for the running ones.\n"+
		"# TYPE cccp_build_cache_prunes_busy_total counter\ncccp_build_cache_prunes_busy_total %d\n",
		c.images.Load(), c.ctrs.Load(), c.busy.Load())
	return err
}
