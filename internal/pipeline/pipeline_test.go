package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// These tests drive the state machine with the real store and log folder
// and recording stage backends; internal/backend/local's integration tests run the
// same pipeline with buildah, podman and a registry.

type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

type fakeResolver struct{ commit string }

func (r fakeResolver) Resolve(_ context.Context, url, branch string) (string, error) {
	if strings.Contains(url, "missing") {
		return "", errors.New("no such branch")
	}
	return r.commit, nil
}

// fakeBackend is a stage backend that works in goroutines, like a real
// one: handles, a log to follow, cancel.
type fakeBackend struct {
	rec      *recorder
	name     string
	buildErr error
	block    chan struct{} // when set, builds wait for it (or cancel)
	started  chan struct{}
	checks   []backend.CheckResult
	// failURL, when set, fails the builds of git URLs containing it;
	// uniqueDigests gives each run's image its own digest.
	failURL       string
	uniqueDigests bool
	// blockURL, when set, limits block to the builds of git URLs
	// containing it.
	blockURL string

	mu   sync.Mutex
	jobs map[backend.Handle]*fakeJob
}

type fakeJob struct {
	cancel context.CancelFunc
	done   chan struct{}
	log    string
	build  backend.BuildResult
	test   backend.TestResult
	err    error
}

func (b *fakeBackend) Name() string { return b.name }

func (b *fakeBackend) start(h backend.Handle, work func(ctx context.Context, j *fakeJob) error) (backend.Handle, error) {
	ctx, cancel := context.WithCancel(context.Background())
	j := &fakeJob{cancel: cancel, done: make(chan struct{})}
	b.mu.Lock()
	if b.jobs == nil {
		b.jobs = map[backend.Handle]*fakeJob{}
	}
	b.jobs[h] = j
	b.mu.Unlock()
	go func() {
		defer close(j.done)
		j.err = work(ctx, j)
	}()
	return h, nil
}

func (b *fakeBackend) job(h backend.Handle) (*fakeJob, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.jobs[h]
	if !ok {
		return nil, backend.ErrLost
	}
	return j, nil
}

