// Package local is cccp's stage backend on this machine: git clones the
// run's exact commit into a per-run work folder that the build and the test
// stage share, the entry's prebuild-script runs there, FROM lines naming
// this index's images are pinned as the pipeline says, buildah builds and
// pushes, and podman runs the checks and the user's test script. Nothing
// here decides what a run does; the pipeline does.
//
// What the repository controls runs in a sandbox box (internal/sandbox),
// never as cccp: the prebuild script in a box of its own before the build
// reads the checkout, and each test stage in a box where the image is
// pulled by digest, every check container and the user's test script
// run as the unprivileged sandbox user, and which is removed with all of
// it when the stage ends. Paths from the index entry are resolved with
// their symlinks and must stay in the checkout; the Dockerfile is read
// only as a regular file beneath it, under a size cap. Builds run as root
// with buildah's OCI isolation, their RUN steps in a user namespace whose
// root is a range of host ids of the build's own (Config.BuildIDs; no two
// builds at once share one), so a RUN step is no one on the host
// (rootless buildah works here only with
// --network none or host: the CNI bridge cannot be made rootless and
// buildah 1.28 has no slirp4netns for RUN steps). buildah fetches an ADD
// URL itself, as root on the host's network, so an ADD of a URL on this
// host or its networks (loopback, private, link-local, or a name resolving
// to one) is refused before the build. Not contained: RUN steps reach the
// host's non-loopback addresses through the CNI bridge, and a name that
// resolves differently at fetch time; an operator who builds strangers'
// repositories should firewall the build host's internal addresses. A build's local image
// is removed once pushed; Cleanup removes what a crash left. In a build storage of
// the backend's own (Config.Buildah.Root), the working containers of failed and
// killed builds are removed too, and PruneBuildCache removes the bases and layer
// cache no build used for a while (buildcache.go).
//
// Handles are `<runID>/<stage>`. The work runs in a goroutine of this
// process and writes its log to a file under the backend's folder, so Log
// can stream it from any offset and follow it until the work ends.
//
// Reattaching: the work of the local backend dies with the cccp process
// that ran it. After a restart its handles are unknown, Wait and Log return
// backend.ErrLost, and the pipeline runs the stage again from its start
// (a fresh checkout of the same commit).
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/checks"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/idpool"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/sandbox"
	"github.com/cccp-project/cccp/internal/types"
)

// Name is the local backend's name, stored with each of its handles.
const Name = "local"

// Config is what the local backend needs. Dir, Buildah and Podman are
// required.
type Config struct {
	// Dir is the backend's own folder: per-run checkouts and work logs.
	// Its contents are removed by New (nothing in it survives a restart
	// usefully).
	Dir string
	// Buildah builds and pushes. When its Root is set, that storage is
	// the backend's own: Cleanup removes every container in it and
	// PruneBuildCache what no build used (buildcache.go); without it
	// builds use the machine's shared storage and nothing is pruned.
	Buildah *buildah.Builder
	Podman  *podman.Runner
	// Suite runs the container checks; default one over Podman.
	Suite *checks.Suite
	// Username and Password authenticate pushes; empty for a registry
	// that needs none (or takes them from the auth files).
	Username, Password string
	// Insecure tells whether a registry host is reached over plain HTTP.
	Insecure func(host string) bool
	// InsecureRegistries are the registry hosts builds may pull base
	// images from (a parent pinned to its digest in the delivery registry)
	// over plain HTTP; TLS is verified for every other registry.
	InsecureRegistries []string
	// Sandbox holds what a repository controls: its prebuild script and,
	// per test stage, a box in which the image is pulled and every check
	// container and the user's test script run, as the unprivileged
	// sandbox user (see box.go). Without it prebuild scripts and test
	// scripts are refused, and the checks run with Podman.
	Sandbox *sandbox.Sandbox
	// BuildIDs hands each build a range of host ids that root in its RUN
	// steps maps to (see build_userns.go); nil runs RUN steps as the
	// host's root, with a warning in every build's log.
	BuildIDs *idpool.Ranges
	// Hold is how long the smoke run must keep running (or exit 0 before);
	// default checks.DefaultHold.
	Hold   time.Duration
	Logger *slog.Logger
}

