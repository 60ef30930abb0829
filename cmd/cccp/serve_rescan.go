package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/cccp-project/cccp/internal/rescan"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/web"
)

// rescans are the configured rescans of delivered images.
type rescans struct {
	scanner *rescan.Scanner // nil when rescans are off
	sched   rescan.Schedule
	log     *slog.Logger
}

// newRescans prepares the rescans of pipeline.rescan; notifier tells
// entries' notify-email about changed findings (nil sends nothing; the
// email outbox satisfies rescan.Notifier). Nothing runs before start.
func newRescans(cfg *serveConfig, env *pipelineEnv, idx *indexHolder, notifier rescan.Notifier, log *slog.Logger) (*rescans, error) {
	log = log.With("component", "rescan")
	if m := cfg.Pipeline.Rescan.migration(); m != "" {
		log.Warn(m)
	}
	sched, err := rescan.ParseSchedule(cfg.Pipeline.Rescan.Schedule)
	if err != nil || sched == nil {
		return &rescans{}, err
	}
	s, err := rescan.New(rescan.Config{Runner: env.runner, Store: env.db, Entries: idx.entries, Notifier: notifier,
		Parallel: cfg.Pipeline.Rescan.Parallel, Spread: cfg.Pipeline.Rescan.spread(), BaseURL: cfg.BaseURL, Logger: log})
	if err != nil {
		return nil, err
	}
	return &rescans{scanner: s, sched: sched, log: log}, nil
}

// start resumes the rescan a stop of cccp cut short, before anything can
// start another, then runs the rescans on their schedule until ctx ends.
func (r *rescans) start(ctx context.Context) {
	if r.scanner == nil {
		return
	}
	if err := r.scanner.Resume(ctx); err != nil {
		r.log.Error("rescan: resume", "err", err)
	}
	go r.scanner.Run(ctx, r.sched)
}

// metrics are the rescans' counters for /metrics (withDataMetrics'
// extra writers); none without a scanner.
func (r *rescans) metrics() []func(io.Writer) error {
	if r.scanner == nil {
		return nil
	}
	return []func(io.Writer) error{r.scanner.WriteMetrics}
}

// progress is the rescan under way, for the web UI.
func (r *rescans) progress() *store.Rescan {
	if r.scanner == nil {
		return nil
	}
	return r.scanner.Progress()
}

// starter starts a rescan now for the API, under ctx (the server's
// lifetime, not the request's); nil when rescans are off.
func (r *rescans) starter(ctx context.Context) func(actor string) (*store.Rescan, error) {
	if r.scanner == nil {
		return nil
	}
	return func(actor string) (*store.Rescan, error) {
		rs, err := r.scanner.Start(ctx, "manual by "+actor)
		if errors.Is(err, rescan.ErrBusy) {
			return nil, fmt.Errorf("%w: %w", web.ErrRescanBusy, err)
		}
		return rs, err
	}
}