func (b *fakeBackend) wait(ctx context.Context, h backend.Handle) (*fakeJob, error) {
	j, err := b.job(h)
	if err != nil {
		return nil, err
	}
	select {
	case <-j.done:
		return j, j.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fromLine is the first line of the fake repositories' Dockerfiles.
func fromLine(url string) string {
	if _, job, ok := strings.Cut(url, "/git/from-"); ok {
		job, _, _ = strings.Cut(job, "/")
		return "demo/" + job + ":latest"
	}
	if strings.Contains(url, "external") {
		return "quay.io/org/img:1" // a base image outside the index
	}
	if strings.Contains(url, "child") {
		return "demo/base:latest"
	}
	return "scratch"
}

func (b *fakeBackend) StartBuild(_ context.Context, spec backend.BuildSpec) (backend.Handle, error) {
	return b.start(backend.Handle(spec.RunID+"/build"), func(ctx context.Context, j *fakeJob) error {
		from := fromLine(spec.Src.GitURL)
		pin, ok, err := spec.Pin(ctx, from)
		if err != nil {
			return err
		}
		base := backend.Base{Image: from}
		if ok {
			from, base.Pinned, base.Digest = pin.DigestRef, true, strings.SplitN(pin.DigestRef, "@", 2)[1]
		}
		b.rec.add("build %s at %s from FROM %s", spec.Push, spec.Src.Commit, from)
		j.log = "STEP 1/2: FROM " + from + "\n"
		if b.started != nil {
			b.started <- struct{}{}
		}
		if b.block != nil && (b.blockURL == "" || strings.Contains(spec.Src.GitURL, b.blockURL)) {
			select {
			case <-b.block:
			case <-ctx.Done():
				return &backend.StageError{Reason: "Aborted", Message: "cancelled"}
			}
		}
		if b.buildErr != nil {
			return b.buildErr
		}
		if b.failURL != "" && strings.Contains(spec.Src.GitURL, b.failURL) {
			return &backend.StageError{Reason: "BuildFailed", Message: "RUN exit 1"}
		}
		digest := digestA
		if b.uniqueDigests {
			digest = fmt.Sprintf("sha256:%064s", spec.RunID)
		}
		j.build = backend.BuildResult{Digest: digest, Bases: []backend.Base{base}}
		return nil
	})
}

func (b *fakeBackend) WaitBuild(ctx context.Context, h backend.Handle) (backend.BuildResult, error) {
	j, err := b.wait(ctx, h)
	if j == nil {
		return backend.BuildResult{}, err
	}
	return j.build, err
}

func (b *fakeBackend) StartTest(_ context.Context, spec backend.TestSpec) (backend.Handle, error) {
	return b.start(backend.Handle(spec.RunID+"/test"), func(ctx context.Context, j *fakeJob) error {
		b.rec.add("test %s", spec.Image)
		j.log = "cccp: ---- smoke ----\n"
		j.test = backend.TestResult{Checks: slices.Clone(b.checks)}
		return nil
	})
}

func (b *fakeBackend) WaitTest(ctx context.Context, h backend.Handle) (backend.TestResult, error) {
	j, err := b.wait(ctx, h)
	if j == nil {
		return backend.TestResult{}, err
	}
	return j.test, err
}

func (b *fakeBackend) Log(ctx context.Context, h backend.Handle, offset int64, w io.Writer) (int64, error) {
	j, err := b.job(h)
	if err != nil {
		return offset, err
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		return offset, ctx.Err()
	}
	n, err := io.WriteString(w, j.log[min(int(offset), len(j.log)):])
	return offset + int64(n), err
}

func (b *fakeBackend) Cancel(_ context.Context, h backend.Handle) error {
	b.rec.add("cancel %s", h)
	if j, err := b.job(h); err == nil {
		j.cancel()
		<-j.done
	}
	return nil
}

type fakeImages struct {
	rec     *recorder
	mu      sync.Mutex
	digests map[string]string
}

func (i *fakeImages) Tag(_ context.Context, src, dst string) error {
	i.rec.add("tag %s -> %s", src, dst)
	if _, d, ok := strings.Cut(src, "@"); ok {
		i.mu.Lock()
		i.digests[dst] = d
		i.mu.Unlock()
	}
	return nil
}

func (i *fakeImages) Digest(_ context.Context, ref string) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if d, ok := i.digests[ref]; ok {
		return d, nil
	}
	return "", errors.New("MANIFEST_UNKNOWN")
}

type target struct{}

func (target) Host() string                         { return "reg.test:5000" }
func (target) Ref(repo, tag string) string          { return "reg.test:5000/" + repo + ":" + tag }
func (target) DigestRef(repo, digest string) string { return "reg.test:5000/" + repo + "@" + digest }

type harness struct {
	rec     *recorder
	db      *store.DB
	logs    *runlog.Logs
	backend *fakeBackend
	images  *fakeImages
	entries map[string]*index.Entry
	cfg     Config
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rec := &recorder{}
	h := &harness{
		rec:  rec,
		db:   db,
		logs: runlog.New(filepath.Join(dir, "logs"), 1<<20),
		backend: &fakeBackend{rec: rec, name: "fake", checks: []backend.CheckResult{
			{Name: types.CheckLint, State: backend.CheckPassed}, {Name: types.CheckSmoke, State: backend.CheckPassed}}},
		images:  &fakeImages{rec: rec, digests: map[string]string{}},
		entries: map[string]*index.Entry{},
	}
	for _, e := range []*index.Entry{
		entry("demo", "base", "file:///git/base"),
		entry("demo", "child", "file:///git/child"),
	} {
		h.entries[e.Key()] = e
	}
	h.entries["demo/base:latest"].ExtraTags = []string{"stable"}
	h.cfg = Config{
		Resolver: fakeResolver{commit: "c0ffee"}, Builder: h.backend, Tester: h.backend, Images: h.images,
		Target: target{}, Store: db, Logs: runlog.StageLogs{Logs: h.logs},
		Entries: func(name string) (*index.Entry, bool) { e, ok := h.entries[name]; return e, ok },
	}
	return h
}

func entry(app, job, url string) *index.Entry {
	return &index.Entry{AppID: app, JobID: job, GitURL: url, GitBranch: "master", GitPath: "/",
		TargetFile: "Dockerfile", DesiredTag: "latest", BuildContext: "./"}
}

func (h *harness) start(t testing.TB) *Runner {
	t.Helper()
	r, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

func runAndWait(t testing.TB, r *Runner, req Request) *store.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := r.Enqueue(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	done, err := r.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

func stageStates(run *store.Run) string {
	var s []string
	for _, st := range run.Stages {
		s = append(s, string(st.Name)+"="+string(st.State))
	}
	return strings.Join(s, " ")
}

const digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestRunOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		kind       types.RunKind
		buildErr   error
		checks     []backend.CheckResult
		wantState  store.State
		wantStages string
		wantCalls  []string
	}{
		{
			name:       "branch run passes and delivers every tag",
			kind:       types.KindBranch,
			wantState:  store.Passed,
			wantStages: "build=passed test=passed deliver=passed",
			wantCalls: []string{
				"build reg.test:5000/demo/base:test at c0ffee from FROM scratch",
				"test reg.test:5000/demo/base@" + digestA,
				"tag reg.test:5000/demo/base@" + digestA + " -> reg.test:5000/demo/base:rc",
				"tag reg.test:5000/demo/base@" + digestA + " -> reg.test:5000/demo/base:latest",
				"tag reg.test:5000/demo/base@" + digestA + " -> reg.test:5000/demo/base:stable",
			},
		},
		{
			name:       "blocking check fails: no rc, no delivery",
			kind:       types.KindBranch,
			checks:     []backend.CheckResult{{Name: types.CheckSmoke, State: backend.CheckFailed, Explain: []string{"exited at once"}}},
			wantState:  store.Failed,
			wantStages: "build=passed test=failed deliver=skipped",
			wantCalls: []string{
				"build reg.test:5000/demo/base:test at c0ffee from FROM scratch",
				"test reg.test:5000/demo/base@" + digestA,
			},
		},
		{
			name:       "non-blocking check fails: still delivered",
			kind:       types.KindBranch,
			checks:     []backend.CheckResult{{Name: types.CheckLint, State: backend.CheckFailed}},
			wantState:  store.Passed,
			wantStages: "build=passed test=passed deliver=passed",
		},
		{
			name:       "build fails: nothing pushed or tagged",
			kind:       types.KindBranch,
			buildErr:   &backend.StageError{Reason: "BuildFailed", Message: "Dockerfile:2: RUN false: exit status 1"},
			wantState:  store.Failed,
			wantStages: "build=failed test=skipped deliver=skipped",
			wantCalls:  []string{"build reg.test:5000/demo/base:test at c0ffee from FROM scratch"},
		},
		{
			name:       "pull request run uses a per-run tag and never delivers",
			kind:       types.KindPR,
			wantState:  store.Passed,
			wantStages: "build=passed test=passed",
			wantCalls: []string{
				"build reg.test:5000/demo/base:run-1 at c0ffee from FROM scratch",
				"test reg.test:5000/demo/base@" + digestA,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.backend.buildErr = tc.buildErr
			if tc.checks != nil {
				h.backend.checks = tc.checks
			}
			r := h.start(t)
			run := runAndWait(t, r, Request{Project: "demo/base:latest", Kind: tc.kind, Cause: store.Cause{Kind: "manual"}})
			if run.State != tc.wantState {
				t.Errorf("state = %s, want %s (error %q)", run.State, tc.wantState, run.Error)
			}
			if got := stageStates(run); got != tc.wantStages {
				t.Errorf("stages = %s, want %s", got, tc.wantStages)
			}
			if tc.wantCalls != nil && !slices.Equal(h.rec.list(), tc.wantCalls) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(h.rec.list(), "\n"), strings.Join(tc.wantCalls, "\n"))
			}
			if run.Commit != "c0ffee" {
				t.Errorf("commit = %q, want the fetched commit", run.Commit)
			}
			if tc.buildErr != nil {
				if got := run.Stages[0]; got.Reason != "BuildFailed" || got.Error != "Dockerfile:2: RUN false: exit status 1" {
					t.Errorf("build stage reason %q, error %q; want the backend's", got.Reason, got.Error)
				}
				lines, err := h.logs.Tail(run.ID, string(types.StageBuild), 5)
				if err != nil || !strings.Contains(strings.Join(lines, "\n"), "build failed") {
					t.Errorf("build log tail = %q (%v), want the failure kept", lines, err)
				}
			}
		})
	}
}

