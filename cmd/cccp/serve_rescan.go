package main

import (
	"context"
	"log/slog"

	"github.com/cccp-project/cccp/internal/rescan"
)

// startRescans runs the configured rescans of delivered images until ctx
// ends, and returns the Scanner (nil when rescans are off) for the API.
// notifier tells entries' notify-email about changed findings; nil sends
// nothing (the email outbox satisfies rescan.Notifier).
func startRescans(ctx context.Context, cfg *serveConfig, env *pipelineEnv, idx *indexHolder, notifier rescan.Notifier, log *slog.Logger) (*rescan.Scanner, error) {
	log = log.With("component", "rescan")
	if m := cfg.Pipeline.Rescan.migration(); m != "" {
		log.Warn(m)
	}
	sched, err := rescan.ParseSchedule(cfg.Pipeline.Rescan.Schedule)
	if err != nil || sched == nil {
		return nil, err
	}
	s, err := rescan.New(rescan.Config{Runner: env.runner, Store: env.db, Entries: idx.entries, Notifier: notifier,
		Parallel: cfg.Pipeline.Rescan.Parallel, BaseURL: cfg.BaseURL, Logger: log})
	if err != nil {
		return nil, err
	}
	go s.Run(ctx, sched)
	return s, nil
}
