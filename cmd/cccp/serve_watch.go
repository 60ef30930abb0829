package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/basewatch"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/poll"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// pollConfig is `pipeline.poll`: polling branch heads of repositories whose
// forge sends cccp no webhooks.
type pollConfig struct {
	// Interval between polls; 0 (default): never.
	Interval time.Duration `yaml:"interval"`
	// Repos are git-url prefixes of the repositories to poll. Empty: every
	// entry whose git-url host is not the host of a forge configured here
	// with a webhook secret.
	Repos []string `yaml:"repos"`
}

// baseImagesConfig is `pipeline.base_images`: watching the FROM images
// outside the index by digest.
type baseImagesConfig struct {
	// Interval between checks; 0 (default): never.
	Interval time.Duration `yaml:"interval"`
	// Concurrency: HEAD requests in flight at once (default 4).
	Concurrency int `yaml:"concurrency"`
	// MaxBackoff caps the wait after a registry fails (default 6h).
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

func (c *serveConfig) validateWatch() error {
	p := &c.Pipeline
	if p.Poll.Interval < 0 || (p.Poll.Interval > 0 && p.Poll.Interval < 10*time.Second) {
		return fmt.Errorf("pipeline.poll.interval %s: must be 0 (off) or at least 10s", p.Poll.Interval)
	}
	if p.BaseImages.Interval < 0 || (p.BaseImages.Interval > 0 && p.BaseImages.Interval < time.Minute) {
		return fmt.Errorf("pipeline.base_images.interval %s: must be 0 (off) or at least 1m", p.BaseImages.Interval)
	}
	if p.BaseImages.Concurrency < 0 || p.BaseImages.MaxBackoff < 0 {
		return fmt.Errorf("pipeline.base_images: concurrency and max_backoff must not be negative")
	}
	for i, r := range p.Poll.Repos {
		if r == "" {
			return fmt.Errorf("pipeline.poll.repos[%d]: empty prefix", i)
		}
	}
	return nil
}

// webhookHosts are the hosts of the forges that send cccp webhooks.
func (c *serveConfig) webhookHosts() map[string]bool {
	hosts := map[string]bool{}
	for _, f := range []struct {
		cfg  forgeConfig
		host string // of the public service
	}{{c.GitHub, "github.com"}, {c.GitLab, "gitlab.com"}, {c.Gitea, ""}} {
		if f.cfg.WebhookSecret == "" {
			continue
		}
		h := f.host
		if f.cfg.BaseURL != "" {
			h = gitHost(f.cfg.BaseURL)
			h = strings.TrimPrefix(h, "api.") // api.github.com serves github.com
		}
		if h != "" {
			hosts[h] = true
		}
	}
	return hosts
}

// gitHost is the host of a git URL (https://host/..., ssh://git@host/...,
// or git@host:path), lower-cased, without port.
func gitHost(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return strings.ToLower(u.Hostname())
	}
	if at := strings.Index(raw, "@"); at >= 0 {
		if host, _, ok := strings.Cut(raw[at+1:], ":"); ok {
			return strings.ToLower(host)
		}
	}
	return ""
}

// polled tells whether an entry's repository is polled.
func (c *serveConfig) polled(gitURL string, hooked map[string]bool) bool {
	if len(c.Pipeline.Poll.Repos) > 0 {
		for _, p := range c.Pipeline.Poll.Repos {
			if strings.HasPrefix(gitURL, p) {
				return true
			}
		}
		return false
	}
	return !hooked[gitHost(gitURL)]
}

// enqueuer queues runs (the pipeline's Runner).
type enqueuer interface {
	Enqueue(ctx context.Context, req pipeline.Request) (*store.Run, error)
}

// watchedIndex is what the watchers read of the live index.
type watchedIndex interface {
	Entries() []*index.Entry
	Entry(key string) (*index.Entry, bool)
}

// startWatchers starts polling branch heads and watching base images, as
// configured, until ctx ends.
func startWatchers(ctx context.Context, cfg *serveConfig, runner enqueuer, db *store.DB, idx watchedIndex,
	head func(ctx context.Context, ref string) (string, error), log *slog.Logger) error {
	if err := cfg.validateWatch(); err != nil {
		return err
	}
	if iv := cfg.Pipeline.Poll.Interval; iv > 0 {
		hooked := cfg.webhookHosts()
		p, err := poll.New(poll.Config{
			Interval: iv,
			Targets: func() []poll.Target {
				var out []poll.Target
				for _, e := range idx.Entries() {
					if cfg.polled(e.GitURL, hooked) {
						out = append(out, poll.Target{Key: e.Key(), GitURL: e.GitURL, Branch: e.GitBranch})
					}
				}
				return out
			},
			LsRemote: gitsrc.LsRemote,
			Meta:     db,
			Queue: func(ctx context.Context, key, commit string, cause store.Cause) error {
				_, err := runner.Enqueue(ctx, pipeline.Request{Project: key, Kind: types.KindBranch, Commit: commit, Cause: cause})
				return err
			},
			Logger: log.With("component", "poll"),
		})
		if err != nil {
			return err
		}
		go p.Run(ctx)
	}
	if iv := cfg.Pipeline.BaseImages.Interval; iv > 0 {
		w, err := basewatch.New(basewatch.Config{
			Interval: iv,
			Images: func(ctx context.Context) ([]basewatch.Watched, error) {
				runs, err := db.LatestRuns(ctx, string(types.KindBranch))
				if err != nil && len(runs) == 0 {
					return nil, err
				}
				return basewatch.Collect(runs, func(key string) bool { _, ok := idx.Entry(key); return ok }), nil
			},
			Head: head,
			Meta: db,
			Queue: func(ctx context.Context, key string, cause store.Cause) error {
				_, err := runner.Enqueue(ctx, pipeline.Request{Project: key, Kind: types.KindBranch, Cause: cause})
				return err
			},
			Concurrency: cfg.Pipeline.BaseImages.Concurrency,
			MaxBackoff:  cfg.Pipeline.BaseImages.MaxBackoff,
			Logger:      log.With("component", "basewatch"),
		})
		if err != nil {
			return err
		}
		go w.Run(ctx)
	}
	return nil
}
