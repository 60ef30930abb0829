// Package bot turns forge webhooks into pipeline work and pipeline results
// into forge reports.
//
// Bot assembles parts with one job each, in the order a delivery travels:
//
//	bot/intake    cap the body, verify the sender, store the delivery (fsynced,
//	              deduplicated by the forge's own header rules: retry key,
//	              delivery ID), answer 202, hand it to the dispatcher
//	bot/dispatch  take stored deliveries (all due ones at start, so a crash
//	              loses nothing), process, finish in batches; a failure is
//	              put off to a stored next attempt, a permanent one given up
//	              (ReplayDelivery)
//	bot/route     pure decisions: the runs a push or pull request asks for,
//	              whether a git-url names the event's repository, approvals
//	bot (here)    route.go acts on them: push / pull request / index pull
//	              request / index push / comment commands (bot/commands) /
//	              check re-run -> pipeline requests, gated by the trust rule
//	              (trust.go: ok-to-test pinned to a head SHA)
//	bot (here)    report.go: every run change (recorded by the store in the
//	              run's own transaction) -> a forge status and the one PR
//	              comment, rendered (render.go) and put in the store's outbox
//	bot/report    the outbox: send due reports, back off honouring
//	              event.RetryableError, remember what was sent; and the
//	              pieces comments are assembled from
//
// Each part declares the narrow store interface it uses (intake.Store,
// dispatch.Store, report.Store); Store below is their union with what
// routing needs.
//
// Exactly once in effect: every run the bot creates carries the delivery ID
// in its store.Cause, and before creating a run for a delivery the router
// looks for a run of that project and delivery. A delivery routed but not
// finished before a crash is routed again after the restart, and finds its
// runs instead of creating second ones. Every other effect (comments edited
// by marker, statuses per target, approvals, cancellations) is idempotent.
//
// Wiring (cmd/cccp): the pipeline's Observer must call Bot.Observe, and the
// bot needs the pipeline, so declare the bot variable first:
//
//	var b *bot.Bot
//	runner, _ := pipeline.New(pipeline.Config{..., Observer: func(r *store.Run) { b.Observe(r) }})
//	b, err = bot.New(bot.Config{
//		Store: db, Pipeline: runner, Entries: currentEntries,
//		Forges: map[string]bot.Forge{event.GitHub: {Webhook: ghWebhook, Client: ghApp, Secret: secret}},
//		Index: bot.IndexRepo{Forge: event.GitHub, FullName: "org/index"},
//		IndexPR: &bot.GitIndexPR{WorkDir: dir, Current: currentEntries},
//		ReloadIndex: reload, BaseURL: "https://cccp.example", LogTail: logs.Tail,
//		Masker: redact.NewMasker(secrets...),
//	})
//	go b.Run(ctx)
//	mux.Handle("/", b) // /webhooks/{github,gitlab,gitea}, /healthz, /readyz, /metrics
//
// Bot state in the store's meta buckets: "bot-pr" (per pull request: head
// SHA, its runs, the index lint), "bot-ok-to-test" (approved head SHA per
// pull request), "bot-sent" (hash of the last report sent per target),
// "bot-command" (comments already acted on, by forge, repository and
// comment ID) and "bot-refused" (who got a refusal on which pull request).
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cccp-project/cccp/bot/dispatch"
	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/intake"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/store"
)

// Webhook verifies and parses one forge's deliveries (bot/github.Webhook
// and its GitLab and Gitea siblings): the intake verifies, the router
// parses.
type Webhook interface {
	intake.Webhook
	// Parse turns a verified delivery into an event; deliveries cccp does
	// not act on return an error wrapping event.ErrIgnored.
	Parse(headers http.Header, body []byte) (*event.Event, error)
}

// HeaderVerifier is a Webhook whose check needs only the headers (GitLab's
// token): it runs before the body is read.
type HeaderVerifier = intake.HeaderVerifier

// Client is what the bot asks of a forge's API: reports (report.Client),
// permission and pull-request look-ups.
type Client interface {
	report.Client
	CanWrite(ctx context.Context, repo, user string) (bool, error)
	// PullRequest looks up a pull request (comments carry no head SHA).
	PullRequest(ctx context.Context, repo string, number int) (*event.PullRequest, error)
	// Limit is the forge's comment size limit in bytes.
	Limit() int
}

// Forge is one configured forge.
type Forge struct {
	Webhook Webhook
	Client  Client
	// Secret is the webhook secret; only checked to be set, so that an
	// endpoint never runs without one. Verification is the Webhook's.
	Secret string
}

