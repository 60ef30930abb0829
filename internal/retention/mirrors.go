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

// ForeignMirrorsUnusedFor is how long a mirror of a URL the index does not
// have may go unused (at most the mirrors' own window): the fork of a pull
// request, whose URL is never in the index, keeps its copy between the
// pushes of a day instead of losing it every round; a project that left
// the index loses its copy a day after its last use.
const ForeignMirrorsUnusedFor = 24 * time.Hour

// Mirrors holds the copies of git repositories the up-to-date check reads
// (gitsrc.Mirror under DATA/mirrors).
type Mirrors interface {
	// Prune removes the copies last used before unusedSince and those
	// keep refuses, given their URL and last use (keep nil: none for its
	// URL), never one
	// while it is in use, and returns what it removed (dryRun: would
	// remove), without credentials.
	Prune(ctx context.Context, unusedSince time.Time, keep func(url string, lastUsed time.Time) bool, dryRun bool) ([]string, error)
}

// pruneMirrors removes the mirrors unused for the window, and those of
// URLs the index does not have unused for ForeignMirrorsUnusedFor.
func (p *Pruner) pruneMirrors(ctx context.Context, dryRun bool) ([]string, error) {
	if p.cfg.Mirrors == nil {
		return nil, nil
	}
	unusedFor := p.cfg.MirrorsUnusedFor
	if unusedFor <= 0 {
		unusedFor = DefaultMirrorsUnusedFor
	}
	now := p.cfg.Now()
	foreignSince := now.Add(-min(unusedFor, ForeignMirrorsUnusedFor))
	var keep func(string, time.Time) bool
	if p.cfg.MirrorURLs != nil {
		urls, err := p.cfg.MirrorURLs(ctx)
		switch {
		case err != nil:
			// Without the index, only age decides.
			p.cfg.Logger.Warn("retention: which git URLs the index has", "err", err)
		case len(urls) > 0:
			keep = func(u string, last time.Time) bool { return urls[u] || !last.Before(foreignSince) }
		}
	}
	removed, err := p.cfg.Mirrors.Prune(ctx, now.Add(-unusedFor), keep, dryRun)
	if err != nil {
		return removed, fmt.Errorf("retention: git mirrors: %w", err)
	}
	return removed, nil
}
