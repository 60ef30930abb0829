package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
)

// These tests drive the state machine with the real store and log folder
// and recording stage backends; internal/local's integration tests run the
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

type fakeSource struct{ commit string }

func (s fakeSource) Fetch(_ context.Context, url, branch, commit, dest string) (string, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return "", err
	}
	df := "FROM scratch\nCOPY . /\n"
	if strings.Contains(url, "child") {
		df = "FROM demo/base:latest\nCOPY . /\n"
	}
	if err := os.WriteFile(filepath.Join(dest, "Dockerfile"), []byte(df), 0o644); err != nil {
		return "", err
	}
	if commit != "" {
		return commit, nil
	}
	return s.commit, nil
}

type fakeBuilder struct {
	rec     *recorder
	fail    error
	block   chan struct{} // when set, Build waits for it (or ctx)
	started chan struct{}
}

func (b *fakeBuilder) Build(ctx context.Context, spec BuildSpec) error {
	df, _ := os.ReadFile(spec.Dockerfile)
	b.rec.add("build %s from %s", spec.Image, strings.SplitN(string(df), "\n", 2)[0])
	fmt.Fprintln(spec.Log, "STEP 1/2: FROM scratch")
	if b.started != nil {
		b.started <- struct{}{}
	}
	if b.block != nil {
		select {
		case <-b.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.fail
}

func (b *fakeBuilder) Push(_ context.Context, image, ref string, _ io.Writer) (string, error) {
	b.rec.add("push %s", ref)
	return "sha256:" + strings.Repeat("a", 64), nil
}

type fakeTester struct {
	rec    *recorder
	checks []store.Check
}

func (t *fakeTester) Test(_ context.Context, spec TestSpec) ([]store.Check, error) {
	t.rec.add("test %s", spec.Image)
	return slices.Clone(t.checks), nil
}

type fakeImages struct {
	rec     *recorder
	digests map[string]string
}

func (i *fakeImages) Tag(_ context.Context, src, dst string) error {
	i.rec.add("tag %s -> %s", src, dst)
	return nil
}

func (i *fakeImages) Digest(_ context.Context, ref string) (string, error) {
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
	builder *fakeBuilder
	tester  *fakeTester
	images  *fakeImages
	entries map[string]*index.Entry
	cfg     Config
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rec := &recorder{}
	h := &harness{
		rec:     rec,
		db:      db,
		logs:    runlog.New(filepath.Join(dir, "logs"), 1<<20),
		builder: &fakeBuilder{rec: rec},
		tester:  &fakeTester{rec: rec, checks: []store.Check{{Name: "lint", State: store.Passed}, {Name: "smoke", State: store.Passed}}},
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
		Source: fakeSource{commit: "c0ffee"}, Builder: h.builder, Tester: h.tester, Images: h.images,
		Target: target{}, Store: db, Logs: logsAdapter{h.logs}, WorkDir: filepath.Join(dir, "work"),
		Entries: func(name string) (*index.Entry, bool) { e, ok := h.entries[name]; return e, ok },
	}
	return h
}

// logsAdapter turns runlog's concrete writer into the interface.
type logsAdapter struct{ l *runlog.Logs }

func (a logsAdapter) Create(runID, stage string) (io.WriteCloser, error) {
	return a.l.Create(runID, stage)
}

func entry(app, job, url string) *index.Entry {
	return &index.Entry{AppID: app, JobID: job, GitURL: url, GitBranch: "master", GitPath: "/",
		TargetFile: "Dockerfile", DesiredTag: "latest", BuildContext: "./"}
}

func (h *harness) start(t *testing.T) *Runner {
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

func runAndWait(t *testing.T, r *Runner, req Request) *store.Run {
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
		s = append(s, st.Name+"="+string(st.State))
	}
	return strings.Join(s, " ")
}

const digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestRunOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		kind       string
		buildErr   error
		checks     []store.Check
		wantState  store.State
		wantStages string
		wantCalls  []string
	}{
		{
			name:       "branch run passes and delivers every tag",
			kind:       KindBranch,
			wantState:  store.Passed,
			wantStages: "build=passed test=passed deliver=passed",
			wantCalls: []string{
				"build localhost/cccp/demo/base:run-1 from FROM scratch",
				"push reg.test:5000/demo/base:test",
				"test reg.test:5000/demo/base@" + digestA,
				"tag reg.test:5000/demo/base@" + digestA + " -> reg.test:5000/demo/base:rc",
				"tag reg.test:5000/demo/base@" + digestA + " -> reg.test:5000/demo/base:latest",
				"tag reg.test:5000/demo/base@" + digestA + " -> reg.test:5000/demo/base:stable",
			},
		},
		{
			name:       "blocking check fails: no rc, no delivery",
			kind:       KindBranch,
			checks:     []store.Check{{Name: "smoke", State: store.Failed}},
			wantState:  store.Failed,
			wantStages: "build=passed test=failed deliver=skipped",
			wantCalls: []string{
				"build localhost/cccp/demo/base:run-1 from FROM scratch",
				"push reg.test:5000/demo/base:test",
				"test reg.test:5000/demo/base@" + digestA,
			},
		},
		{
			name:       "non-blocking check fails: still delivered",
			kind:       KindBranch,
			checks:     []store.Check{{Name: "lint", State: store.Failed}},
			wantState:  store.Passed,
			wantStages: "build=passed test=passed deliver=passed",
		},
		{
			name:       "build fails: nothing pushed or tagged",
			kind:       KindBranch,
			buildErr:   errors.New("Dockerfile:2: RUN false: exit status 1"),
			wantState:  store.Failed,
			wantStages: "build=failed test=skipped deliver=skipped",
			wantCalls:  []string{"build localhost/cccp/demo/base:run-1 from FROM scratch"},
		},
		{
			name:       "pull request run uses a per-run tag and never delivers",
			kind:       KindPR,
			wantState:  store.Passed,
			wantStages: "build=passed test=passed",
			wantCalls: []string{
				"build localhost/cccp/demo/base:run-1 from FROM scratch",
				"push reg.test:5000/demo/base:run-1",
				"test reg.test:5000/demo/base@" + digestA,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.builder.fail = tc.buildErr
			if tc.checks != nil {
				h.tester.checks = tc.checks
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
				if got := run.Stages[0].Error; !strings.Contains(got, "Dockerfile:2") {
					t.Errorf("build stage error = %q, want the builder's error", got)
				}
				lines, err := h.logs.Tail(run.ID, StageBuild, 5)
				if err != nil || !strings.Contains(strings.Join(lines, "\n"), "build failed") {
					t.Errorf("build log tail = %q (%v), want the failure kept", lines, err)
				}
			}
		})
	}
}

