package local_test

import (
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/testimage"
	"github.com/cccp-project/cccp/internal/types"
)

// Behaviour of the real runner over the local backend: what the pipeline
// decides (supersede, parent pins) seen in what buildah and the registry
// end up with.

const slowDockerfile = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sleep\", \"607\"]\n"

// waitFor polls the stored run until ok says so.
func waitFor(t *testing.T, w *world, id string, what string, ok func(*store.Run) bool) *store.Run {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		r, err := w.db.Run(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(r) {
			return r
		}
		if r.State.Done() {
			t.Fatalf("run %s ended (%s: %s) before %s", id, r.State, r.Error, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("run %s: %s did not happen", id, what)
	return nil
}

func TestSupersedeCancelsOnlyOlderRunsOfTheSameTarget(t *testing.T) {
	dir := t.TempDir()
	testgit.Write(t, dir, map[string]string{"Dockerfile": slowDockerfile})
	testimage.CopyBusybox(t, dir)
	testgit.Init(t, dir, "master")
	testgit.Commit(t, dir, "slow")
	app := newEntry("acme", "app", "file://"+dir)
	other := newEntry("acme", "other", gitRepo(t, map[string]string{"Dockerfile": baseDockerfile}, true))
	w := newWorld(t, app, other)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	enqueue := func(project string) *store.Run {
		t.Helper()
		r, err := w.runner.Enqueue(ctx, pipeline.Request{Project: project, Kind: types.KindBranch, Cause: store.Cause{Kind: types.CausePush}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// The old run builds the slow commit; a run of another entry waits
	// behind it (one worker).
	old := enqueue("acme/app:latest")
	waitFor(t, w, old.ID, "the build started at the backend", func(r *store.Run) bool { return r.Stages[0].Handle != "" })
	queued := enqueue("acme/other:latest")
	// A new commit on the branch: its run supersedes the old one.
	testgit.Write(t, dir, map[string]string{"Dockerfile": baseDockerfile})
	testgit.Commit(t, dir, "fast")
	newer := enqueue("acme/app:latest")

	got, err := w.runner.Wait(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.Cancelled || got.Error != "superseded by run "+newer.ID || got.Stages[0].State != store.Cancelled {
		t.Errorf("old run: %s, error %q, build %s; want cancelled, superseded by run %s", got.State, got.Error, got.Stages[0].State, newer.ID)
	}
	for _, r := range []*store.Run{newer, queued} {
		done, err := w.runner.Wait(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done.State != store.Passed {
			t.Errorf("run %s of %s: %s (%s), want passed", done.ID, done.Project, done.State, done.Error)
		}
	}
	// The old build was stopped, not left to sleep.
	if out, _ := exec.Command("pgrep", "-f", "busybox sleep 607").Output(); len(out) > 0 {
		t.Errorf("the superseded build still runs: pids %s", strings.Fields(string(out)))
	}
}

// imageConfig reads an image's config from the registry, from outside cccp.
func imageConfig(t *testing.T, ref string) (diffIDs []string) {
	t.Helper()
	out, err := exec.Command("skopeo", "inspect", "--config", "--tls-verify=false", "docker://"+ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --config %s: %v", ref, err)
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.RootFS.DiffIDs
}

func TestChildIsBuiltFromTheParentsDeliveredDigestNotItsNewerTestImage(t *testing.T) {
	pdir := t.TempDir()
	testgit.Write(t, pdir, map[string]string{
		"Dockerfile": strings.Replace(baseDockerfile, "echo base", "echo base-v1", 1),
		"cccp.yaml":  "job-id: base\ntest-script: test.sh\n",
		"test.sh":    "#!/bin/sh\nexit 0\n",
	})
	testimage.CopyBusybox(t, pdir)
	testgit.Init(t, pdir, "master")
	testgit.Commit(t, pdir, "v1")
	parent := newEntry("acme", "base", "file://"+pdir)
	child := newEntry("acme", "app", gitRepo(t, map[string]string{
		"Dockerfile": "FROM acme/base:latest\nRUN echo child > /www/child.html\n",
	}, false))
	child.DependsOn = []string{"acme/base:latest"}
	w := newWorld(t, parent, child)

	v1 := w.run(t, "acme/base:latest")
	if v1.State != store.Passed {
		t.Fatalf("parent v1: %s (%s)", v1.State, v1.Error)
	}
	// v2 builds and is pushed as :test, but fails its tests: :latest stays v1.
	testgit.Write(t, pdir, map[string]string{
		"Dockerfile": strings.Replace(baseDockerfile, "echo base", "echo base-v2", 1),
		"test.sh":    "#!/bin/sh\necho v2 is broken >&2\nexit 1\n",
	})
	testgit.Commit(t, pdir, "v2")
	v2 := w.run(t, "acme/base:latest")
	if v2.State != store.Failed || v2.Stages[0].State != store.Passed {
		t.Fatalf("parent v2: %s, build %s; want a built image that failed its tests", v2.State, v2.Stages[0].State)
	}
	d1, d2 := v1.Stages[0].Digest, v2.Stages[0].Digest
	if d1 == d2 {
		t.Fatalf("v1 and v2 have the same digest %s", d1)
	}

	c := w.run(t, "acme/app:latest")
	if c.State != store.Passed {
		t.Fatalf("child: %s (%s)", c.State, c.Error)
	}
	if b := c.Stages[0].Bases; len(b) != 1 || b[0].Image != "acme/base:latest" || !b[0].Pinned || b[0].Digest != d1 {
		t.Errorf("child bases = %+v, want acme/base:latest pinned to %s", b, d1)
	}
	// The child's own config: its layers start with exactly v1's.
	parentLayers := imageConfig(t, w.reg.Host()+"/acme/base@"+d1)
	childLayers := imageConfig(t, w.reg.Host()+"/acme/app@"+c.Stages[0].Digest)
	if len(childLayers) <= len(parentLayers) || !slices.Equal(childLayers[:len(parentLayers)], parentLayers) {
		t.Errorf("child layers %q do not start with the delivered parent's %q", childLayers, parentLayers)
	}
	out, err := w.podman("--runtime", "runc", "run", "--rm", "--quiet", "--tls-verify=false",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", w.reg.Host()+"/acme/app@"+c.Stages[0].Digest,
		"cat", "/www/index.html").Output()
	if err != nil || strings.TrimSpace(string(out)) != "base-v1" {
		t.Errorf("child's parent content: %v: %q, want base-v1", err, out)
	}
}

// A cccp that dies in the middle of a stage: the local backend's work dies
// with it, and the next start runs that stage again from its start, once
// for the build and once for the test stage.
func TestRestartInTheMiddleOfEachStageRerunsIt(t *testing.T) {
	e := newEntry("acme", "restart", gitRepo(t, map[string]string{
		"Dockerfile": strings.Replace(baseDockerfile, "RUN mkdir", "RUN sleep 3 && mkdir", 1),
		"cccp.yaml":  "job-id: restart\ntest-script: test.sh\n",
		"test.sh":    "#!/bin/sh\nsleep 3\necho tested\n",
	}, true))
	w := newWorld(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run, err := w.runner.Enqueue(ctx, pipeline.Request{Project: e.Key(), Kind: types.KindBranch, Cause: store.Cause{Kind: types.CauseManual}})
	if err != nil {
		t.Fatal(err)
	}
	for i, stage := range []int{0, 1} {
		waitFor(t, w, run.ID, "stage "+string(types.Stages[stage])+" started", func(r *store.Run) bool {
			return r.Stages[stage].State == store.Running && r.Stages[stage].Handle != ""
		})
		w.stop()
		if r, _ := w.db.Run(ctx, run.ID); r.State != store.Running || r.Stages[stage].State != store.Running {
			t.Fatalf("after stop %d: run %s, stage %s; want both still running", i+1, r.State, r.Stages[stage].State)
		}
		w.startRunner(t)
	}
	done, err := w.runner.Wait(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != store.Passed || done.Resumes != 2 {
		t.Fatalf("run %s (%s), resumes %d; want passed after 2 resumes", done.State, done.Error, done.Resumes)
	}
	for _, st := range []types.StageName{types.StageBuild, types.StageTest} {
		f, err := w.logs.Open(run.ID, string(st))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if !strings.Contains(string(b), "running the "+string(st)+" stage again from its start") {
			t.Errorf("%s log does not say it ran again:\n%s", st, b)
		}
	}
}
