// Package poll watches the branches of repositories whose forge sends cccp
// no webhooks: on a schedule it lists each repository's branch heads with
// one `git ls-remote` (covering every branch that any entry builds from
// it), compares them with the heads it saw last (kept in the store), and
// queues a run of every entry whose branch moved.
//
// A branch seen for the first time is only remembered: starting to poll
// does not rebuild an index that was built already.
package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// MetaNS is the store namespace of the last seen heads: key
// `<git-url> <branch>`, value the commit.
const MetaNS = "poll-heads"

// Target is one entry to watch.
type Target struct {
	Key    string // the entry's key, app-id/job-id:desired-tag
	GitURL string
	Branch string
}

// Meta keeps the last seen heads.
type Meta interface {
	GetMeta(ctx context.Context, ns, key string) ([]byte, error)
	PutMeta(ctx context.Context, ns, key string, val []byte) error
}

// Defaults of Config.
const (
	DefaultConcurrency = 4
	DefaultTimeout     = time.Minute
)

// Config is what a Poller needs; Targets, LsRemote, Meta and Queue are
// required.
type Config struct {
	// Interval between rounds; Run needs it above zero.
	Interval time.Duration
	// Targets are the entries to watch now (read every round, so an index
	// reload is seen).
	Targets func() []Target
	// LsRemote lists a repository's refs (gitsrc.LsRemote).
	LsRemote func(ctx context.Context, url string) (map[string]string, error)
	Meta     Meta
	// Queue queues a branch run of the entry key at commit.
	Queue func(ctx context.Context, key, commit string, cause store.Cause) error
	// Concurrency is how many repositories are asked at once (default
	// DefaultConcurrency); Timeout bounds one ls-remote (default
	// DefaultTimeout).
	Concurrency int
	Timeout     time.Duration
	Logger      *slog.Logger
}

// Poller polls branch heads.
type Poller struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg.
func New(cfg Config) (*Poller, error) {
	if cfg.Targets == nil || cfg.LsRemote == nil || cfg.Meta == nil || cfg.Queue == nil {
		return nil, errors.New("poll: Targets, LsRemote, Meta and Queue are required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Poller{cfg: cfg, log: cfg.Logger}, nil
}

// Result counts what one round did.
type Result struct {
	Repos  int // repositories asked (one ls-remote each)
	Queued int // runs queued
	Failed int // repositories that could not be asked
}

// Run polls every Interval until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	if p.cfg.Interval <= 0 {
		return
	}
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		res, err := p.Round(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Warn("poll branch heads", "err", err)
		} else if res.Queued > 0 {
			p.log.Info("polled branch heads", "repos", res.Repos, "queued", res.Queued)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round asks every watched repository for its heads once and queues the
// runs of the branches that moved. A repository that cannot be asked is
// skipped (and counted) until the next round; the error then joins each
// such failure.
func (p *Poller) Round(ctx context.Context) (Result, error) {
	// url -> branch -> entry keys
	repos := map[string]map[string][]string{}
	for _, t := range p.cfg.Targets() {
		if t.GitURL == "" || t.Branch == "" {
			continue
		}
		if repos[t.GitURL] == nil {
			repos[t.GitURL] = map[string][]string{}
		}
		repos[t.GitURL][t.Branch] = append(repos[t.GitURL][t.Branch], t.Key)
	}
	urls := make([]string, 0, len(repos))
	for u := range repos {
		urls = append(urls, u)
	}
	slices.Sort(urls)

	var mu sync.Mutex
	res := Result{Repos: len(urls)}
	var errs []error
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, u := range urls {
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
			n, err := p.repo(ctx, u, repos[u])
			mu.Lock()
			defer mu.Unlock()
			res.Queued += n
			if err != nil {
				res.Failed++
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return res, errors.Join(errs...)
}

// repo polls one repository: one ls-remote for all its branches.
func (p *Poller) repo(ctx context.Context, url string, branches map[string][]string) (int, error) {
	lctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	refs, err := p.cfg.LsRemote(lctx, url)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("poll %s: %w", redact.URL(url), err)
	}
	queued := 0
	var errs []error
	names := make([]string, 0, len(branches))
	for b := range branches {
		names = append(names, b)
	}
	slices.Sort(names)
	for _, branch := range names {
		head, ok := refs["refs/heads/"+branch]
		if !ok {
			errs = append(errs, fmt.Errorf("poll %s: no branch %s", redact.URL(url), branch))
			continue
		}
		key := redact.URL(url) + " " + branch
		last, err := p.cfg.Meta.GetMeta(ctx, MetaNS, key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// First sight: remember, build nothing.
		case err != nil:
			errs = append(errs, fmt.Errorf("poll %s: last head of %s: %w", redact.URL(url), branch, err))
			continue
		case string(last) == head:
			continue
		default:
			cause := store.Cause{Kind: types.CausePoll, Commit: head, Ref: "refs/heads/" + branch,
				Detail: fmt.Sprintf("branch %s moved from %s to %s", branch, short(string(last)), short(head))}
			failed := false
			for _, k := range branches[branch] {
				if err := p.cfg.Queue(ctx, k, head, cause); err != nil {
					errs = append(errs, fmt.Errorf("poll %s: queue %s: %w", redact.URL(url), k, err))
					failed = true
					continue
				}
				queued++
			}
			if failed {
				continue // not remembered: the next round queues again
			}
		}
		if err := p.cfg.Meta.PutMeta(ctx, MetaNS, key, []byte(head)); err != nil {
			errs = append(errs, fmt.Errorf("poll %s: remember head of %s: %w", redact.URL(url), branch, err))
		}
	}
	return queued, errors.Join(errs...)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
