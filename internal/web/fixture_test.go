package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/onboard"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

const (
	adminToken = "admin-token-0123456789"
	readToken  = "read-token-0123456789"
	secret     = "s3cr3t-registry-password"
)

// indexText is the test index: acme/base:latest, acme/web:latest FROM
// acme/base:latest, and acme/api:latest, in the style of the real index.
const indexText = `Projects:
  - id: 1
    app-id: acme
    job-id: base
    git-url: https://github.com/acme/base
    git-branch: master
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: ops@acme.example.org
    build-context: ./
    depends-on: null

  - id: 2
    app-id: acme
    job-id: web
    git-url: https://github.com/acme/web
    git-branch: main
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: ops@acme.example.org
    build-context: ./
    depends-on: acme/base:latest

  - id: 3
    app-id: acme
    job-id: api
    git-url: https://github.com/acme/api
    git-branch: master
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: ops@acme.example.org
    build-context: ./
    depends-on: acme/base:latest
`

// fixture is a server over a real bbolt store, real run logs and a real
// index on disk.
type fixture struct {
	t        *testing.T
	db       *store.DB
	logs     *runlog.Logs
	logsDir  string
	root     string // index root
	projects *IndexProjects
	actions  *recordingActions
	queuer   *storeQueuer
	srv      *Server
	h        http.Handler
	cfg      Config
}