func TestSupersedeCancelsOlderRunOfSameBranch(t *testing.T) {
	h := newHarness(t)
	h.builder.block = make(chan struct{})
	h.builder.started = make(chan struct{}, 4)
	r := h.start(t)
	ctx := context.Background()
	first, err := r.Enqueue(ctx, Request{Project: "demo/base:latest", Cause: store.Cause{Kind: "push", Commit: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	<-h.builder.started // the first run is building
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
	close(h.builder.block)
	if got, _ := r.Wait(ctx, second.ID); got.State != store.Passed {
		t.Errorf("second run: %s (%s), want passed", got.State, got.Error)
	}
	for _, c := range h.rec.list() {
		if strings.Contains(c, ":run-"+first.ID) && strings.HasPrefix(c, "push") {
			t.Errorf("cancelled run pushed: %s", c)
		}
	}
}

func TestResumeAfterRestartSkipsPassedStages(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	// A run interrupted during its test stage, as a crash leaves it.
	run := &store.Run{Project: "demo/base:latest", Kind: KindBranch, GitURL: "file:///git/base", Branch: "master",
		Commit: "c0ffee", State: store.Running, Stages: plannedStages(KindBranch)}
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
		if strings.HasPrefix(c, "build") || strings.HasPrefix(c, "push") {
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
	if child.Cause.Kind != "parent" || child.Cause.Parent != "demo/base:latest" {
		t.Errorf("child cause = %+v", child.Cause)
	}
	want := "build localhost/cccp/demo/child:run-" + child.ID + " from FROM reg.test:5000/demo/base@" + digestA
	if !slices.Contains(h.rec.list(), want) {
		t.Errorf("calls %q lack %q", h.rec.list(), want)
	}
}

func TestOwnImage(t *testing.T) {
	r := &Runner{cfg: Config{Target: target{}, OwnRegistries: []string{"reg.test:5000", "registry.centos.org"}}}
	for _, tc := range []struct {
		image, repo, tag string
		ok               bool
	}{
		{"demo/base:latest", "demo/base", "latest", true},
		{"demo/base", "demo/base", "latest", true},
		{"centos", "centos", "latest", true},
		{"registry.centos.org/centos/centos:7", "centos/centos", "7", true},
		{"reg.test:5000/demo/base:rc", "demo/base", "rc", true},
		{"quay.io/demo/base:latest", "", "", false},
		{"localhost:5000/demo/base", "", "", false},
		{"demo/base@sha256:" + strings.Repeat("b", 64), "", "", false},
		{"${BASE}", "", "", false},
	} {
		t.Run(tc.image, func(t *testing.T) {
			repo, tag, ok := r.ownImage(tc.image)
			if ok != tc.ok || repo != tc.repo || tag != tc.tag {
				t.Errorf("ownImage(%q) = %q, %q, %v; want %q, %q, %v", tc.image, repo, tag, ok, tc.repo, tc.tag, tc.ok)
			}
		})
	}
}

func TestNewReportsMissingConfiguration(t *testing.T) {
	_, err := New(Config{})
	if err == nil || !strings.Contains(err.Error(), "Builder") || !strings.Contains(err.Error(), "WorkDir") {
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
	run, err := first.Enqueue(ctx, Request{Project: proposed.Key(), Kind: KindTrial, Entry: proposed,
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
	if want := "push reg.test:5000/demo/proposed:run-" + run.ID; !slices.Contains(h.rec.list(), want) {
		t.Errorf("calls %q lack %q", h.rec.list(), want)
	}
}
