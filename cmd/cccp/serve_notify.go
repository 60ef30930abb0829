package main

import (
	"context"
	"log/slog"

	"github.com/cccp-project/cccp/internal/notify"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/web"
)

// startNotifier starts the mail of finished builds when notify.smtp.host is
// set, and returns the Notifier (nil when mail is off) and the outbox for
// the API. Other parts queue their own mail with notifier.Notify.
func startNotifier(ctx context.Context, cfg *serveConfig, env *pipelineEnv, idx *indexHolder, masker *redact.Masker,
	log *slog.Logger) (*notify.Notifier, web.Outbox, error) {
	if !cfg.Notify.enabled() {
		return nil, nil, nil
	}
	sender, err := cfg.Notify.sender()
	if err != nil {
		return nil, nil, err
	}
	n, err := notify.New(notify.Config{
		Store: env.db, Sender: sender, Audience: idx.audience,
		BaseURL: cfg.BaseURL, OnSuccess: *cfg.Notify.Email.OnSuccess,
		LogTail: env.logs.Tail, LogLines: cfg.Notify.Email.LogLines, Masker: masker,
		Logger: log.With("component", "notify"),
	})
	if err != nil {
		return nil, nil, err
	}
	go n.Run(ctx)
	log.Info("mail of finished builds on", "smtp", cfg.Notify.SMTP.Host, "from", cfg.Notify.SMTP.From)
	return n, env.db, nil
}

// audience is who hears about a project's runs: its entry's notify-email
// and notify-on-success. A project gone from the index hears nothing.
func (h *indexHolder) audience(project string) notify.Audience {
	e, ok := h.live.Entry(project)
	if !ok {
		return notify.Audience{}
	}
	a := notify.Audience{To: e.NotifyEmail}
	if on, set := e.NotifySuccess(); set {
		a.OnSuccess = &on
	}
	return a
}
