package retention

import (
	"context"
	"fmt"
	"time"
)

// DefaultBuildCacheUnusedFor is the window of the build storage's pruning
// that cccp serve uses when retention.build_cache_unused_for is not set:
// two weeks, so a base a weekly rescan builds from, and its layer cache,
// are still there the next week.
const DefaultBuildCacheUnusedFor = 14 * 24 * time.Hour

// BuildCache is the storage cccp's builds pull bases into and keep their
// layer cache in (the local backend's own buildah storage).
type BuildCache interface {
	// PruneBuildCache removes the working containers killed builds left
	// and the images no build used since unusedSince, never while a
	// build is under way, and returns what it removed (dryRun: would
	// remove).
	PruneBuildCache(ctx context.Context, unusedSince time.Time, dryRun bool) ([]string, error)
}

// pruneBuildCache prunes the build storage, when one is configured and
// BuildCacheUnusedFor is above 0.
func (p *Pruner) pruneBuildCache(ctx context.Context, dryRun bool) ([]string, error) {
	if p.cfg.BuildCache == nil || p.cfg.BuildCacheUnusedFor <= 0 {
		return nil, nil
	}
	removed, err := p.cfg.BuildCache.PruneBuildCache(ctx, p.cfg.Now().Add(-p.cfg.BuildCacheUnusedFor), dryRun)
	if err != nil {
		return removed, fmt.Errorf("retention: build storage: %w", err)
	}
	return removed, nil
}
