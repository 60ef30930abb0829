package rescan

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// noop is a stage backend that does nothing and answers at once: what the
// scheduling benchmark and the bookkeeping tests need. Its test results
// come from scans, which a test changes between rescans.
type noop struct {
	mu    sync.Mutex
	scans func(image string) []backend.CheckResult
	tests int
	// hold, when set, is called before a test ends, as long as it takes
	// (a test holds a scan open with it, or cuts it with ctx).
	hold func(ctx context.Context, image string) error
}

func (*noop) Name() string { return "noop" }
func (*noop) StartBuild(_ context.Context, spec backend.BuildSpec) (backend.Handle, error) {
	return backend.Handle(spec.RunID + "/build"), nil
}
func (*noop) WaitBuild(context.Context, backend.Handle) (backend.BuildResult, error) {
	return backend.BuildResult{}, fmt.Errorf("the no-op backend does not build")
}
func (n *noop) StartTest(_ context.Context, spec backend.TestSpec) (backend.Handle, error) {
	return backend.Handle(spec.RunID + "/test " + spec.Image), nil
}
func (n *noop) WaitTest(ctx context.Context, h backend.Handle) (backend.TestResult, error) {
	_, image, _ := strings.Cut(string(h), " ")
	if n.hold != nil {
		if err := n.hold(ctx, image); err != nil {
			return backend.TestResult{}, err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tests++
	if n.scans == nil {
		return backend.TestResult{Checks: []backend.CheckResult{{Name: types.CheckPackageUpdates, State: backend.CheckPassed}}}, nil
	}
	return backend.TestResult{Checks: n.scans(image)}, nil
}
func (*noop) Log(_ context.Context, _ backend.Handle, off int64, _ io.Writer) (int64, error) {
	return off, nil
}
func (*noop) Cancel(context.Context, backend.Handle) error { return nil }

type noopTarget struct{}

func (noopTarget) Ref(repo, tag string) string          { return "reg.test/" + repo + ":" + tag }
func (noopTarget) DigestRef(repo, digest string) string { return "reg.test/" + repo + "@" + digest }

type noopImages struct{}

func (noopImages) Tag(context.Context, string, string) error {
	return fmt.Errorf("a rescan moved a tag")
}
func (noopImages) Digest(context.Context, string) (string, error) {
	return "", fmt.Errorf("not used")
}

type noopResolver struct{}

func (noopResolver) Resolve(context.Context, string, string) (string, error) {
	return "", fmt.Errorf("a rescan resolved a branch")
}

// recorder is a Notifier that records what it was asked to send.
type recorder struct {
	mu   sync.Mutex
	sent []string
}

func (r *recorder) Notify(_ context.Context, to []string, subject, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, strings.Join(to, ",")+": "+subject)
	return nil
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sent...)
}

// noopWorld is a pipeline over the no-op backend, a real store and log
// folder, with n entries, each delivered by a passed branch run, and a
// Scanner over it.
type noopWorld struct {
	dir     string
	db      *store.DB
	be      *noop
	entries []*index.Entry
	runner  *pipeline.Runner
	scanner *Scanner
	notes   *recorder
	stop    func() // stops the pipeline and closes the store (once)
}

func digestOf(i int) string { return fmt.Sprintf("sha256:%064x", i+1) }

func newNoopWorld(tb testing.TB, n, parallel int) *noopWorld {
	tb.Helper()
	return openNoopWorld(tb, worldOpts{n: n, parallel: parallel, seed: true})
}

// worldOpts say what openNoopWorld makes.
type worldOpts struct {
	n, parallel int
	// dir holds the store and logs; "" is a new folder.
	dir string
	// seed stores a delivering run for each entry (a new store).
	seed bool
	// be is the backend (nil: a new one); notes the recorder.
	be    *noop
	notes *recorder
	// clock and spread go to the Scanner (nil: the wall clock).
	clock  Clock
	spread time.Duration
	// wrap, when set, stands between the Scanner and the pipeline.
	wrap func(Runner) Runner
	log  *slog.Logger
}

func entryOf(i int) *index.Entry {
	return &index.Entry{AppID: "bench", JobID: fmt.Sprintf("app%03d", i), GitURL: "file:///git/x", GitBranch: "master",
		GitPath: "/", TargetFile: "Dockerfile", DesiredTag: "latest", BuildContext: "./",
		NotifyEmail: []string{fmt.Sprintf("team%03d@example.org", i)}}
}

func openNoopWorld(tb testing.TB, o worldOpts) *noopWorld {
	tb.Helper()
	dir := cmp.Or(o.dir, tb.TempDir())
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	w := &noopWorld{dir: dir, db: db, be: o.be, notes: o.notes}
	if w.be == nil {
		w.be = &noop{}
	}
	if w.notes == nil {
		w.notes = &recorder{}
	}
	byKey := map[string]*index.Entry{}
	ctx := context.Background()
	for i := range o.n {
		e := entryOf(i)
		w.entries = append(w.entries, e)
		byKey[e.Key()] = e
		if !o.seed {
			continue
		}
		run := &store.Run{Project: e.Key(), Kind: types.KindBranch, Cause: store.Cause{Kind: types.CausePush},
			GitURL: e.GitURL, Branch: "master", Commit: "c0ffee", State: store.Passed,
			Stages: []store.Stage{{Name: types.StageBuild, State: store.Passed, Digest: digestOf(i)},
				{Name: types.StageTest, State: store.Passed, Checks: []store.Check{{Name: types.CheckPackageUpdates, State: store.Passed}}},
				{Name: types.StageDeliver, State: store.Passed}}}
		if err := db.CreateRun(ctx, run); err != nil {
			tb.Fatal(err)
		}
	}
	runner, err := pipeline.New(pipeline.Config{Resolver: noopResolver{}, Builder: w.be, Tester: w.be,
		Images: noopImages{}, Target: noopTarget{}, Store: db, Logs: runlog.StageLogs{Logs: runlog.New(filepath.Join(dir, "logs"), 1<<20)},
		Entries: func(k string) (*index.Entry, bool) { e, ok := byKey[k]; return e, ok }, Workers: o.parallel})
	if err != nil {
		tb.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	w.stop = func() {
		once.Do(func() {
			cancel()
			<-runner.Stopped()
			db.Close()
		})
	}
	tb.Cleanup(w.stop)
	if err := runner.Start(rctx); err != nil {
		tb.Fatal(err)
	}
	w.runner = runner
	var r Runner = runner
	if o.wrap != nil {
		r = o.wrap(runner)
	}
	w.scanner, err = New(Config{Runner: r, Store: db, Entries: func() []*index.Entry { return w.entries },
		Notifier: w.notes, Parallel: o.parallel, BaseURL: "https://cccp.example.org/", Clock: o.clock, Spread: o.spread, Logger: o.log})
	if err != nil {
		tb.Fatal(err)
	}
	return w
}
