package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// Store keeps the runs.
type Store interface {
	Runs(ctx context.Context, f store.RunFilter) ([]*store.Run, error)
	DeleteRuns(ctx context.Context, ids []string) ([]string, error)
}

// Logs removes a run's logs.
type Logs interface {
	Remove(runID string) error
}

// Registry lists, reads and deletes tags.
type Registry interface {
	Tags(ctx context.Context, repo string) ([]string, error)
	Digest(ctx context.Context, ref string) (string, error)
	Delete(ctx context.Context, ref string) error
}

// Config configures a Pruner.
type Config struct {
	Policy   Policy
	Store    Store
	Logs     Logs
	Registry Registry
	// GC, when set, collects the registry's garbage after each Prune that
	// is not a dry run (the embedded registry's GC).
	GC func(ctx context.Context) error
	// Mirrors, when set, are the git mirrors each Prune removes when
	// unused for MirrorsUnusedFor (0: DefaultMirrorsUnusedFor) or when
	// their URL is not among MirrorURLs' (nil, an error or none: age
	// alone decides, so an index not loaded yet removes nothing for it).
	Mirrors          Mirrors
	MirrorsUnusedFor time.Duration
	MirrorURLs       func(ctx context.Context) (map[string]bool, error)
	// BuildCache, when set, is the build storage each Prune rids of what
	// no build used for BuildCacheUnusedFor (0: not pruned; see
	// buildcache.go).
	BuildCache          BuildCache
	BuildCacheUnusedFor time.Duration
	// Mail, when set, has the given-up mail of the outbox pruned by the
	// same policy (mail.go).
	Mail   MailStore
	Logger *slog.Logger     // default: discard
	Now    func() time.Time // default: time.Now
}

// Pruner carries out a Policy.
type Pruner struct{ cfg Config }

// New returns a Pruner; Store, Logs and Registry are required.
func New(cfg Config) (*Pruner, error) {
	if cfg.Store == nil || cfg.Logs == nil || cfg.Registry == nil {
		return nil, errors.New("retention: store, logs and registry are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Pruner{cfg: cfg}, nil
}

// Result is what one Prune removed (or, dry, would remove).
type Result struct {
	DryRun bool
	Runs   []string // run IDs
	Tags   []string // image references
	// Mirrors are the git mirrors removed: URL (without credentials),
	// folder and why.
	Mirrors []string `json:",omitempty"`
	Mails   []string // IDs of given-up mails
	// Kept names what the policy chose but that stayed (a tag that could
	// not be deleted, a run the store had to keep).
	Kept error `json:"-"`

	// BuildCache is what went from the build storage: images and the
	// working containers of killed builds.
	BuildCache []string `json:",omitempty"`
}

// Plan returns what the policy lets go now.
func (p *Pruner) Plan(ctx context.Context) ([]Prune, error) {
	runs, err := p.cfg.Store.Runs(ctx, store.RunFilter{})
	if err != nil {
		if runs == nil {
			return nil, fmt.Errorf("retention: list runs: %w", err)
		}
		// Records that fail to decode are skipped, never deleted.
		p.cfg.Logger.Warn("retention: some runs could not be read", "err", err)
	}
	repos := map[string]bool{}
	for _, r := range runs {
		for _, im := range r.Images {
			if repo, _, ok := SplitRef(im.Ref); ok {
				repos[repo] = true
			}
		}
	}
	live := map[string]bool{}
	for _, repo := range slices.Sorted(maps.Keys(repos)) {
		tags, err := p.cfg.Registry.Tags(ctx, repo)
		if err != nil {
			return nil, fmt.Errorf("retention: which images are live: %w", err)
		}
		for _, tag := range tags {
			if IsRunTag(tag) {
				continue
			}
			d, err := p.cfg.Registry.Digest(ctx, repo+":"+tag)
			if err != nil {
				return nil, fmt.Errorf("retention: which images are live: %w", err)
			}
			live[d] = true
		}
	}
	return p.cfg.Policy.Select(runs, p.cfg.Now(), live), nil
}

// Prune removes what the policy lets go: first each run's tags, then the
// runs whose tags are all gone, then their logs; then, unless dryRun, the
// registry's garbage.
func (p *Pruner) Prune(ctx context.Context, dryRun bool) (Result, error) {
	var plan []Prune
	if p.cfg.Policy.Enabled() {
		var err error
		if plan, err = p.Plan(ctx); err != nil {
			return Result{}, err
		}
	}
	res := Result{DryRun: dryRun}
	var kept []error
	var ids []string
	for _, pr := range plan {
		ok := true
		for _, ref := range pr.Tags {
			if dryRun {
				res.Tags = append(res.Tags, ref)
				continue
			}
			if err := p.deleteTag(ctx, ref); err != nil {
				kept = append(kept, fmt.Errorf("run %s: %w", pr.Run.ID, err))
				ok = false
				continue
			}
			res.Tags = append(res.Tags, ref)
		}
		if ok {
			ids = append(ids, pr.Run.ID)
		}
	}
	mirrors, err := p.pruneMirrors(ctx, dryRun)
	if err != nil {
		kept = append(kept, err)
	}
	res.Mirrors = mirrors
	mails, err := p.pruneMail(ctx, dryRun)
	if err != nil {
		kept = append(kept, err)
	}
	res.Mails = mails
	built, err := p.pruneBuildCache(ctx, dryRun)
	if err != nil {
		kept = append(kept, err)
	}
	res.BuildCache = built
	if dryRun {
		res.Runs = ids
		res.Kept = errors.Join(kept...)
		return res, nil
	}
	if len(ids) > 0 {
		deleted, err := p.cfg.Store.DeleteRuns(ctx, ids)
		if err != nil {
			kept = append(kept, err)
		}
		res.Runs = deleted
		for _, id := range deleted {
			if err := p.cfg.Logs.Remove(id); err != nil {
				kept = append(kept, err)
			}
		}
	}
	res.Kept = errors.Join(kept...)
	p.cfg.Logger.Info("retention: pruned", "runs", len(res.Runs), "tags", len(res.Tags), "mails", len(res.Mails), "mirrors", len(res.Mirrors), "build_cache", len(res.BuildCache), "kept", res.Kept)
	if p.cfg.GC != nil {
		if err := p.cfg.GC(ctx); err != nil {
			return res, fmt.Errorf("retention: %w", err)
		}
	}
	return res, nil
}

// deleteTag deletes ref if the registry still has it.
func (p *Pruner) deleteTag(ctx context.Context, ref string) error {
	repo, tag, _ := SplitRef(ref)
	tags, err := p.cfg.Registry.Tags(ctx, repo)
	if err != nil {
		return err
	}
	if !slices.Contains(tags, tag) {
		return nil
	}
	return p.cfg.Registry.Delete(ctx, ref)
}

// Loop prunes every interval until ctx ends, logging failures.
func (p *Pruner) Loop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := p.Prune(ctx, false); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Error("retention", "err", err)
		}
	}
}
