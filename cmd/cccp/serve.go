package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/cccp-project/cccp/bot"
	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/gitea"
	"github.com/cccp-project/cccp/bot/github"
	"github.com/cccp-project/cccp/bot/gitlab"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/liveindex"
	"github.com/cccp-project/cccp/internal/notify"
	"github.com/cccp-project/cccp/internal/onboard"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/rescan"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
	"github.com/cccp-project/cccp/internal/web"
)

func newServeCommand() *cobra.Command {
	var (
		configPath string
		indexPath  string
		listen     string
		data       string
		verbose    bool
		allowFile  bool
		debugAddr  string
	)
	cmd := &cobra.Command{
		Use:   "serve [--config FILE]",
		Short: "Run cccp as a service: web UI and API, forge webhooks, pipeline workers and the embedded registry",
		Long: `serve runs everything cccp is: the web UI and its JSON API, the webhook
endpoints of the configured forges (/webhooks/github, /webhooks/gitlab,
/webhooks/gitea), /healthz, /readyz and /metrics, the pipeline workers and the
embedded registry. Without any forge configured it serves the web UI and runs
pipelines for the local index (started from the UI, the API or a rescan).

Secrets come from the configuration file or from the environment:
CCCP_GITHUB_WEBHOOK_SECRET, CCCP_GITHUB_TOKEN, CCCP_GITLAB_WEBHOOK_SECRET,
CCCP_GITLAB_TOKEN, CCCP_GITEA_WEBHOOK_SECRET, CCCP_GITEA_TOKEN,
CCCP_ADMIN_TOKENS (comma-separated), CCCP_READ_TOKENS, CCCP_SESSION_KEY,
CCCP_METRICS_TOKEN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServeConfigWith(configPath, os.Getenv, func(c *serveConfig) {
				if indexPath != "" {
					c.Index.Path = indexPath
				}
				if listen != "" {
					c.Listen = listen // base_url, when not set, follows it
				}
				if data != "" {
					c.Data = data
				}
				c.Index.AllowFileURLs = c.Index.AllowFileURLs || allowFile
				if debugAddr != "" {
					c.DebugListen = debugAddr
				}
			})
			if err != nil {
				return usageError{err}
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			return serve(cmd.Context(), cmd.ErrOrStderr(), cfg, log)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "configuration file (YAML); see deploy/config.example.yaml")
	cmd.Flags().StringVar(&indexPath, "index", "", "the container index on this machine (overrides index.path)")
	cmd.Flags().StringVar(&listen, "listen", "", "address to serve on (overrides listen; default 127.0.0.1:8080)")
	cmd.Flags().StringVar(&data, "data", "", "folder for cccp's state (overrides data)")
	cmd.Flags().BoolVar(&allowFile, "allow-file-urls", false, "allow file:// git URLs in the index")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	cmd.Flags().StringVar(&debugAddr, "debug-listen", "", "serve Go's profiler (/debug/pprof/) on this address, apart from the web UI; loopback only")
	return cmd
}

// serve wires and runs the service until ctx ends.
func serve(ctx context.Context, stderr io.Writer, cfg *serveConfig, log *slog.Logger) error {
	masker := redact.NewMasker(cfg.secrets()...)
	// Prebuild and test scripts come from the repositories being built and
	// inherit cccp's environment: the secrets read from it leave it now.
	for _, name := range secretEnv {
		os.Unsetenv(name)
	}
	tester, err := openTestBackend(ctx, &cfg.Pipeline.Test, log)
	if err != nil {
		return err
	}
	idx := newIndexHolder(cfg, log)
	if err := idx.prepare(ctx); err != nil {
		return err
	}

	var theBot *bot.Bot           // set below; the observer only reads it once serving
	var notifier *notify.Notifier // set below when mail is on (serve_notify.go)
	var botMu sync.RWMutex
	observe := func(r *store.Run) {
		botMu.RLock()
		b, n := theBot, notifier
		botMu.RUnlock()
		if b != nil {
			b.Observe(r)
		}
		if n != nil && r.State.Done() {
			n.Wake()
		}
	}
	f := &envFlags{data: cfg.Data, registry: cfg.Registry.External, registryAddr: cfg.Registry.Address,
		insecure: cfg.Registry.Insecure, aliases: cfg.Registry.Aliases, workers: cfg.Pipeline.Workers, logMaxBytes: cfg.Pipeline.LogMaxBytes,
		stageTimeout: cfg.Pipeline.StageTimeout, maxResumes: cfg.Pipeline.MaxResumes, maxConcurrent: cfg.maxConcurrent(),
		buildStorage: cfg.Pipeline.Build.Storage}
	f.buildUser, f.buildUserSet = cfg.Pipeline.Build.buildUser()
	env, err := openPipeline(ctx, f, log, observe, pipelineOptions{blocking: cfg.Pipeline.Blocking, chainChildren: true, graph: idx.children,
		entries: idx.live.Entry, tester: tester, openshift: cfg.Pipeline.Build.openShiftBackend(), openshiftConnect: cfg.Pipeline.Build.connect,
		signing: signingOptions{keyFile: cfg.Signing.KeyFile, parents: cfg.Signing.Parents, sbomFormat: cfg.Signing.SBOMFormat, baseURL: cfg.BaseURL}})
	if err != nil {
		return err
	}
	defer env.Close(context.WithoutCancel(ctx))
	projects := idx.live.Values()
	removed := &removals{db: env.db, images: env.client, policy: cfg.Index.Removed, keys: idx.keys, log: log.With("component", "index"), now: time.Now}
	idx.afterLoad = removed.note
	if _, err := idx.reload(ctx); err != nil {
		return err
	}

	n, outbox, err := startNotifier(ctx, cfg, env, idx, masker, log)
	if err != nil {
		return err
	}
	botMu.Lock()
	notifier = n
	botMu.Unlock()

	actions := runActions{runner: env.runner}
	var onboarder web.Onboarder = &onboard.Local{Root: cfg.Index.Path, Queue: firstBuild{idx: idx, runner: env.runner}}
	forges, err := openForges(cfg, log)
	if err != nil {
		return err
	}
	if cfg.Index.Repo != "" {
		if pr, ok := forges[cfg.Index.Forge].Client.(onboard.PullRequester); ok {
			onboarder = &onboard.Forge{Root: cfg.Index.Path, Repo: cfg.Index.Repo, Base: cfg.Index.Branch, PR: pr}
		}
	}
	var sessionKey []byte
	if cfg.Web.SessionKey != "" {
		sessionKey = []byte(cfg.Web.SessionKey)
	}
	var deliveries web.Deliveries
	if len(forges) > 0 {
		deliveries = deliveryActions{db: env.db, bot: func() *bot.Bot { botMu.RLock(); defer botMu.RUnlock(); return theBot }}
	}
	sizer, err := serveRetention(ctx, cfg, env, idx.gitURLs, log) // serve_retention.go
	if err != nil {
		return err
	}
	signKey, err := loadSigningKey(cfg, log)
	if err != nil {
		return err
	}
	var mail rescan.Notifier // nil unless mail is on: a nil *notify.Notifier must not become a non-nil interface
	if n != nil {
		mail = n
	}
	rescans, err := newRescans(cfg, env, idx, mail, log)
	if err != nil {
		return err
	}
	ui, err := web.New(web.Config{
		Rescans: env.db, RescanProgress: rescans.progress, StartRescan: rescans.starter(ctx), RemovedOn: removed.removedOn,
		SigningKey: signKey.PublicKeyPEM(),
		BaseURL:    cfg.BaseURL, Runs: env.db, Backup: env.db, Logs: env.logs, Projects: projects, Actions: actions, Onboarder: onboarder,
		Deliveries: deliveries, SBOMs: sbomPanel{reg: env.client}, Outbox: outbox, Cascades: env.db, DataSizes: dataSizes(sizer),
		Masker: masker, AdminTokens: cfg.Web.AdminTokens, ReadTokens: cfg.Web.ReadTokens, SessionKey: sessionKey,
		InsecureCookie: !registry.IsLoopback(cfg.Listen) && len(cfg.BaseURL) > 5 && cfg.BaseURL[:5] == "http:",
		Sessions:       web.StoreSessions(env.db),
		Logger:         log.With("component", "web"),
	})
	if err != nil {
		return err
	}

	// The runner resumes unfinished runs before the bot works stored
	// deliveries, so no run is queued twice.
	if err := env.runner.Start(ctx); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", ui.Handler())
	var metricsFrom http.Handler // the bot's own metrics, when it runs
	if len(forges) > 0 {
		b, err := bot.New(bot.Config{
			Store: env.db, Pipeline: env.runner, Forges: forges, Entries: idx.entries,
			Index: bot.IndexRepo{Forge: cfg.Index.Forge, FullName: cfg.Index.Repo},
			IndexPR: &bot.GitIndexPR{WorkDir: env.workDir(), Current: idx.entries,
				Lint: cfg.lintOptions()},
			ReloadIndex: idx.reloadOnPush,
			BaseURL:     cfg.BaseURL, LogTail: env.logs.Tail, LogLines: cfg.CommentLogLines, Masker: masker, Keep: cfg.Keep, BuildDrafts: cfg.BuildDrafts,
			Logger: log.With("component", "bot"),
		})
		if err != nil {
			return err
		}
		botMu.Lock()
		theBot = b
		botMu.Unlock()
		for _, p := range []string{"/webhooks/", "/healthz", "/readyz"} {
			mux.Handle(p, b)
		}
		metricsFrom = b
		go func() {
			if err := b.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("bot stopped", "err", err)
			}
		}()
	} else {
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	}
	extra := append(registryMetrics(env.reg), buildUsernsMetric(env.buildUserns))
	extra = append(extra, buildCacheMetrics(env)...) // build_storage.go
	mux.Handle("/metrics", web.RequireToken(cfg.Web.MetricsToken, withDataMetrics(metricsFrom, sizer, log, append(extra, rescans.metrics()...)...)))

	if err := startWatchers(ctx, cfg, env.runner, env.db, idx.live, env.bases.Head, log); err != nil {
		return err
	}
	rescans.start(ctx)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// No WriteTimeout: live logs stream for as long as a stage runs.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	fmt.Fprintf(stderr, "cccp: serving %s (web UI, API%s)\n", cfg.BaseURL, forgeList(forges))
	if env.reg != nil {
		fmt.Fprintf(stderr, "cccp: embedded registry at %s\n", env.reg.Host())
	}
	if cfg.DebugListen != "" {
		stop, err := serveDebug(cfg.DebugListen, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdown)
	// Let running stages stop their tools and remove their containers and
	// checkouts before the store and the registry close.
	select {
	case <-env.runner.Stopped():
	case <-time.After(30 * time.Second):
		log.Warn("pipeline workers still busy at shutdown")
	}
	return err
}

func forgeList(forges map[string]bot.Forge) string {
	s := ""
	for name := range forges {
		s += ", /webhooks/" + name
	}
	return s
}

// openForges builds the configured forge adapters.
func openForges(cfg *serveConfig, log *slog.Logger) (map[string]bot.Forge, error) {
	forges := map[string]bot.Forge{}
	if c := cfg.GitHub; c.enabled() {
		wh, err := github.NewWebhook([]byte(c.WebhookSecret))
		if err != nil {
			return nil, fmt.Errorf("github: %w", err)
		}
		var client bot.Client
		if c.AppID != 0 {
			pem, err := os.ReadFile(c.PrivateKeyFile)
			if err != nil {
				return nil, fmt.Errorf("github: private key: %w", err)
			}
			client, err = github.NewAppClient(github.AppConfig{AppID: c.AppID, PrivateKeyPEM: pem, BaseURL: c.BaseURL})
			if err != nil {
				return nil, fmt.Errorf("github: %w", err)
			}
		} else {
			client, err = github.NewTokenClient(github.TokenConfig{Token: c.Token, BaseURL: c.BaseURL})
			if err != nil {
				return nil, fmt.Errorf("github: %w", err)
			}
		}
		forges[event.GitHub] = bot.Forge{Webhook: wh, Client: client, Secret: c.WebhookSecret}
	}
	if c := cfg.GitLab; c.enabled() {
		wh, err := gitlab.NewWebhook([]byte(c.WebhookSecret))
		if err != nil {
			return nil, fmt.Errorf("gitlab: %w", err)
		}
		client, err := gitlab.NewClient(gitlab.Config{Token: c.Token, BaseURL: c.BaseURL})
		if err != nil {
			return nil, fmt.Errorf("gitlab: %w", err)
		}
		forges[event.GitLab] = bot.Forge{Webhook: wh, Client: client, Secret: c.WebhookSecret}
	}
	if c := cfg.Gitea; c.enabled() {
		wh, err := gitea.NewWebhook([]byte(c.WebhookSecret))
		if err != nil {
			return nil, fmt.Errorf("gitea: %w", err)
		}
		client, err := gitea.NewClient(gitea.Config{Token: c.Token, BaseURL: c.BaseURL})
		if err != nil {
			return nil, fmt.Errorf("gitea: %w", err)
		}
		forges[event.Gitea] = bot.Forge{Webhook: wh, Client: client, Secret: c.WebhookSecret}
	}
	return forges, nil
}

// indexHolder loads the index for the one live index (internal/liveindex),
// which the pipeline, the web UI and the bot read.
type indexHolder struct {
	cfg  *serveConfig
	log  *slog.Logger
	live *liveindex.Live
	// afterLoad, when set, runs after each successful load (index changes:
	// serve_removed.go).
	afterLoad func(context.Context)
}

func newIndexHolder(cfg *serveConfig, log *slog.Logger) *indexHolder {
	h := &indexHolder{cfg: cfg, log: log}
	h.live = liveindex.New(h.load)
	return h
}

// prepare clones the index repository when one is configured and the
// folder is not a checkout yet.
func (h *indexHolder) prepare(ctx context.Context) error {
	if h.cfg.Index.GitURL == "" {
		return nil
	}
	if _, err := os.Stat(h.cfg.Index.Path + "/.git"); err == nil {
		return nil
	}
	return gitsrc.Clone(ctx, h.cfg.Index.GitURL, h.cfg.Index.Path, gitsrc.CloneOptions{Branch: h.cfg.Index.Branch})
}

// load reads the index from disk; entries with lint errors are still
// served (the PR that added them was checked), but the errors are logged.
func (h *indexHolder) load(ctx context.Context) (*index.Index, error) {
	idx, findings, err := index.Load(ctx, h.cfg.Index.Path, index.LoadOptions{})
	if err != nil {
		return nil, fmt.Errorf("load index: %w", err)
	}
	findings = append(findings, index.Lint(idx, h.cfg.lintOptions())...)
	for _, f := range findings {
		if f.Severity == index.Error {
			h.log.Warn("index", "finding", f.String())
		}
	}
	return idx, nil
}

// reload reloads the live index and returns the keys of entries that are
// new since the last load.
func (h *indexHolder) reload(ctx context.Context) ([]string, error) {
	added, err := h.live.Reload(ctx)
	if err == nil {
		h.log.Info("index loaded", "entries", len(h.live.Entries()), "new", len(added))
		if h.afterLoad != nil {
			h.afterLoad(ctx)
		}
	}
	return added, err
}

// reloadOnPush pulls the index repository (when cccp keeps a checkout)
// and reloads it, under the live index's reload lock: two pushes never
// swap the same checkout at once.
func (h *indexHolder) reloadOnPush(ctx context.Context, _ *event.Event) ([]string, error) {
	added, err := h.live.ReloadAfter(ctx, h.pull)
	if err == nil {
		h.log.Info("index loaded", "entries", len(h.live.Entries()), "new", len(added))
		if h.afterLoad != nil {
			h.afterLoad(ctx)
		}
	}
	return added, err
}

func (h *indexHolder) pull(ctx context.Context) error {
	if h.cfg.Index.GitURL == "" {
		return nil
	}
	dir := h.cfg.Index.Path
	tmp := dir + ".new"
	os.RemoveAll(tmp)
	if err := gitsrc.Clone(ctx, h.cfg.Index.GitURL, tmp, gitsrc.CloneOptions{Branch: h.cfg.Index.Branch}); err != nil {
		return fmt.Errorf("pull index: %w", err)
	}
	old := dir + ".old"
	os.RemoveAll(old)
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("swap index checkout: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("swap index checkout: %w", err)
	}
	os.RemoveAll(old)
	return nil
}

func (h *indexHolder) entries() []*index.Entry { return h.live.Entries() }

func (h *indexHolder) keys() []string { return h.live.Keys() }

// children gives the keys of the entries built FROM the entry of key.
func (h *indexHolder) children(key string) []string { return h.live.Children(key) }

// runActions are the web UI's re-run and cancel.
type runActions struct{ runner *pipeline.Runner }

func (a runActions) Rerun(ctx context.Context, run *store.Run, actor string) (*store.Run, error) {
	cause := run.Cause
	cause.Kind, cause.Actor, cause.Detail, cause.DeliveryID = "manual", actor, "re-run of run "+run.ID, ""
	entry, err := pipeline.EntryOf(run) // a trial run re-runs what was proposed
	if err != nil {
		return nil, err
	}
	nr, err := a.runner.Enqueue(ctx, pipeline.Request{Project: run.Project, Kind: run.Kind, Cause: cause,
		GitURL: run.GitURL, Branch: run.Branch, Commit: run.Commit, Entry: entry, Digest: testedDigest(run), Force: true})
	if errors.Is(err, pipeline.ErrUnknownProject) {
		return nil, fmt.Errorf("%s: %w", run.Project, web.ErrNotInIndex)
	}
	return nr, err
}

func (a runActions) Cancel(ctx context.Context, id, actor string) error {
	return a.runner.Cancel(ctx, id, "cancelled by "+actor)
}

// firstBuild queues the first build of an entry onboarded locally.
type firstBuild struct {
	idx    *indexHolder
	runner *pipeline.Runner
}

func (q firstBuild) QueueFirst(ctx context.Context, e index.Entry, actor string) (string, error) {
	if _, err := q.idx.reload(ctx); err != nil {
		return "", err
	}
	run, err := q.runner.Enqueue(ctx, pipeline.Request{Project: e.Key(), Kind: types.KindBranch,
		Cause: store.Cause{Kind: types.CauseIndex, Actor: actor, Detail: "onboarded"}})
	if err != nil {
		return "", err
	}
	return run.ID, nil
}

// deliveryActions lists the deliveries in trouble from the store and
// replays through the bot, which wakes its dispatcher.
type deliveryActions struct {
	db  *store.DB
	bot func() *bot.Bot
}

func (d deliveryActions) TroubledDeliveries(ctx context.Context, limit int) ([]store.DeliveryTrouble, error) {
	return d.db.TroubledDeliveries(ctx, limit)
}

func (d deliveryActions) GivenUpReports(ctx context.Context, limit int) ([]store.Report, error) {
	return d.db.GivenUpReports(ctx, limit)
}

func (d deliveryActions) ReplayDelivery(ctx context.Context, forge, id string) error {
	if b := d.bot(); b != nil {
		return b.ReplayDelivery(ctx, forge, id)
	}
	return d.db.ReplayDelivery(ctx, forge, id)
}