func TestSupersedeCancelsOlderRunOfSameBranch(t *testing.T) {
	h := newHarness(t)
	h.backend.block = make(chan struct{})
	h.backend.started = make(chan struct{}, 4)
	r := h.start(t)
	ctx := context.Background()
	first, err := r.Enqueue(ctx, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: "push", Commit: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	<-h.backend.started // the first run is building
	second, err := r.Enqueue(ctx, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: "push", Commit: "2"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Wait(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.Cancelled || !strings.Contains(got.Error, "superseded by run "+second.ID) {
		t.Errorf("first run: state %s, error %q; want cancelled, superseded", got.State, got.Error)
	}
	close(h.backend.block)
	if got, _ := r.Wait(ctx, second.ID); got.State != store.Passed {
		t.Errorf("second run: %s (%s), want passed", got.State, got.Error)
	}
	if !slices.Contains(h.rec.list(), "cancel "+first.ID+"/build") {
		t.Errorf("calls %q: the superseded run's build was not cancelled at the backend", h.rec.list())
	}
}

func TestResumeAfterRestartSkipsPassedStages(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	// A run interrupted during its test stage, as a crash leaves it.
	run := &store.Run{Project: "demo/base:latest", Kind: types.KindBranch, GitURL: "file:///git/base", Branch: "master",
		Commit: "c0ffee", State: store.Running, Stages: plannedStages(types.KindBranch)}
	if err := h.db.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.UpdateRun(ctx, run.ID, func(r *store.Run) error {
		r.Stages[0].State, r.Stages[0].Digest = store.Passed, digestA
		r.Stages[1].State = store.Running
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := h.start(t)
	done, err := r.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != store.Passed {
		t.Fatalf("resumed run: %s (%s)", done.State, done.Error)
	}
	for _, c := range h.rec.list() {
		if strings.HasPrefix(c, "build") {
			t.Errorf("resumed run built again: %s", c)
		}
	}
	if calls := h.rec.list(); len(calls) == 0 || calls[0] != "test reg.test:5000/demo/base@"+digestA {
		t.Errorf("calls = %q, want the test of the recorded digest first", calls)
	}
}

func TestParentRebuildTriggersChildPinnedToDigest(t *testing.T) {
	h := newHarness(t)
	h.images.digests["reg.test:5000/demo/base:latest"] = digestA
	h.cfg.Children = func(name string) []string {
		if name == "demo/base:latest" {
			return []string{"demo/child:latest"}
		}
		return nil
	}
	var mu sync.Mutex
	var childRun string
	childDone := make(chan struct{})
	h.cfg.Observer = func(run *store.Run) {
		mu.Lock()
		defer mu.Unlock()
		if run.Project == "demo/child:latest" && run.State.Done() && childRun == "" {
			childRun = run.ID
			close(childDone)
		}
	}
	r := h.start(t)
	parent := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: "manual"}})
	if parent.State != store.Passed {
		t.Fatalf("parent %s", parent.State)
	}
	select {
	case <-childDone:
	case <-time.After(time.Minute):
		t.Fatal("no child run")
	}
	child, err := h.db.Run(context.Background(), childRun)
	if err != nil {
		t.Fatal(err)
	}
	if child.Cause.Kind != types.CauseParent || child.Cause.Parent != "demo/base:latest" {
		t.Errorf("child cause = %+v", child.Cause)
	}
	if b := child.Stages[0].Bases; len(b) != 1 || !b[0].Pinned || b[0].Digest != digestA {
		t.Errorf("child build bases = %+v, want demo/base pinned to %s", b, digestA)
	}
	want := "build reg.test:5000/demo/child:test at c0ffee from FROM reg.test:5000/demo/base@" + digestA
	if !slices.Contains(h.rec.list(), want) {
		t.Errorf("calls %q lack %q", h.rec.list(), want)
	}
}

func TestNewReportsMissingConfiguration(t *testing.T) {
	_, err := New(Config{})
	if err == nil || !strings.Contains(err.Error(), "Builder") || !strings.Contains(err.Error(), "Resolver") {
		t.Fatalf("New(empty) error = %v, want the missing parts named", err)
	}
}

func TestOlderRun(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"9", "10", true}, // numeric, not string order
		{"10", "9", false},
		{"7", "7", false},
	} {
		if got := olderRun(tc.a, tc.b); got != tc.want {
			t.Errorf("olderRun(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestTrialRunKeepsItsProposedEntry(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	proposed := entry("demo", "proposed", "file:///git/proposed")
	// Stored but not worked yet, as a crash would leave it: a fresh Runner
	// must build the proposed entry, which the index does not have.
	first, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	run, err := first.Enqueue(ctx, Request{Project: proposed.Key(), Kind: types.KindTrial, Entry: proposed,
		Cause: store.Cause{Kind: "index", PR: 3}})
	if err != nil {
		t.Fatal(err)
	}
	r := h.start(t)
	done, err := r.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != store.Passed {
		t.Fatalf("resumed trial run: %s (%s), want passed", done.State, done.Error)
	}
	if got, _ := EntryOf(done); got == nil || got.Key() != "demo/proposed:latest" {
		t.Errorf("EntryOf = %+v, want the proposed entry", got)
	}
	if want := "build reg.test:5000/demo/proposed:run-" + run.ID + " at c0ffee from FROM scratch"; !slices.Contains(h.rec.list(), want) {
		t.Errorf("calls %q lack %q", h.rec.list(), want)
	}
}

// interrupted stores a run as a stop of cccp leaves it: running, its build
// stage running at the fake backend under handle <id>/build.
func interrupted(t *testing.T, h *harness, resumes int) *store.Run {
	t.Helper()
	ctx := context.Background()
	run := &store.Run{Project: "demo/base:latest", Kind: types.KindBranch, GitURL: "file:///git/base", Branch: "master",
		Commit: "c0ffee", State: store.Queued, Stages: plannedStages(types.KindBranch)}
	if err := h.db.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	run, err := h.db.UpdateRun(ctx, run.ID, func(r *store.Run) error {
		r.State, r.Resumes = store.Running, resumes
		r.Stages[0].State, r.Stages[0].Backend, r.Stages[0].Handle = store.Running, "fake", r.ID+"/build"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func buildLog(t *testing.T, h *harness, id string) string {
	t.Helper()
	f, err := h.logs.Open(id, string(types.StageBuild))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b)
}

func TestRestartReattachesToStoredHandle(t *testing.T) {
	h := newHarness(t)
	run := interrupted(t, h, 0)
	// The backend still knows the work (a cluster build survives cccp).
	done := make(chan struct{})
	close(done)
	h.backend.jobs = map[backend.Handle]*fakeJob{
		backend.Handle(run.ID + "/build"): {cancel: func() {}, done: done, log: "STEP reattached\n",
			build: backend.BuildResult{Digest: digestA, Bases: []backend.Base{{Image: "scratch"}}}},
	}
	r := h.start(t)
	got, err := r.Wait(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.Passed || got.Resumes != 1 {
		t.Fatalf("reattached run: %s (%s), resumes %d; want passed, 1", got.State, got.Error, got.Resumes)
	}
	for _, c := range h.rec.list() {
		if strings.HasPrefix(c, "build") {
			t.Errorf("reattached run built again: %s", c)
		}
	}
	if log := buildLog(t, h, run.ID); !strings.Contains(log, "STEP reattached") || !strings.Contains(log, "reattaching to fake work "+run.ID+"/build") {
		t.Errorf("build log lacks the reattached work's log:\n%s", log)
	}
	if got.Stages[0].Digest != digestA {
		t.Errorf("digest %q, want the reattached build's", got.Stages[0].Digest)
	}
}

func TestRestartRerunsLostStage(t *testing.T) {
	h := newHarness(t)
	run := interrupted(t, h, 1)
	r := h.start(t) // the fake backend knows no handle: ErrLost
	got, err := r.Wait(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.Passed || got.Resumes != 2 {
		t.Fatalf("resumed run: %s (%s), resumes %d; want passed, 2", got.State, got.Error, got.Resumes)
	}
	if want := "build reg.test:5000/demo/base:test at c0ffee from FROM scratch"; !slices.Contains(h.rec.list(), want) {
		t.Errorf("calls %q lack the re-run %q", h.rec.list(), want)
	}
	if log := buildLog(t, h, run.ID); !strings.Contains(log, "running the build stage again from its start") {
		t.Errorf("build log does not say the stage ran again:\n%s", log)
	}
}

func TestRunResumedTooOftenFails(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxResumes = 3
	run := interrupted(t, h, 3) // cccp stopped in it three times already
	r := h.start(t)
	got, err := r.Wait(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.Failed || got.Stages[0].Reason != ReasonTooManyResumes || !strings.Contains(got.Error, "4 times") {
		t.Errorf("run: %s (%q), build reason %q; want failed, %s", got.State, got.Error, got.Stages[0].Reason, ReasonTooManyResumes)
	}
	if calls := h.rec.list(); len(calls) != 0 {
		t.Errorf("a run resumed too often still worked: %q", calls)
	}
}

func TestStageDeadlineFailsAndCancelsTheWork(t *testing.T) {
	h := newHarness(t)
	h.cfg.StageTimeout = 300 * time.Millisecond
	h.backend.block = make(chan struct{}) // never done
	r := h.start(t)
	run := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	if run.State != store.Failed || run.Stages[0].Reason != ReasonDeadlineExceeded {
		t.Fatalf("run %s, build %s reason %q; want failed with %s", run.State, run.Stages[0].State, run.Stages[0].Reason, ReasonDeadlineExceeded)
	}
	if !strings.Contains(run.Stages[0].Error, "300ms") {
		t.Errorf("build error %q does not name the deadline", run.Stages[0].Error)
	}
	if !slices.Contains(h.rec.list(), "cancel "+run.ID+"/build") {
		t.Errorf("calls %q: the work past its deadline was not cancelled at the backend", h.rec.list())
	}
}

func TestUnresolvableBranchFailsTheBuild(t *testing.T) {
	h := newHarness(t)
	h.entries["demo/base:latest"].GitURL = "file:///git/missing"
	r := h.start(t)
	run := runAndWait(t, r, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: types.CauseManual}})
	if run.State != store.Failed || !strings.Contains(run.Stages[0].Error, "resolve branch master") {
		t.Errorf("run %s, build error %q; want the resolution failure", run.State, run.Stages[0].Error)
	}
	if calls := h.rec.list(); len(calls) != 0 {
		t.Errorf("work started without a commit: %q", calls)
	}
}