func newFixture(t *testing.T, mod ...func(*Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, db: db, logs: runlog.New(filepath.Join(dir, "logs"), 0), logsDir: filepath.Join(dir, "logs"), root: filepath.Join(dir, "index")}
	if err := os.MkdirAll(filepath.Join(f.root, "index.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.root, "index.d", "acme.yaml"), []byte(indexText), 0o644); err != nil {
		t.Fatal(err)
	}
	f.projects = NewIndexProjects(f.loadIndex())
	f.actions = &recordingActions{db: db}
	f.queuer = &storeQueuer{f: f}
	f.cfg = Config{
		BaseURL:     "https://cccp.example.org",
		Runs:        db,
		Logs:        f.logs,
		Projects:    f.projects,
		Actions:     f.actions,
		Onboarder:   &onboard.Local{Root: f.root, Queue: f.queuer},
		Masker:      redact.NewMasker(secret),
		AdminTokens: []string{adminToken},
		SessionKey:  []byte(strings.Repeat("k", 32)),
	}
	for _, m := range mod {
		m(&f.cfg)
	}
	f.srv, err = New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.h = f.srv.Handler()
	return f
}

func (f *fixture) loadIndex() *index.Index {
	f.t.Helper()
	idx, fs, err := index.Load(context.Background(), f.root, index.LoadOptions{})
	if err != nil || index.HasErrors(fs) {
		f.t.Fatalf("load index: %v %v", err, fs)
	}
	return idx
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// addRun stores a run of project (an entry key, acme/web:latest) with its
// stages in the given states; a failed stage gets err as its error. A
// passed deliver stage pushed the images :test and :<desired-tag>.
func (f *fixture) addRun(project string, kind types.RunKind, cause store.Cause, states map[types.StageName]store.State, errMsg string) *store.Run {
	f.t.Helper()
	ctx := context.Background()
	name, _, _ := strings.Cut(project, ":") // project is an entry key, app-id/job-id:desired-tag
	r := &store.Run{Project: project, Kind: kind, Cause: cause, GitURL: "https://github.com/" + name,
		Branch: "master", Commit: "0123456789abcdef0123456789abcdef01234567", State: store.Queued, Created: t0}
	names := types.Stages
	if kind == types.KindPR {
		names = names[:2]
	}
	for _, n := range names {
		r.Stages = append(r.Stages, store.Stage{Name: n, State: store.Queued})
	}
	if err := f.db.CreateRun(ctx, r); err != nil {
		f.t.Fatal(err)
	}
	run, err := f.db.UpdateRun(ctx, r.ID, func(r *store.Run) error {
		r.Started = t0.Add(time.Second)
		final := store.Passed
		for i := range r.Stages {
			st := &r.Stages[i]
			st.State = states[st.Name]
			if st.State == "" {
				st.State = store.Queued
			}
			if st.State != store.Queued && st.State != store.Skipped {
				st.Started = t0.Add(time.Duration(i+1) * time.Minute)
			}
			if st.State.Done() && st.State != store.Skipped {
				st.Finished = st.Started.Add(42 * time.Second)
			}
			switch st.State {
			case store.Failed:
				st.Error = errMsg
				final = store.Failed
			case store.Running, store.Queued:
				if final == store.Passed {
					final = store.Running
				}
			}
		}
		r.State = final
		if final.Done() {
			r.Finished = t0.Add(5 * time.Minute)
			r.Error = errMsg
		}
		if states["deliver"] == store.Passed {
			_, tag, _ := strings.Cut(project, ":")
			d := "sha256:" + strings.Repeat("ab", 32)
			r.Images = []store.Image{{Ref: "registry.example.org/" + name + ":test", Digest: d}, {Ref: "registry.example.org/" + name + ":" + tag, Digest: d}}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return run
}

// writeLog writes a stage log through a real runlog Writer.
func (f *fixture) writeLog(runID, stage string, lines ...string) {
	f.t.Helper()
	w, err := f.logs.Create(runID, stage)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, l := range lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func (f *fixture) get(path string) *httptest.ResponseRecorder {
	return f.do(httptest.NewRequest("GET", path, nil))
}

// session signs in with token and returns the session cookie and its CSRF
// token.
func (f *fixture) session(token string) (*http.Cookie, string) {
	f.t.Helper()
	req := httptest.NewRequest("POST", "/signin", strings.NewReader("token="+token+"&next=/"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := f.do(req)
	if rec.Code != http.StatusSeeOther {
		f.t.Fatalf("sign in: %d %s", rec.Code, rec.Body)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie {
			return c, f.srv.auth.csrfFor(c.Value)
		}
	}
	f.t.Fatal("no session cookie")
	return nil, ""
}

// recordingActions stands in for the pipeline's runner (which needs
// buildah and podman): it records the calls and changes the real store as
// the runner would.
type recordingActions struct {
	db    *store.DB
	mu    sync.Mutex
	calls []string
}

func (a *recordingActions) Rerun(ctx context.Context, run *store.Run, actor string) (*store.Run, error) {
	a.mu.Lock()
	a.calls = append(a.calls, fmt.Sprintf("rerun %s by %s", run.ID, actor))
	a.mu.Unlock()
	nr := &store.Run{Project: run.Project, Kind: run.Kind, Branch: run.Branch, Commit: run.Commit, GitURL: run.GitURL,
		Cause: store.Cause{Kind: "retest", Actor: actor}, State: store.Queued, Stages: []store.Stage{{Name: "build", State: store.Queued}}}
	if err := a.db.CreateRun(ctx, nr); err != nil {
		return nil, err
	}
	return nr, nil
}

func (a *recordingActions) Cancel(ctx context.Context, id, actor string) error {
	a.mu.Lock()
	a.calls = append(a.calls, fmt.Sprintf("cancel %s by %s", id, actor))
	a.mu.Unlock()
	_, err := a.db.UpdateRun(ctx, id, func(r *store.Run) error {
		if !r.State.Done() {
			r.State = store.Cancelled
		}
		return nil
	})
	return err
}

func (a *recordingActions) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

// storeQueuer queues a first build as a run in the real store and reloads
// the index, as cmd's wiring does.
type storeQueuer struct {
	f   *fixture
	got []string
}

func (q *storeQueuer) QueueFirst(ctx context.Context, e index.Entry, actor string) (string, error) {
	q.got = append(q.got, e.Key()+" by "+actor)
	q.f.projects.Set(q.f.loadIndex())
	r := &store.Run{Project: e.Key(), Kind: "branch", Cause: store.Cause{Kind: "index", Actor: actor}, State: store.Queued,
		Stages: []store.Stage{{Name: "build", State: store.Queued}, {Name: "test", State: store.Queued}, {Name: "deliver", State: store.Queued}}}
	if err := q.f.db.CreateRun(ctx, r); err != nil {
		return "", err
	}
	return r.ID, nil
}

// hasAll reports each of want that body (named what in the message)
// lacks, and each of not that it has.
func hasAll(t *testing.T, what, body string, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
	for _, n := range not {
		if strings.Contains(body, n) {
			t.Errorf("%s has %q", what, n)
		}
	}
}
