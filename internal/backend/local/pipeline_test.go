package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend/local"
	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/sandbox"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/testimage"
	"github.com/cccp-project/cccp/internal/types"
)

// The whole local pipeline with real git repositories, buildah, podman,
// runc and cccp's embedded registry. Images are checked from outside cccp
// with skopeo and podman.

// gitRepo makes a real git repository with files and returns its file:// URL.
func gitRepo(t *testing.T, files map[string]string, withBusybox bool) string {
	t.Helper()
	dir := t.TempDir()
	testgit.Write(t, dir, files)
	if withBusybox {
		testimage.CopyBusybox(t, dir)
	}
	testgit.Init(t, dir, "master")
	testgit.Commit(t, dir, "app")
	return "file://" + dir
}

type world struct {
	reg     *registry.Embedded
	client  *registry.Client
	target  registry.Target
	db      *store.DB
	logs    *runlog.Logs
	runner  *pipeline.Runner
	backend *local.Backend
	entries map[string]*index.Entry

	dir        string
	user, pass string
	opts       worldOptions
	stop       func() // stops the runner and its backend, as a dying cccp would

	// root and runRoot are the world's container storage (buildah's
	// builds, the podman runs of the tests' checks), emptied at its end.
	root, runRoot string
}

func newWorld(t *testing.T, entries ...*index.Entry) *world {
	t.Helper()
	return newWorldWith(t, worldOptions{}, entries...)
}

// worldOptions change a world from its defaults.
type worldOptions struct {
	dir          string         // cccp's DATA; default a temporary folder
	limits       sandbox.Limits // default the sandbox's
	stageTimeout time.Duration  // default the pipeline's
	scope        string         // the sandbox's scope; default "cccp"
}