// Store is the part of internal/store the bot uses: what each of its parts
// declares it needs, and what routing and the reporter need besides.
type Store interface {
	intake.Store
	dispatch.Store
	report.Store

	// the reporter: run changes into the outbox in one transaction
	RunChanges(ctx context.Context, limit int) ([]store.RunChange, error)
	PutReports(ctx context.Context, reports []store.Report, ack []store.RunChange) error

	// routing's memory of pull requests, approvals and commands
	PutMeta(ctx context.Context, ns, key string, val []byte) error
	GetMeta(ctx context.Context, ns, key string) ([]byte, error)
	DeleteMeta(ctx context.Context, ns, key string) error
	PruneMeta(ctx context.Context, ns string, drop func(key string, val []byte) bool) (int, error)
	// (with the delivery -> runs links the pipeline checks, in the same
	// transaction: store.DB.DeliveryRun)
	PruneDeliveries(ctx context.Context, olderThan time.Time) (int, error)

	// runs, for exactly-once creation and the comment
	Run(ctx context.Context, id string) (*store.Run, error)
	Runs(ctx context.Context, f store.RunFilter) ([]*store.Run, error)
	LatestRuns(ctx context.Context, kind string) (map[string]*store.Run, error)
}

// Pipeline queues and cancels runs (internal/pipeline.Runner).
type Pipeline interface {
	Enqueue(ctx context.Context, req pipeline.Request) (*store.Run, error)
	Cancel(ctx context.Context, id, reason string) error
}

// IndexCheck is the result of checking an index pull request: lint of the
// entries it changes and of the whole index's structure.
type IndexCheck struct {
	// Changed are the new or changed entries, each with its own findings.
	Changed []IndexEntryCheck
	// Removed holds the keys of the entries the pull request removes.
	Removed []string
	// Structure holds whole-index findings: duplicates, cycles.
	Structure []index.Finding
}

// IndexEntryCheck is one new or changed entry of an index pull request.
type IndexEntryCheck struct {
	Entry    *index.Entry
	Findings []index.Finding
}

// IndexPR checks an index pull request: fetches its head (internal/gitsrc),
// loads the index there and lints what the pull request changes.
type IndexPR interface {
	Check(ctx context.Context, ev *event.Event) (*IndexCheck, error)
}

// IndexRepo names the index repository.
type IndexRepo struct {
	Forge    string // event.GitHub, ...
	FullName string // org/index
}

// Config configures a Bot. Store, Pipeline, Entries and at least one forge
// are required.
type Config struct {
	Store    Store
	Pipeline Pipeline
	// Forges by name (event.GitHub, event.GitLab, event.Gitea). A forge
	// without a Webhook, Client or Secret is refused.
	Forges map[string]Forge
	// Entries returns the current index entries.
	Entries func() []*index.Entry

	// Index is the index repository; zero when index PRs are not handled.
	Index IndexRepo
	// IndexPR checks index pull requests; required when Index is set.
	IndexPR IndexPR
	// ReloadIndex is called on a push to the index repository's default
	// branch; it reloads the index and returns the keys
	// (index.Entry.Key) of new entries, which get their first build.
	ReloadIndex func(ctx context.Context, ev *event.Event) (added []string, err error)

	// ResolveCommit returns the commit branch of gitURL points at; an index
	// pull request's trial builds are pinned to it when they are approved
	// (default: git ls-remote).
	ResolveCommit func(ctx context.Context, gitURL, branch string) (string, error)

	// BaseURL is cccp's web UI root; DetailsURL = BaseURL + "/runs/" + id.
	BaseURL string
	// LogTail returns the last n lines of a stage's log (runlog.Logs.Tail).
	LogTail func(runID, stage string, n int) ([]string, error)
	// LogLines is how many failed-stage log lines the comment shows
	// (default 20).
	LogLines int
	// Masker masks secret values in everything reported (default: masks
	// URL passwords only).
	Masker *redact.Masker

	// MaxBody caps a webhook body (default 25 MiB); larger ones get 413.
	MaxBody int64
	// BodyTimeout is how long a webhook body may take to arrive (default
	// 30 s); a slower sender is cut off.
	BodyTimeout time.Duration
	// MaxUnauthenticated caps the webhook requests whose body is being read
	// before they are authenticated (default 256); more get 503.
	MaxUnauthenticated int
	// Workers is the number of dispatcher workers (default 8; a worker
	// never waits for a forge to come back nor for its finish's commit).
	Workers int
	// RetryBase and RetryMax bound the exponential backoff of the outbox
	// and of routing (defaults 5 s and 30 min).
	RetryBase, RetryMax time.Duration
	// OutboxPoll is how often the outbox looks for due reports when
	// nothing signalled it (default 5 s).
	OutboxPoll time.Duration

	// BuildDrafts runs the pipelines of draft pull requests too; by
	// default a draft waits until it is marked ready.
	BuildDrafts bool

	// Keep is how long the IDs of processed deliveries (for deduplicating
	// redeliveries), given-up deliveries and the bot's memory of idle pull
	// requests and sent reports are kept (default 7 days: GitHub redelivers
	// up to 3 days back).
	Keep time.Duration

	// DiscardDeliveries makes the webhook endpoints verify and answer
	// without storing anything. For the ingest benchmark only: a server
	// with it set loses every event.
	DiscardDeliveries bool

	Logger *slog.Logger
	Now    func() time.Time // default time.Now
}

// ErrConfig is wrapped by New for an unusable configuration.
var ErrConfig = errors.New("bot: bad configuration")

