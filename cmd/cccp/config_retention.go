package main

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cccp-project/cccp/internal/retention"
	"github.com/cccp-project/cccp/internal/types"
)

// retentionConfig is the `retention` section of cccp serve's configuration.
type retentionConfig struct {
	// KeepLast keeps the newest KeepLast runs of each project.
	KeepLast int `yaml:"keep_last"`
	// KeepFor keeps every run younger than this.
	KeepFor time.Duration `yaml:"keep_for"`
	// Kinds are the run kinds pruned (branch, pr, trial); empty: all.
	Kinds []string `yaml:"kinds"`
	// Every is how often retention and the registry's garbage collection
	// run (default 6h).
	Every time.Duration `yaml:"every"`
	// MirrorsUnusedFor removes a git mirror (DATA/mirrors) unused this
	// long; 0: retention.DefaultMirrorsUnusedFor (30 days).
	MirrorsUnusedFor time.Duration `yaml:"mirrors_unused_for"`
	// BuildCacheUnusedFor removes from the builds' own container storage
	// (--build-storage) what no build used this long: bases, the layer
	// cache, the working containers of killed builds. Unset:
	// retention.DefaultBuildCacheUnusedFor (14 days); 0: never.
	BuildCacheUnusedFor *time.Duration `yaml:"build_cache_unused_for"`
}

// buildCacheUnusedFor is build_cache_unused_for, its default when unset.
func (c retentionConfig) buildCacheUnusedFor() time.Duration {
	if c.BuildCacheUnusedFor == nil {
		return retention.DefaultBuildCacheUnusedFor
	}
	return *c.BuildCacheUnusedFor
}

// enabled: with neither keep_last nor keep_for nothing is ever pruned.
func (c retentionConfig) enabled() bool { return c.KeepLast > 0 || c.KeepFor > 0 }

func (c retentionConfig) validate() error {
	var errs []error
	if c.KeepLast < 0 {
		errs = append(errs, fmt.Errorf("retention.keep_last must not be negative, not %d", c.KeepLast))
	}
	if c.KeepFor < 0 || c.Every < 0 || c.MirrorsUnusedFor < 0 {
		errs = append(errs, errors.New("retention.keep_for, retention.every and retention.mirrors_unused_for must not be negative"))
	}
	if c.BuildCacheUnusedFor != nil && *c.BuildCacheUnusedFor < 0 {
		errs = append(errs, errors.New("retention.build_cache_unused_for must not be negative (0 turns the pruning of the build storage off)"))
	}
	for _, k := range c.Kinds {
		if !slices.Contains([]types.RunKind{types.KindBranch, types.KindPR, types.KindTrial}, types.RunKind(k)) {
			errs = append(errs, fmt.Errorf("retention.kinds: %q is not a run kind (branch, pr, trial)", k))
		}
	}
	return errors.Join(errs...)
}

func (c retentionConfig) policy() retention.Policy {
	p := retention.Policy{KeepLast: c.KeepLast, KeepFor: c.KeepFor}
	for _, k := range c.Kinds {
		p.Kinds = append(p.Kinds, types.RunKind(k))
	}
	return p
}

func (c retentionConfig) every() time.Duration {
	if c.Every <= 0 {
		return 6 * time.Hour
	}
	return c.Every
}