// Backend runs build and test stages on this machine. It implements
// backend.Builder and backend.Tester.
type Backend struct {
	cfg Config
	log *slog.Logger

	ctx  context.Context // parent of all work; ended by Close
	stop context.CancelFunc

	mu   sync.Mutex
	jobs map[backend.Handle]*job
	runs map[string]*sync.Mutex // run ID -> guards its checkout

	// misses remembers the commits a clone found missing, so a retry
	// fails fast instead of fetching every branch again.
	misses *gitsrc.Misses
	// instance names this backend's folder in its run images' names
	// (localImage).
	instance string
	// cache is the pruning of the build storage (buildcache.go).
	cache *buildCache
	// pulls are the images test stages without a sandbox pulled into the
	// machine's storage (hostpull.go).
	pulls *hostPulls
}

var (
	_ backend.Builder = (*Backend)(nil)
	_ backend.Tester  = (*Backend)(nil)
	_ backend.Named   = (*Backend)(nil)
)

// job is one stage's work.
type job struct {
	cancel  context.CancelFunc
	done    chan struct{} // closed when the work ended
	logPath string
	build   backend.BuildResult
	test    backend.TestResult
	err     error
}

// New checks cfg, clears Dir and returns a Backend.
func New(cfg Config) (*Backend, error) {
	var missing []string
	if cfg.Dir == "" {
		missing = append(missing, "Dir")
	}
	if cfg.Buildah == nil {
		missing = append(missing, "Buildah")
	}
	if cfg.Podman == nil {
		missing = append(missing, "Podman")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("local backend: missing configuration: %s", strings.Join(missing, ", "))
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	cfg.Dir = dir
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Suite == nil {
		cfg.Suite = &checks.Suite{Containers: cfg.Podman, Logger: cfg.Logger}
	}
	// Leftovers of an earlier process: checkouts and logs of work that
	// died with it. The record of its run images stays for Cleanup.
	for _, d := range []string{"work", "logs"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return nil, fmt.Errorf("local backend: clear %s: %w", dir, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Backend{cfg: cfg, log: cfg.Logger, ctx: ctx, stop: stop,
		jobs: map[backend.Handle]*job{}, runs: map[string]*sync.Mutex{}, misses: gitsrc.NewMisses(0, 0),
		instance: instanceOf(dir),
		cache:    newBuildCache(dir), pulls: &hostPulls{log: cfg.Logger}}, nil
}

// Name is "local".
func (b *Backend) Name() string { return Name }

// Close stops all work (it would die with the process anyway) and waits
// for it to end.
func (b *Backend) Close() error {
	b.stop()
	b.mu.Lock()
	jobs := make([]*job, 0, len(b.jobs))
	for _, j := range b.jobs {
		jobs = append(jobs, j)
	}
	b.mu.Unlock()
	for _, j := range jobs {
		<-j.done
	}
	b.closeStorage()
	return nil
}

// StartBuild starts building spec and returns at once.
func (b *Backend) StartBuild(ctx context.Context, spec backend.BuildSpec) (backend.Handle, error) {
	return b.start(spec.RunID, types.StageBuild, func(ctx context.Context, j *job, log io.Writer) error {
		res, err := b.build(ctx, spec, log)
		j.build = res
		return err
	})
}

// WaitBuild waits for a build started by StartBuild.
func (b *Backend) WaitBuild(ctx context.Context, h backend.Handle) (backend.BuildResult, error) {
	j, err := b.wait(ctx, h)
	if err != nil {
		return backend.BuildResult{}, err
	}
	return j.build, j.err
}

// StartTest starts testing spec and returns at once.
func (b *Backend) StartTest(ctx context.Context, spec backend.TestSpec) (backend.Handle, error) {
	return b.start(spec.RunID, types.StageTest, func(ctx context.Context, j *job, log io.Writer) error {
		res, err := b.test(ctx, spec, log)
		j.test = res
		return err
	})
}

// WaitTest waits for a test stage started by StartTest.
func (b *Backend) WaitTest(ctx context.Context, h backend.Handle) (backend.TestResult, error) {
	j, err := b.wait(ctx, h)
	if err != nil {
		return backend.TestResult{}, err
	}
	return j.test, j.err
}

func (b *Backend) start(runID string, stage types.StageName, work func(context.Context, *job, io.Writer) error) (backend.Handle, error) {
	if runID == "" || strings.ContainsAny(runID, `/\`) || runID == "." || runID == ".." {
		return "", fmt.Errorf("local backend: bad run ID %q", runID)
	}
	h := backend.Handle(runID + "/" + string(stage))
	logDir := filepath.Join(b.cfg.Dir, "logs", runID)
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return "", fmt.Errorf("start %s: %w", h, err)
	}
	logPath := filepath.Join(logDir, string(stage)+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("start %s: %w", h, err)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	j := &job{cancel: cancel, done: make(chan struct{}), logPath: logPath}
	b.mu.Lock()
	if old, ok := b.jobs[h]; ok {
		old.cancel() // a stage started again replaces its earlier work
	}
	b.jobs[h] = j
	b.mu.Unlock()
	go func() {
		defer close(j.done)
		defer f.Close()
		defer cancel()
		err := work(ctx, j, f)
		if err != nil && ctx.Err() != nil {
			err = &backend.StageError{Reason: "Aborted", Message: fmt.Sprintf("%s was cancelled", h)}
		}
		j.err = err
	}()
	return h, nil
}

func (b *Backend) job(h backend.Handle) (*job, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.jobs[h]
	if !ok {
		return nil, fmt.Errorf("local backend: %s: %w", h, backend.ErrLost)
	}
	return j, nil
}

func (b *Backend) wait(ctx context.Context, h backend.Handle) (*job, error) {
	j, err := b.job(h)
	if err != nil {
		return nil, err
	}
	select {
	case <-j.done:
		return j, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// logPoll is how often Log looks for new output of running work.
const logPoll = 100 * time.Millisecond

// Log copies the work's log from offset to w and follows it until the work
// ends (or ctx does).
func (b *Backend) Log(ctx context.Context, h backend.Handle, offset int64, w io.Writer) (int64, error) {
	j, err := b.job(h)
	if err != nil {
		return offset, err
	}
	f, err := os.Open(j.logPath)
	if err != nil {
		return offset, fmt.Errorf("log of %s: %w", h, err)
	}
	defer f.Close()
	buf := make([]byte, 32<<10)
	for {
		// Look at done before reading: the work's last byte is written
		// before done is closed, so a read after done that finds nothing
		// is the real end.
		finished := false
		select {
		case <-j.done:
			finished = true
		default:
		}
		n, rerr := f.ReadAt(buf, offset)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return offset, fmt.Errorf("log of %s: %w", h, werr)
			}
			offset += int64(n)
			continue
		}
		if rerr != nil && rerr != io.EOF {
			return offset, fmt.Errorf("log of %s: %w", h, rerr)
		}
		if finished {
			return offset, nil
		}
		select {
		case <-ctx.Done():
			return offset, ctx.Err()
		case <-j.done:
		case <-time.After(logPoll):
		}
	}
}

// Cancel stops the work of h; unknown or finished work is not an error.
func (b *Backend) Cancel(ctx context.Context, h backend.Handle) error {
	j, err := b.job(h)
	if errors.Is(err, backend.ErrLost) {
		return nil
	}
	j.cancel()
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EndRun forgets a finished run's work and removes its checkout and logs.
func (b *Backend) EndRun(ctx context.Context, runID string) error {
	b.mu.Lock()
	var jobs []*job
	for h, j := range b.jobs {
		if strings.HasPrefix(string(h), runID+"/") {
			jobs = append(jobs, j)
			delete(b.jobs, h)
		}
	}
	delete(b.runs, runID)
	b.mu.Unlock()
	for _, j := range jobs {
		j.cancel()
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(
		os.RemoveAll(b.runDir(runID)),
		os.RemoveAll(filepath.Join(b.cfg.Dir, "logs", runID)),
	)
}

func (b *Backend) runDir(runID string) string { return filepath.Join(b.cfg.Dir, "work", "run-"+runID) }

// runLock guards a run's checkout, which build and test share.
func (b *Backend) runLock(runID string) *sync.Mutex {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.runs[runID]
	if !ok {
		m = &sync.Mutex{}
		b.runs[runID] = m
	}
	return m
}

func hostOf(ref string) string {
	if i := strings.IndexByte(ref, '/'); i > 0 {
		return ref[:i]
	}
	return ref
}

func (b *Backend) tlsVerify(ref string) bool {
	return b.cfg.Insecure == nil || !b.cfg.Insecure(hostOf(ref))
}
