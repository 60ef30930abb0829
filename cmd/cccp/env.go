package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/local"
	"github.com/cccp-project/cccp/internal/backend/openshift"
	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/checks"
	"github.com/cccp-project/cccp/internal/digestcache"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/retention"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/sandbox"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// DefaultRegistryAddr is where the embedded registry listens unless told
// otherwise: a fixed loopback port, so image references (and parents pinned
// by digest) stay valid from one cccp run to the next.
const DefaultRegistryAddr = "127.0.0.1:5115"

// envFlags are the flags every command that touches cccp's data shares.
type envFlags struct {
	data         string
	registry     string
	registryAddr string
	insecure     []string
	aliases      []string
	workers      int
	logMaxBytes  int64
	sandboxUser  string
	sandboxPool  int
	buildUser    string
	// buildStorage is the builds' container storage (build_storage.go).
	buildStorage string
	// buildUserFlag tells whether --build-user was given (Changed);
	// buildUserSet, that the configuration file set it.
	buildUserFlag *pflag.Flag
	buildUserSet  bool
	sandboxLimit  sandbox.Limits
	stageTimeout  time.Duration
	maxResumes    int
	verbose       bool
	// maxConcurrent limits stages per backend (pipeline.Config.MaxConcurrent).
	maxConcurrent map[types.StageName]int
}

func (f *envFlags) register(cmd *cobra.Command, withRegistry bool) {
	cmd.Flags().StringVar(&f.data, "data", defaultDataDir(), "folder for cccp's state, logs and the embedded registry ($CCCP_DATA)")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log what cccp does to stderr")
	if !withRegistry {
		return
	}
	cmd.Flags().StringVar(&f.registry, "registry", "", "deliver to this registry, HOST[:PORT][/PREFIX]; default: the embedded registry")
	cmd.Flags().StringVar(&f.registryAddr, "registry-addr", DefaultRegistryAddr, "address of the embedded registry")
	cmd.Flags().StringArrayVar(&f.insecure, "insecure-registry", nil, "reach this registry host over plain HTTP (loopback hosts always are)")
	cmd.Flags().StringArrayVar(&f.aliases, "registry-alias", nil, "a registry host that Dockerfiles use for this index's images (their FROM is pinned to the delivered digest)")
	cmd.Flags().IntVar(&f.workers, "workers", 1, "runs that work at once")
	cmd.Flags().Int64Var(&f.logMaxBytes, "log-max-bytes", 16<<20, "size cap of one stage's log")
	cmd.Flags().StringVar(&f.sandboxUser, "sandbox-user", sandbox.DefaultUser, "unprivileged user that runs repository scripts and test containers (hack/install-deps.sh creates it)")
	cmd.Flags().IntVar(&f.sandboxPool, "sandbox-users", sandbox.DefaultPool, "boxes at once, each as a user of its own: --sandbox-user, then --sandbox-user-1, -2, ... (hack/install-deps.sh creates 4)")
	cmd.Flags().StringVar(&f.buildUser, "build-user", DefaultBuildUser, "user whose subordinate ids (/etc/subuid, /etc/subgid) builds map root of their RUN steps to, 65536 per build at once; empty runs RUN steps as the host's root (hack/install-deps.sh creates it)")
	f.buildUserFlag = cmd.Flags().Lookup("build-user")
	cmd.Flags().StringVar(&f.buildStorage, "build-storage", "", "container storage of cccp's own for its builds, pruned by retention.build_cache_unused_for; default DATA/build-storage; \""+sharedBuildStorage+"\": the machine's storage, never pruned")
	cmd.Flags().IntVar(&f.sandboxLimit.Pids, "sandbox-pids", 1024, "most processes and threads of one stage's sandbox (scripts, podman, containers together)")
	cmd.Flags().Int64Var(&f.sandboxLimit.Memory, "sandbox-memory", 2<<30, "most memory in bytes of one stage's sandbox")
	cmd.Flags().Float64Var(&f.sandboxLimit.CPUs, "sandbox-cpus", 1, "CPU time of one stage's sandbox, in cores")
	cmd.Flags().DurationVar(&f.stageTimeout, "stage-timeout", pipeline.DefaultStageTimeout, "deadline of each stage; a stage that runs longer is stopped and fails")
}

// absData makes --data absolute once, before anything joins paths to it:
// tools that run in another folder (buildah in the checkout) must see the
// same files.
func (f *envFlags) absData() error {
	abs, err := filepath.Abs(f.data)
	if err != nil {
		return fmt.Errorf("data folder %q: %w", f.data, err)
	}
	f.data = abs
	return nil
}

