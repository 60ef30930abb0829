package retention

import (
	"context"
	"fmt"
	"time"
)

// DefaultMirrorsUnusedFor is how long a git mirror may go unused before
// Prune removes it, when Config.MirrorsUnusedFor is 0: a month, longer
// than the weekly rescans and the quiet spells of most projects, so a
// copy is made again only for a project that has truly gone quiet.
const DefaultMirrorsUnusedFor = 30 * 24 * time.Hour

// Mirrors holds the copies of git repositories the up-to-date check reads
// (gitsrc.Mirror under DATA/mirrors).
type Mirrors interface {
	// Prune removes the copies last used before unusedSince and those
	// whose URL keep refuses (keep nil: none for its URL), never one
	// while it is in use, and returns what it removed (dryRun: would
	// remove), without credentials.
	Prune(ctx context.Context, unusedSince time.Time, keep func(url string) bool, dryRun bool) ([]string, error)
}

// pruneMirrors removes the mirrors that are unused or no longer in the
// index.
func (p *Pruner) pruneMirrors(ctx context.Context, dryRun bool) ([]string, error) {
	if p.cfg.Mirrors == nil {
		return nil, nil
	}
	unusedFor := p.cfg.MirrorsUnusedFor
	if unusedFor <= 0 {
		unusedFor = DefaultMirrorsUnusedFor
	}
	var keep func(string) bool
	if p.cfg.MirrorURLs != nil {
		urls, err := p.cfg.MirrorURLs(ctx)
		switch {
		case err != nil:
			// Without the index, only age decides.
			p.cfg.Logger.Warn("retention: which git URLs the index has", "err", err)
		case len(urls) > 0:
			keep = func(u string) bool { return urls[u] }
		}
	}
	removed, err := p.cfg.Mirrors.Prune(ctx, p.cfg.Now().Add(-unusedFor), keep, dryRun)
	if err != nil {
		return removed, fmt.Errorf("retention: git mirrors: %w", err)
	}
	return removed, nil
}