// Bot is the webhook server, dispatcher and reporter, assembled from
// bot/intake, bot/dispatch and the router and reporter here. It is an
// http.Handler; Run starts its workers.
type Bot struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics
	intake  *intake.Intake
	disp    *dispatch.Dispatcher
	ready   <-chan struct{} // closed once Run read the pending deliveries
	started atomic.Bool

	outbox *report.Outbox
	tmpl   *report.Templates // the words of comments and statuses
	rep    *reporter
	prs    *keyedMutex
	trust  trustState // permission cache, reply rate limit (trust.go)
}

// New checks cfg and returns a Bot.
func New(cfg Config) (*Bot, error) {
	var missing []string
	if cfg.Store == nil {
		missing = append(missing, "Store")
	}
	if cfg.Pipeline == nil {
		missing = append(missing, "Pipeline")
	}
	if cfg.Entries == nil {
		missing = append(missing, "Entries")
	}
	if len(cfg.Forges) == 0 {
		missing = append(missing, "Forges")
	}
	if cfg.Index.FullName != "" && cfg.IndexPR == nil {
		missing = append(missing, "IndexPR")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: missing %v", ErrConfig, missing)
	}
	for name, f := range cfg.Forges {
		if name != event.GitHub && name != event.GitLab && name != event.Gitea {
			return nil, fmt.Errorf("%w: unknown forge %q", ErrConfig, name)
		}
		if f.Secret == "" {
			return nil, fmt.Errorf("%w: forge %s: %w", ErrConfig, name, event.ErrNoSecret)
		}
		if f.Webhook == nil || f.Client == nil {
			return nil, fmt.Errorf("%w: forge %s: Webhook and Client are required", ErrConfig, name)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LogLines <= 0 {
		cfg.LogLines = 20
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Minute
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 7 * 24 * time.Hour
	}
	if cfg.OutboxPoll <= 0 {
		cfg.OutboxPoll = 5 * time.Second
	}
	if cfg.Masker == nil {
		cfg.Masker = redact.NewMasker()
	}
	tmpl, err := report.NewTemplates()
	if err != nil {
		return nil, err
	}
	b := &Bot{
		tmpl:    tmpl,
		cfg:     cfg,
		log:     cfg.Logger,
		metrics: newMetrics(),
		prs:     newKeyedMutex(),
	}
	b.outbox = report.New(report.Config{
		Store: cfg.Store, Client: b.reportClient, RetryBase: cfg.RetryBase, RetryMax: cfg.RetryMax,
		Poll: cfg.OutboxPoll, Mask: cfg.Masker.String, Registerer: b.metrics.reg, Logger: cfg.Logger, Now: cfg.Now,
	})
	b.disp = dispatch.New(dispatch.Config{
		Store: cfg.Store, Process: b.process, Workers: cfg.Workers, Permanent: permanent,
		RetryBase: cfg.RetryBase, RetryMax: cfg.RetryMax, Mask: cfg.Masker.String,
		Registerer: b.metrics.reg, Logger: cfg.Logger, Now: cfg.Now,
	})
	b.ready = b.disp.Ready()
	b.intake = intake.New(intake.Config{
		Store: cfg.Store, HandOff: b.disp.Queue, MaxBody: cfg.MaxBody, BodyTimeout: cfg.BodyTimeout,
		MaxUnauthenticated: cfg.MaxUnauthenticated, Discard: cfg.DiscardDeliveries,
		Registerer: b.metrics.reg, Logger: cfg.Logger,
	})
	b.rep = &reporter{b: b, wake: make(chan struct{}, 1)}
	b.mux = http.NewServeMux()
	for name, f := range cfg.Forges {
		b.mux.Handle("/webhooks/"+name, b.intake.Handler(name, f.Webhook))
	}
	b.mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	b.mux.HandleFunc("/readyz", b.readyz)
	b.mux.Handle("/metrics", b.metrics.handler())
	return b, nil
}

// ServeHTTP serves the webhook endpoints, /healthz, /readyz and /metrics.
func (b *Bot) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.mux.ServeHTTP(w, r) }

func (b *Bot) readyz(w http.ResponseWriter, r *http.Request) {
	select {
	case <-b.ready:
		w.Write([]byte("ok\n"))
	default:
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}
}

// Run processes every pending delivery, then works deliveries as they are
// stored and sends due reports, until ctx ends. Deliveries cut off by the
// end are processed by the next Run.
func (b *Bot) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("bot: Run called twice")
	}
	done := make(chan struct{})
	go func() { b.outbox.Run(ctx); close(done) }()
	go b.pruneLoop(ctx)
	go func() { b.rep.loop(ctx) }()
	err := b.disp.Run(ctx)
	<-done
	return err
}

func (b *Bot) client(forge string) Client {
	if f, ok := b.cfg.Forges[forge]; ok {
		return f.Client
	}
	return nil
}

// reportClient is the outbox's view of a forge's client.
func (b *Bot) reportClient(forge string) report.Client {
	if c := b.client(forge); c != nil {
		return c
	}
	return nil
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