// openSandbox prepares the box that repository code runs in. Without one
// (cccp not root, no sandbox user) the pipeline still builds and runs
// cccp's own checks, but never a repository's prebuild or test script.
func openSandbox(f *envFlags, log *slog.Logger) *sandbox.Sandbox {
	// Boxes are named after the data folder, so that a start clears only
	// its own cccp's leftovers.
	sum := sha256.Sum256([]byte(f.data))
	sb, err := sandbox.New(sandbox.Config{User: f.sandboxUser, Pool: f.sandboxPool, Scope: hex.EncodeToString(sum[:])[:6], Limits: f.sandboxLimit, Logger: log})
	if err != nil {
		log.Warn("no sandbox: repository prebuild and test scripts will not run", "err", err)
		return nil
	}
	return sb
}

func defaultDataDir() string {
	if d := os.Getenv("CCCP_DATA"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "cccp")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "cccp")
	}
	return ".cccp-data"
}

func (f *envFlags) logger(stderr io.Writer) *slog.Logger {
	if !f.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// stateEnv is cccp's stored state: runs and logs.
type stateEnv struct {
	db   *store.DB
	logs *runlog.Logs
}

func openState(f *envFlags, log *slog.Logger) (*stateEnv, error) {
	if err := f.absData(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(f.data, 0o755); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	db, err := store.Open(filepath.Join(f.data, "cccp.db"), store.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	max := f.logMaxBytes
	if max == 0 {
		max = 16 << 20
	}
	return &stateEnv{db: db, logs: runlog.New(filepath.Join(f.data, "logs"), max)}, nil
}

// pipelineOptions are the settings only `cccp serve` changes.
type pipelineOptions struct {
	blocking []string
	// chainChildren queues the children of a delivered parent; graph
	// gives them.
	chainChildren bool
	graph         func(key string) []string
	// tester runs the test stage instead of the local backend
	// (pipeline.test.backend, openTestBackend); nil: the local backend.
	tester backend.Tester
	// openshift, when set, builds on OpenShift instead of with buildah
	// here (pipeline.build.backend: openshift).
	openshift *openshift.Config
	// openshiftConnect, when set, connects the OpenShift backend instead
	// of openshift.New (tests: a fake cluster; see buildStageConfig.connect).
	openshiftConnect func(openshift.Config) (*openshift.Builder, error)
	// entries looks entries up in the live index (internal/liveindex:
	// serve's, reloaded on pushes, or run's, loaded once); required.
	entries func(key string) (*index.Entry, bool)
	// signing configures the evidence of delivered images; the zero value
	// is the default (DATA/signing/cosign.key, parents enforced, SPDX).
	signing signingOptions
}

// pipelineEnv is everything a pipeline needs on this machine.
type pipelineEnv struct {
	*stateEnv
	reg     *registry.Embedded // nil when delivering elsewhere
	backend *local.Backend
	client  *registry.Client
	target  registry.Target
	runner  *pipeline.Runner
	data    string

	// bases are the recent digests of base image tags, shared by the
	// up-to-date check and the base-image watcher.
	bases *digestcache.Cache
	// mirrors are the pipeline's git mirrors, which retention prunes.
	mirrors *gitsrc.Mirror
	// buildUserns is whether builds run RUN steps in a user namespace.
	buildUserns bool
	// buildCache is the builds' own storage that retention prunes; nil
	// when builds use the machine's storage (--build-storage=shared).
	buildCache retention.BuildCache
}

// openPipeline starts the embedded registry (unless --registry names
// another) and a pipeline runner over buildah and podman. obs, when set,
// sees every change of a run.
func openPipeline(ctx context.Context, f *envFlags, log *slog.Logger, obs pipeline.Observer, opts pipelineOptions) (_ *pipelineEnv, err error) {
	st, err := openState(f, log)
	if err != nil {
		return nil, err
	}
	if opts.entries == nil {
		return nil, errors.New("open pipeline: no index to look entries up in")
	}
	env := &pipelineEnv{stateEnv: st, data: f.data, mirrors: newMirrors(f.data)}
	defer func() {
		if err != nil {
			env.Close(context.WithoutCancel(ctx))
		}
	}()

	var user, pass string
	insecure := append([]string(nil), f.insecure...)
	if f.registry == "" {
		env.reg, err = registry.Start(ctx, registry.Config{Dir: filepath.Join(f.data, "registry"), Addr: f.registryAddr, Logger: log})
		if err != nil {
			return nil, err
		}
		user, pass = env.reg.PushCredentials()
		env.target, err = registry.ParseTarget(env.reg.Host())
	} else {
		env.target, err = registry.ParseTarget(f.registry)
	}
	if err != nil {
		return nil, err
	}
	ccfg := registry.ClientConfig{Insecure: insecure, Logger: log}
	if user != "" {
		ccfg.Credentials = map[string]registry.Credentials{env.target.Host: {User: user, Password: pass}}
	}
	env.client = registry.NewClient(ccfg)
	isInsecure := func(host string) bool { return registry.IsLoopback(host) || slices.Contains(insecure, host) }

	var blocking map[types.CheckName]bool
	if len(opts.blocking) > 0 {
		blocking = map[types.CheckName]bool{}
		for _, b := range opts.blocking {
			if !types.KnownCheck(types.CheckName(b)) {
				known := make([]string, len(types.Checks))
				for i, c := range types.Checks {
					known[i] = string(c)
				}
				return nil, usageError{fmt.Errorf("blocking: unknown check %q (known: %s)", b, strings.Join(known, ", "))}
			}
			blocking[types.CheckName(b)] = true
		}
	}
	var children func(string) []string
	if opts.chainChildren {
		children = opts.graph
	}
	pod := &podman.Runner{Logger: log}
	buildIDs, err := openBuildIDs(f, log)
	if err != nil {
		return nil, usageError{err}
	}
	env.buildUserns = buildIDs != nil
	bld, err := newBuilder(f, &buildah.Builder{Logger: log}) // build_storage.go
	if err != nil {
		return nil, usageError{err}
	}
	env.backend, err = local.New(local.Config{
		Dir:     filepath.Join(env.workDir(), "local"),
		Buildah: bld, Podman: pod, Suite: &checks.Suite{Containers: pod, Logger: log},
		Username: user, Password: pass, Insecure: isInsecure, InsecureRegistries: insecureHosts(isInsecure, env.target.Host),
		Sandbox: openSandbox(f, log), BuildIDs: buildIDs, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	if bld.Root != "" {
		env.buildCache = env.backend
	}
	if err := env.backend.Cleanup(ctx); err != nil {
		log.Warn("clean-up of a crashed cccp's leftovers", "err", err)
	}
	var tester backend.Tester = env.backend
	if opts.tester != nil {
		tester = opts.tester
	}
	var builder backend.Builder = env.backend
	if opts.openshift != nil {
		cfg := *opts.openshift
		cfg.Logger = log.With("backend", openshift.Name)
		connect := openshift.New
		if opts.openshiftConnect != nil {
			connect = opts.openshiftConnect
		}
		if builder, err = connect(cfg); err != nil {
			return nil, err
		}
	}
	attester, parents, err := openAttester(f.data, env.client, opts.signing, log)
	if err != nil {
		return nil, err
	}
	if env.bases, err = digestcache.New(digestcache.Config{Head: env.client.Digest}); err != nil {
		return nil, err
	}
	env.runner, err = pipeline.New(pipeline.Config{
		BaseDigests:   env.bases,
		Attester:      attester,
		Parents:       parents,
		Resolver:      gitsrc.Resolver{},
		Trees:         env.mirrors,
		Builder:       builder,
		Tester:        tester,
		Images:        env.client,
		Target:        env.target,
		Store:         st.db,
		Logs:          runlog.StageLogs{Logs: st.logs},
		Entries:       opts.entries,
		Blocking:      blocking,
		Children:      children,
		Workers:       f.workers,
		StageTimeout:  f.stageTimeout,
		MaxResumes:    f.maxResumes,
		MaxConcurrent: f.maxConcurrent,
		OwnRegistries: append([]string{env.target.Host}, f.aliases...),
		Logger:        log,
		Observer:      obs,
	})
	if err != nil {
		return nil, err
	}
	return env, nil
}

// workDir holds the checkouts of running pipelines and index PR checks.
func (env *pipelineEnv) workDir() string { return filepath.Join(env.data, "work") }

func (env *stateEnv) Close() error { return env.db.Close() }

func (env *pipelineEnv) Close(ctx context.Context) error {
	var errs []error
	if env.backend != nil {
		errs = append(errs, env.backend.Close())
	}
	if env.reg != nil {
		errs = append(errs, env.reg.Close(ctx))
	}
	errs = append(errs, env.stateEnv.Close())
	return errors.Join(errs...)
}

// insecureHosts is the delivery registry's host when it is reached over
// plain HTTP (the embedded one on loopback): builds may pull base images
// from it without TLS, and from no other.
func insecureHosts(isInsecure func(string) bool, host string) []string {
	if isInsecure(host) {
		return []string{host}
	}
	return nil
}
