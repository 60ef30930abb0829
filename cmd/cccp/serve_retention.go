package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/retention"
	"github.com/cccp-project/cccp/internal/web"
)

// dataParts are the parts of the data folder that /metrics and the status
// page measure (whatever else is in it counts as "other").
var dataParts = map[string]string{"db": "cccp.db", "logs": "logs", "registry": "registry/storage", "work": "work", "build-storage": "build-storage"}

// newPruner carries out the configured retention over env; with the
// embedded registry each round ends with its garbage collection. It prunes
// the git mirrors too, keeping those of urls (nil: age alone decides), and
// the builds' own storage (cache; nil: none).
func newPruner(cfg retentionConfig, st *stateEnv, client *registry.Client, reg *registry.Embedded,
	mirrors *gitsrc.Mirror, urls func(context.Context) (map[string]bool, error), cache retention.BuildCache, log *slog.Logger) (*retention.Pruner, error) {
	var gc func(ctx context.Context) error
	if reg != nil {
		gc = func(ctx context.Context) error { _, err := reg.GC(ctx, false); return err }
	}
	return retention.New(retention.Config{Policy: cfg.policy(), Store: st.db, Logs: st.logs, Registry: client,
		GC: gc, Mail: st.db, Mirrors: mirrors, MirrorsUnusedFor: cfg.MirrorsUnusedFor, MirrorURLs: urls,
		BuildCache: cache, BuildCacheUnusedFor: cfg.buildCacheUnusedFor(),
		Logger: log.With("component", "retention")})
}

// newMirrors is the git mirrors' folder in the data folder.
func newMirrors(data string) *gitsrc.Mirror {
	return &gitsrc.Mirror{Dir: filepath.Join(data, "mirrors")}
}

// gitURLs are the git URLs of the index's entries now, for the pruning of
// git mirrors; an error while the index has none (not loaded yet).
func (h *indexHolder) gitURLs(context.Context) (map[string]bool, error) {
	return entryURLs(h.live.Entries())
}

func entryURLs(entries []*index.Entry) (map[string]bool, error) {
	urls := map[string]bool{}
	for _, e := range entries {
		if e.GitURL != "" {
			urls[e.GitURL] = true
		}
	}
	if len(urls) == 0 {
		return nil, errors.New("the index has no git URLs (not loaded?)")
	}
	return urls, nil
}

// serveRetention starts retention (with the registry's garbage collection
// and the pruning of git mirrors) on its schedule and returns the measure
// of the data folder. urls are the index's git URLs.
func serveRetention(ctx context.Context, cfg *serveConfig, env *pipelineEnv, urls func(context.Context) (map[string]bool, error), log *slog.Logger) (*retention.Sizer, error) {
	sizer := retention.NewSizer(env.data, dataParts, 0)
	// Always: the git mirrors are pruned whatever the policy of runs.
	p, err := newPruner(cfg.Retention, env.stateEnv, env.client, env.reg, env.mirrors, urls, env.buildCache, log)
	if err != nil {
		return nil, err
	}
	go p.Loop(ctx, cfg.Retention.every())
	return sizer, nil
}

// withDataMetrics appends the data folder's sizes, and what each of extra
// writes, to the metrics h writes (h nil: only those). h is asked for
// plain, uncompressed Prometheus text, so that the lines appended after it
// belong to the same exposition.
func withDataMetrics(h http.Handler, sizer *retention.Sizer, log *slog.Logger, extra ...func(io.Writer) error) http.Handler {
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
		for _, write := range extra {
			if err := write(w); err != nil {
				log.Warn("metrics", "err", err)
			}
		}
	})
}

// registryMetrics are the embedded registry's metrics (reg nil: none).
func registryMetrics(reg *registry.Embedded) []func(io.Writer) error {
	if reg == nil {
		return nil
	}
	return []func(io.Writer) error{reg.WriteMetrics}
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
	return fmt.Sprintf("cccp: %s %d runs, %d run tags, %d given-up mails, %d images and containers of the build storage",
		verb, len(res.Runs), len(res.Tags), len(res.Mails), len(res.BuildCache))
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
			if !cmd.Flags().Changed("build-storage") {
				f.buildStorage = cfg.Pipeline.Build.Storage
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
			cache, err := cliBuildCache(&f, log) // build_storage.go
			if err != nil {
				return err
			}
			if cache != nil {
				defer cache.Close()
			}
			p, err := newPruner(cfg.Retention, st, client, reg, newMirrors(f.data), cliIndexURLs(cfg, config), buildCacheOf(cache), log)
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
	cmd.Flags().StringVar(&f.buildStorage, "build-storage", "", "the builds' container storage, if not the configuration's pipeline.build.storage (its images no build used are pruned too)")
	return cmd
}

// cliIndexURLs reads the git URLs of the index the configuration names,
// for `cccp retention`'s pruning of git mirrors; nil when it names none
// (age alone decides then).
func cliIndexURLs(cfg *serveConfig, config string) func(context.Context) (map[string]bool, error) {
	if cfg.Index.Path == "" || cfg.Index.Path == "." {
		return nil
	}
	return func(ctx context.Context) (map[string]bool, error) {
		idx, _, err := index.Load(ctx, cfg.Index.Path, index.LoadOptions{})
		if err != nil {
			return nil, fmt.Errorf("index of %s: %w", config, err)
		}
		return entryURLs(idx.Entries)
	}
}
