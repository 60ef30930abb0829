package jenkins_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/jenkins"
	"github.com/cccp-project/cccp/internal/backend/jenkins/jenkinstest"
	"github.com/cccp-project/cccp/internal/backend/local"
	"github.com/cccp-project/cccp/internal/backend/testreport"
	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/testimage"
	"github.com/cccp-project/cccp/internal/types"
)

// The real pipeline runner, building with the local backend (git, buildah,
// the embedded registry) and testing on the Jenkins double: the stage
// stores the Jenkins handle, the test log is the build's console, the
// checks come from results.json, :rc follows a pass, and a cancelled run
// aborts its Jenkins build.
func TestPipelineTestsOnJenkins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with buildah; not in -short")
	}
	testimage.Require(t)
	ctx := context.Background()
	dir := t.TempDir()
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
	logs := runlog.New(filepath.Join(dir, "logs"), 1<<20)

	repo := t.TempDir()
	testgit.Write(t, repo, map[string]string{"Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n"})
	testimage.CopyBusybox(t, repo)
	testgit.Init(t, repo, "master")
	testgit.Commit(t, repo, "app")
	entry := &index.Entry{AppID: "acme", JobID: "web", GitURL: "file://" + repo, GitBranch: "master", GitPath: "/",
		TargetFile: "Dockerfile", DesiredTag: "latest", BuildContext: "./"}

	root, runRoot := testimage.Storage(t) // what the build pulls and caches goes with the test
	builder, err := local.New(local.Config{Dir: filepath.Join(dir, "work"), Buildah: &buildah.Builder{Root: root, RunRoot: runRoot}, Podman: &podman.Runner{},
		Username: user, Password: pass, Insecure: func(string) bool { return true }, InsecureRegistries: []string{reg.Host()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { builder.Close() })

	j := jenkinstest.New(t)
	j.Crumbs = true
	var passing bytes.Buffer
	var all []backend.CheckResult
	for _, c := range types.Checks {
		all = append(all, backend.CheckResult{Name: c, State: backend.CheckPassed, Summary: "fine"})
	}
	if err := testreport.Write(&passing, testreport.Report{Image: "x", Checks: testreport.FromCheckResults(all)}); err != nil {
		t.Fatal(err)
	}
	j.Queue(jenkinstest.Script{Queue: []string{"buildable"}, Results: passing.Bytes()}, jenkinstest.Script{Steps: 1 << 30})
	tester, err := jenkins.New(jenkins.Config{URL: j.URL, User: j.User, Token: j.Token, Job: jenkinstest.Job, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	runner, err := pipeline.New(pipeline.Config{
		Resolver: gitsrc.Resolver{}, Builder: builder, Tester: tester, Images: client, Target: target, Store: db,
		Logs:          runlog.StageLogs{Logs: logs},
		Entries:       func(n string) (*index.Entry, bool) { return entry, n == entry.Key() },
		OwnRegistries: []string{reg.Host()},
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	if err := runner.Start(rctx); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	enqueue := func() *store.Run {
		// Forced: the second run has the inputs of the first and would
		// otherwise be up to date without reaching Jenkins.
		run, err := runner.Enqueue(wctx, pipeline.Request{Project: entry.Key(), Kind: types.KindBranch, Cause: store.Cause{Kind: types.CauseManual}, Force: true})
		if err != nil {
			t.Fatal(err)
		}
		return run
	}

	t.Run("a pass is tested on Jenkins and tagged rc", func(t *testing.T) {
		run, err := runner.Wait(wctx, enqueue().ID)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := logs.Open(run.ID, string(types.StageTest))
		var testLog []byte
		if f != nil {
			testLog, _ = io.ReadAll(f)
			f.Close()
		}
		if run.State != store.Passed {
			t.Fatalf("run %s: %s (%s)\ntest log:\n%s", run.ID, run.State, run.Error, testLog)
		}
		st := run.Stages[1]
		if st.Backend != jenkins.Name || st.Handle != "job/cccp-test/queue/7" {
			t.Errorf("test stage at %q %q, want jenkins job/cccp-test/queue/7", st.Backend, st.Handle)
		}
		if len(st.Checks) != len(types.Checks) {
			t.Errorf("%d checks stored, want %d", len(st.Checks), len(types.Checks))
		}
		for _, want := range []string{"jenkins: waiting in the queue: Waiting for next available executor", "[Pipeline] Start of Pipeline", "Finished: UNSTABLE"} {
			if !strings.Contains(string(testLog), want) {
				t.Errorf("test log lacks %q:\n%s", want, testLog)
			}
		}
		form := j.Form(7)
		wantImage := reg.Host() + "/acme/web@" + run.Stages[0].Digest
		if form.Get("IMAGE") != wantImage || form.Get("SOURCE_COMMIT") != run.Commit || form.Get("ENTRY") != "acme/web:latest" || form.Get("RUN_ID") != run.ID {
			t.Errorf("queued with %v; want IMAGE %s, SOURCE_COMMIT %s, RUN_ID %s", form, wantImage, run.Commit, run.ID)
		}
		rc, err := client.Digest(wctx, reg.Host()+"/acme/web:rc")
		if err != nil || rc != run.Stages[0].Digest {
			t.Errorf(":rc = %q, %v; want %s", rc, err, run.Stages[0].Digest)
		}
	})

	t.Run("a cancelled run aborts its Jenkins build", func(t *testing.T) {
		run := enqueue()
		deadline := time.Now().Add(4 * time.Minute)
		for !hasCall(j, "GET /job/cccp-test/13/logText/progressiveText?start=0") {
			if time.Now().After(deadline) {
				t.Fatalf("the Jenkins build never started; calls %q", j.Calls())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := runner.Cancel(wctx, run.ID, "test"); err != nil {
			t.Fatal(err)
		}
		done, err := runner.Wait(wctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done.State != store.Cancelled {
			t.Errorf("run %s, want cancelled", done.State)
		}
		// The run is recorded cancelled first; the worker then stops the
		// work at its backend.
		deadline = time.Now().Add(time.Minute)
		for !hasCall(j, "POST /job/cccp-test/13/stop") {
			if time.Now().After(deadline) {
				t.Fatalf("the Jenkins build was not stopped: %q", j.Calls())
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
