package registry

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// GCStats counts what a garbage collection removed (or, in a dry run,
// would remove).
type GCStats struct {
	DryRun            bool
	ManifestsDeleted  int   // untagged manifests no tagged index refers to
	BlobsDeleted      int   // blobs no remaining manifest refers to
	BytesFreed        int64 // size of those blobs
	LayerLinksDeleted int   // per-repository links to such blobs
	// KeptRecent counts unreferenced manifests, blobs and links kept
	// because they were written less than Config.GCKeepRecent ago (a push
	// in progress).
	KeptRecent int
}

// storage root inside the driver, as distribution lays it out.
const v2Root = "/docker/registry/v2"

// GC removes untagged manifests and the blobs only they used, with
// distribution's mark and sweep. Every tagged image, and every manifest a
// tagged index refers to, is kept whole.
//
// GC runs on the live registry with writes paused: write requests wait
// until it ends, reads go on. Because a client pushes layers before the
// manifest that refers to them, anything written less than
// Config.GCKeepRecent ago is kept. With dryRun nothing is deleted and the
// stats say what would be.
func (e *Embedded) GC(ctx context.Context, dryRun bool) (GCStats, error) {
	e.writes.Lock()
	defer e.writes.Unlock()
	ctx = withLogger(ctx, e.dlog)

	fs := filesystem.New(filesystem.DriverParameters{RootDirectory: e.storageDir(), MaxThreads: 25})
	stats := GCStats{DryRun: dryRun}
	d := &gcDriver{StorageDriver: fs, dryRun: dryRun, cutoff: time.Now().Add(-e.cfg.GCKeepRecent), stats: &stats}
	if err := d.findRecentLinks(ctx); err != nil {
		return GCStats{}, fmt.Errorf("gc: %w", err)
	}
	reg, err := storage.NewRegistry(ctx, d, storage.EnableDelete)
	if err != nil {
		return GCStats{}, fmt.Errorf("gc: %w", err)
	}
	err = storage.MarkAndSweep(ctx, d, reg, storage.GCOpts{RemoveUntagged: true, Quiet: true})
	if err != nil && !isEmptyStorage(err) {
		return stats, fmt.Errorf("gc: %w", err)
	}
	e.log.Info("registry garbage collected", "dry_run", dryRun, "manifests", stats.ManifestsDeleted,
		"blobs", stats.BlobsDeleted, "bytes", stats.BytesFreed, "kept_recent", stats.KeptRecent)
	return stats, nil
}

// isEmptyStorage reports the error MarkAndSweep gives on a registry that
// has never stored anything.
func isEmptyStorage(err error) bool {
	var nf storagedriver.PathNotFoundError
	return errors.As(err, &nf) || strings.Contains(err.Error(), "Path not found")
}

// gcDriver sits between MarkAndSweep and the filesystem driver: it counts
// deletions, keeps recent content and, in a dry run, deletes nothing.
type gcDriver struct {
	storagedriver.StorageDriver
	dryRun bool
	cutoff time.Time

	mu     sync.Mutex
	stats  *GCStats
	recent map[string]bool // blob hex digests linked into a repository recently
}

// findRecentLinks notes the blobs that a repository linked after the
// cutoff: an old blob being mounted into a new repository must survive
// even when no manifest refers to it yet.
func (d *gcDriver) findRecentLinks(ctx context.Context) error {
	d.recent = map[string]bool{}
	err := d.StorageDriver.Walk(ctx, v2Root+"/repositories", func(fi storagedriver.FileInfo) error {
		p := fi.Path()
		if fi.IsDir() || path.Base(p) != "link" || !strings.Contains(p, "/_layers/") {
			return nil
		}
		if fi.ModTime().After(d.cutoff) {
			d.recent[path.Base(path.Dir(p))] = true
		}
		return nil
	})
	var nf storagedriver.PathNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	return err
}

func (d *gcDriver) isRecent(ctx context.Context, p string) bool {
	fi, err := d.StorageDriver.Stat(ctx, p)
	return err == nil && fi.ModTime().After(d.cutoff)
}

// Delete classifies what MarkAndSweep removes by its path.
func (d *gcDriver) Delete(ctx context.Context, p string) error {
	var count func()
	switch {
	case strings.HasPrefix(p, v2Root+"/blobs/"):
		hex := path.Base(p)
		data, err := d.StorageDriver.Stat(ctx, p+"/data")
		if d.recent[hex] || (err == nil && data.ModTime().After(d.cutoff)) {
			return d.keep()
		}
		var size int64
		if err == nil {
			size = data.Size()
		}
		count = func() { d.stats.BlobsDeleted++; d.stats.BytesFreed += size }
	case strings.Contains(p, "/_layers/"):
		if d.isRecent(ctx, p) {
			return d.keep()
		}
		count = func() { d.stats.LayerLinksDeleted++ }
	case strings.Contains(p, "/_manifests/revisions/"):
		if d.isRecent(ctx, p+"/link") {
			return d.keep()
		}
		count = func() { d.stats.ManifestsDeleted++ }
	default: // tag history entries of a removed manifest
		count = func() {}
	}
	d.mu.Lock()
	count()
	d.mu.Unlock()
	if d.dryRun {
		return nil
	}
	return d.StorageDriver.Delete(ctx, p)
}

func (d *gcDriver) keep() error {
	d.mu.Lock()
	d.stats.KeptRecent++
	d.mu.Unlock()
	return nil
}
