package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/retention"
	"github.com/cccp-project/cccp/internal/web"
)

// dataParts are the parts of the data folder that /metrics and the status
// page measure (whatever else is in it counts as "other").
var dataParts = map[string]string{"db": "cccp.db", "logs": "logs", "registry": "registry/storage", "work": "work"}

// newPruner carries out the configured retention over env; with the
// embedded registry each round ends with its garbage collection.
func newPruner(cfg retentionConfig, st *stateEnv, client *registry.Client, reg *registry.Embedded, log *slog.Logger) (*retention.Pruner, error) {
	var gc func(ctx context.Context) error
	if reg != nil {
		gc = func(ctx context.Context) error { _, err := reg.GC(ctx, false); return err }
	}
	return retention.New(retention.Config{Policy: cfg.policy(), Store: st.db, Logs: st.logs, Registry: client,
		GC: gc, Mail: st.db, Logger: log.With("component", "retention")})
}

// serveRetention starts retention (and the registry's garbage collection)
// on its schedule and returns the measure of the data folder.
func serveRetention(ctx context.Context, cfg *serveConfig, env *pipelineEnv, log *slog.Logger) (*retention.Sizer, error) {
	sizer := retention.NewSizer(env.data, dataParts, 0)
	if !cfg.Retention.enabled() && env.reg == nil {
		return sizer, nil
	}
	p, err := newPruner(cfg.Retention, env.stateEnv, env.client, env.reg, log)
	if err != nil {
		return nil, err
	}
	go p.Loop(ctx, cfg.Retention.every())
	return sizer, nil
}

// withDataMetrics appends the data folder's sizes to the metrics h writes
// (h nil: only those). h is asked for plain, uncompressed Prometheus text,
// so that the lines appended after it belong to the same exposition.
func withDataMetrics(h http.Handler, sizer *retention.Sizer, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h != nil {
			r = r.Clone(r.Context())
			r.Header.Del("Accept-Encoding")
			r.Header.Set("Accept", "text/plain; version=0.0.4")
			h.ServeHTTP(w, r)
		} else {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		}
		if err := sizer.WriteMetrics(r.Context(), w); err != nil {
			log.Warn("data folder metrics", "err", err)
		}
	})
}

// dataSizes adapts the Sizer to the web status page.
func dataSizes(s *retention.Sizer) func(ctx context.Context) ([]web.DataPart, error) {
	return func(ctx context.Context) ([]web.DataPart, error) {
		parts, err := s.Sizes(ctx)
		out := make([]web.DataPart, 0, len(parts))
		for _, p := range parts {
			out = append(out, web.DataPart{Name: p.Name, Bytes: p.Bytes})
		}
		return out, err
	}
}

// retentionSummary counts what a Prune removed, or would remove.
func retentionSummary(res retention.Result) string {
	verb := "pruned"
	if res.DryRun {
		verb = "would prune"
	}
	return fmt.Sprintf("cccp: %s %d runs, %d run tags, %d given-up mails", verb, len(res.Runs), len(res.Tags), len(res.Mails))
}

// newRetentionCommand: `cccp retention [--dry-run]` prunes once, with cccp
// serve stopped (it holds the database).
func newRetentionCommand() *cobra.Command {
	var (
		f      envFlags
		config string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "retention --config FILE [--dry-run]",
		Short: "Prune old runs, their logs and run tags, and mail given up for good, by the configured retention policy, then collect the embedded registry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := loadServeConfigWith(config, os.Getenv, func(c *serveConfig) {
				if c.Index.Path == "" {
					c.Index.Path = "." // not used here
				}
			})
			if err != nil {
				return usageError{err}
			}
			if !cfg.Retention.enabled() {
				return usageError{fmt.Errorf("%s sets no retention policy (retention.keep_last or retention.keep_for)", config)}
			}
			if cfg.Data != "" && !cmd.Flags().Changed("data") {
				f.data = cfg.Data
			}
			log := f.logger(cmd.ErrOrStderr())
			// Holding cccp's database lock proves no cccp serve uses DATA.
			st, err := openState(&f, log)
			if err != nil {
				return fmt.Errorf("%w (is cccp serve using %s? stop it first)", err, f.data)
			}
			defer st.Close()
			var reg *registry.Embedded
			var creds map[string]registry.Credentials
			if cfg.Registry.External == "" {
				// At its own address: the runs' image references name it.
				addr := cfg.Registry.Address
				if addr == "" {
					addr = DefaultRegistryAddr
				}
				if reg, err = registry.Start(ctx, registry.Config{Dir: filepath.Join(f.data, "registry"), Addr: addr, Logger: log}); err != nil {
					return err
				}
				defer reg.Close(context.WithoutCancel(ctx))
				user, pass := reg.PushCredentials()
				creds = map[string]registry.Credentials{reg.Host(): {User: user, Password: pass}}
			}
			client := registry.NewClient(registry.ClientConfig{Insecure: cfg.Registry.Insecure, Credentials: creds, Logger: log})
			p, err := newPruner(cfg.Retention, st, client, reg, log)
			if err != nil {
				return err
			}
			res, err := p.Prune(ctx, dryRun)
			if err != nil {
				return err
			}
			if res.Kept != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "cccp: kept: %v\n", res.Kept)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), retentionSummary(res))
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&config, "config", "", "cccp serve's configuration file (its retention section)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be pruned, prune nothing")
	return cmd
}