func newWorldWith(t *testing.T, opts worldOptions, entries ...*index.Entry) *world {
	t.Helper()
	testimage.Require(t)
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo is not installed")
	}
	ctx := context.Background()
	dir := opts.dir
	if dir == "" {
		dir = t.TempDir()
	}
	reg, err := registry.Start(ctx, registry.Config{Dir: filepath.Join(dir, "registry")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	user, pass := reg.PushCredentials()
	target, err := registry.ParseTarget(reg.Host())
	if err != nil {
		t.Fatal(err)
	}
	client := registry.NewClient(registry.ClientConfig{Credentials: map[string]registry.Credentials{reg.Host(): {User: user, Password: pass}}})
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{reg: reg, client: client, target: target, db: db, logs: runlog.New(filepath.Join(dir, "logs"), 1<<20), entries: map[string]*index.Entry{}}
	for _, e := range entries {
		w.entries[e.Key()] = e
	}
	w.dir, w.user, w.pass, w.opts = dir, user, pass, opts
	// Emptied after the runner stops (cleanups run last first).
	w.root, w.runRoot = testimage.Storage(t)
	w.startRunner(t)
	t.Cleanup(func() { w.stop() })
	return w
}

// startRunner starts a backend and a runner over the world's store and
// logs, as a start of cccp does.
func (w *world) startRunner(t *testing.T) {
	t.Helper()
	sb, err := sandbox.New(sandbox.Config{Limits: w.opts.limits, Scope: w.opts.scope})
	if err != nil {
		t.Fatalf("sandbox (hack/install-deps.sh, as root): %v", err)
	}
	w.backend, err = local.New(local.Config{Dir: filepath.Join(w.dir, "work"), Buildah: &buildah.Builder{Root: w.root, RunRoot: w.runRoot}, Podman: &podman.Runner{},
		Username: w.user, Password: w.pass, Insecure: func(string) bool { return true }, InsecureRegistries: []string{w.reg.Host()}, Hold: 2 * time.Second, Sandbox: sb,
		BuildIDs: buildIDs(t)})
	if err != nil {
		t.Fatal(err)
	}
	w.runner, err = pipeline.New(pipeline.Config{
		Resolver:      gitsrc.Resolver{},
		Builder:       w.backend,
		Tester:        w.backend,
		Images:        w.client,
		Target:        w.target,
		Store:         w.db,
		Logs:          runlog.StageLogs{Logs: w.logs},
		Entries:       func(n string) (*index.Entry, bool) { e, ok := w.entries[n]; return e, ok },
		OwnRegistries: []string{w.reg.Host()},
		StageTimeout:  w.opts.stageTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := w.runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	runner, backend := w.runner, w.backend
	w.stop = func() {
		cancel()
		<-runner.Stopped()
		backend.Close()
	}
}

func (w *world) run(t *testing.T, name string) *store.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run, err := w.runner.Enqueue(ctx, pipeline.Request{Project: name, Kind: types.KindBranch, Cause: store.Cause{Kind: types.CauseManual}})
	if err != nil {
		t.Fatal(err)
	}
	done, err := w.runner.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

// skopeoDigest reads a tag's digest anonymously, from outside cccp.
func skopeoDigest(t *testing.T, ref string) (string, bool) {
	t.Helper()
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+ref).Output()
	if err != nil {
		return "", false
	}
	var v struct{ Digest string }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("skopeo inspect %s: %v", ref, err)
	}
	return v.Digest, true
}

func newEntry(app, job, url string) *index.Entry {
	return &index.Entry{AppID: app, JobID: job, GitURL: url, GitBranch: "master", GitPath: "/",
		TargetFile: "Dockerfile", DesiredTag: "latest", BuildContext: "./"}
}

const baseDockerfile = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /tmp /www && echo base > /www/index.html
CMD ["sleep", "3600"]
`

func TestPipelinePassingAppDeliversAllTags(t *testing.T) {
	e := newEntry("acme", "web", gitRepo(t, map[string]string{
		"Dockerfile": baseDockerfile,
		"cccp.yaml":  "job-id: web\ntest-skip: false\ntest-script: test.sh\n",
		"test.sh":    "#!/bin/sh\nset -e\necho \"image=$IMAGE_NAME container=$CONTAINER_NAME\"\npodman exec \"$CONTAINER_NAME\" cat /www/index.html | grep -q base\n",
	}, true))
	e.ExtraTags = []string{"v1"}
	w := newWorld(t, e)
	run := w.run(t, "acme/web:latest")
	if run.State != store.Passed {
		tail, _ := w.logs.Tail(run.ID, string(types.StageTest), 30)
		t.Fatalf("run %s: %s (%s)\n%s", run.ID, run.State, run.Error, strings.Join(tail, "\n"))
	}
	digest := run.Stages[0].Digest
	// The backend's checkout and work log went with the finished run.
	for _, p := range []string{filepath.Join(w.dir, "work", "work", "run-"+run.ID), filepath.Join(w.dir, "work", "logs", run.ID)} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is left after the run ended (%v)", p, err)
		}
	}
	for _, tag := range []string{"test", "rc", "latest", "v1"} {
		ref := w.reg.Host() + "/acme/web:" + tag
		got, ok := skopeoDigest(t, ref)
		if !ok || got != digest {
			t.Errorf("%s: digest %q (found %v), want %s", ref, got, ok, digest)
		}
	}
	var userScript *store.Check
	for i, c := range run.Stages[1].Checks {
		if c.Name == types.CheckUserScript {
			userScript = &run.Stages[1].Checks[i]
		}
	}
	if userScript == nil || userScript.State != store.Passed {
		t.Errorf("user-script check = %+v, want passed", userScript)
	}
	// The delivered image runs when pulled from outside cccp.
	ref := w.reg.Host() + "/acme/web:latest"
	out, err := w.podman("--runtime", "runc", "run", "--rm", "--quiet", "--tls-verify=false",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", ref, "cat", "/www/index.html").Output()
	if err != nil || strings.TrimSpace(string(out)) != "base" {
		t.Errorf("podman run %s: %v: %q", ref, err, out)
	}
}

func TestPipelineFailingUserTestStopsBeforeRC(t *testing.T) {
	e := newEntry("acme", "broken-test", gitRepo(t, map[string]string{
		"Dockerfile": baseDockerfile,
		"cccp.yaml":  "job-id: broken-test\ntest-script: test.sh\n",
		"test.sh":    "#!/bin/sh\necho 'checking the answer'\necho 'expected 42, got 41' >&2\nexit 3\n",
	}, true))
	w := newWorld(t, e)
	run := w.run(t, "acme/broken-test:latest")
	if run.State != store.Failed || run.Stages[1].State != store.Failed || run.Stages[2].State != store.Skipped {
		t.Fatalf("run: %s, stages %+v", run.State, run.Stages)
	}
	if _, ok := skopeoDigest(t, w.reg.Host()+"/acme/broken-test:test"); !ok {
		t.Errorf(":test missing: the build stage passed and its image is kept")
	}
	for _, tag := range []string{"rc", "latest"} {
		if d, ok := skopeoDigest(t, w.reg.Host()+"/acme/broken-test:"+tag); ok {
			t.Errorf(":%s exists (%s) after a failed test", tag, d)
		}
	}
	f, err := w.logs.Open(run.ID, string(types.StageTest))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log, _ := io.ReadAll(f)
	if !strings.Contains(string(log), "expected 42, got 41") {
		t.Errorf("test log lacks the script's output:\n%s", log)
	}
	for _, c := range run.Stages[1].Checks {
		if c.Name == types.CheckUserScript && !slices.Contains(c.Explain, "expected 42, got 41") {
			t.Errorf("user-script check explains itself with %q; want the script's own lines", c.Explain)
		}
	}
	if run.Stages[1].Reason != pipeline.ReasonChecksFailed {
		t.Errorf("test stage reason %q, want %s", run.Stages[1].Reason, pipeline.ReasonChecksFailed)
	}
	// The stored check carries the script's own lines that explain it.
	stored, err := w.db.Run(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(stored.Stages[1].Checks, func(c store.Check) bool { return c.Name == types.CheckUserScript })
	if i < 0 {
		t.Fatalf("no user-script check stored: %+v", stored.Stages[1].Checks)
	}
	if c := stored.Stages[1].Checks[i]; !slices.Equal(c.Explain, []string{"checking the answer", "expected 42, got 41"}) {
		t.Errorf("user-script explain = %q, want the script's two lines", c.Explain)
	}
}

func TestPipelineBuildFailureNamesDockerfileLine(t *testing.T) {
	e := newEntry("acme", "broken-build", gitRepo(t, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"false\"]\n",
	}, true))
	w := newWorld(t, e)
	run := w.run(t, "acme/broken-build:latest")
	if run.State != store.Failed || run.Stages[0].State != store.Failed {
		t.Fatalf("run %s, build %s", run.State, run.Stages[0].State)
	}
	if got := run.Stages[0].Reason; got != local.ReasonBuildFailed {
		t.Errorf("build reason = %q, want %s", got, local.ReasonBuildFailed)
	}
	if got := run.Stages[0].Error; !strings.Contains(got, "Dockerfile:3") {
		t.Errorf("build error = %q, want it to name Dockerfile:3", got)
	}
	if len(run.Images) != 0 {
		t.Errorf("images after a failed build: %+v", run.Images)
	}
	// buildah leaves the failed step's working container (mounted); the
	// backend removes it, no other build being under way.
	if out, err := exec.Command("buildah", "--root", w.root, "--runroot", w.runRoot, "containers", "--all", "--quiet").Output(); err != nil || len(out) != 0 {
		t.Errorf("working containers after the failed build: %v: %q", err, out)
	}
}

func TestPipelineChildBuildsFromParentsDeliveredDigest(t *testing.T) {
	parent := newEntry("acme", "base", gitRepo(t, map[string]string{"Dockerfile": baseDockerfile}, true))
	child := newEntry("acme", "app", gitRepo(t, map[string]string{
		"Dockerfile": "FROM acme/base:latest\nRUN echo child > /www/child.html\n",
	}, false))
	child.DependsOn = []string{"acme/base:latest"}
	w := newWorld(t, parent, child)
	p := w.run(t, "acme/base:latest")
	if p.State != store.Passed {
		t.Fatalf("parent: %s (%s)", p.State, p.Error)
	}
	c := w.run(t, "acme/app:latest")
	if c.State != store.Passed {
		t.Fatalf("child: %s (%s)", c.State, c.Error)
	}
	f, err := w.logs.Open(c.ID, string(types.StageBuild))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log, _ := io.ReadAll(f)
	want := "pinned to " + w.reg.Host() + "/acme/base@" + p.Stages[0].Digest
	if !strings.Contains(string(log), want) {
		t.Errorf("child build log lacks %q:\n%s", want, log)
	}
	// The child really carries the parent's layers and its own file.
	out, err := w.podman("--runtime", "runc", "run", "--rm", "--quiet", "--tls-verify=false",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", w.reg.Host()+"/acme/app:latest",
		"cat", "/www/index.html", "/www/child.html").Output()
	if err != nil || strings.Join(strings.Fields(string(out)), " ") != "base child" {
		t.Errorf("child image content: %v: %q", err, out)
	}
}

// podman runs podman in the world's storage.
func (w *world) podman(args ...string) *exec.Cmd {
	return exec.Command("podman", append([]string{"--root", w.root, "--runroot", w.runRoot}, args...)...)
}
