package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	buildv1 "github.com/openshift/api/build/v1"
	"github.com/openshift/client-go/build/clientset/versioned/fake"
	"github.com/openshift/client-go/build/clientset/versioned/scheme"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fakerest "k8s.io/client-go/rest/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cccp-project/cccp/internal/backend/jenkins/jenkinstest"
	"github.com/cccp-project/cccp/internal/backend/openshift"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/testimage"
)

// One project built by the OpenShift backend and tested by the Jenkins
// backend, both against their doubles (openshift/client-go's fake
// clientset playing a cluster's build controller; jenkinstest), driven
// through `cccp serve` and its real pipeline runner: onboarding through the
// API queues the first run, whose page shows the Build's log, the Jenkins
// console and the checks table; a run cancelled through the API while
// OpenShift builds sets the Build's status.cancelled, and one cancelled
// while Jenkins tests stops the Jenkins build.
func TestServeBuildsOnOpenShiftTestsOnJenkins(t *testing.T) {
	dir := t.TempDir()
	reg := testimage.Registry(t, "", "")
	jk := jenkinstest.New(t)
	cluster := newFakeCluster(t, "cccp-builds")

	repo := filepath.Join(dir, "repos", "web")
	testgit.Write(t, repo, map[string]string{"Dockerfile": "FROM registry.example.org/base:1\nRUN make\n"})
	testgit.Init(t, repo, "main")
	commit := testgit.Commit(t, repo, "web")
	// Onboarding never accepts file:// URLs: the repository is served over
	// HTTP by git's own http-backend.
	gitURL := serveGit(t, filepath.Dir(repo)) + "/web"
	if err := os.MkdirAll(filepath.Join(dir, "index", "index.d"), 0o755); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	const admin = "admin-token-of-this-test-0123456789"
	writeFile(t, filepath.Join(dir, "config.yaml"), fmt.Sprintf(`listen: %s
data: %s
index: {path: %s, allow_file_urls: true}
registry: {external: %s/cccp, address: %s}
pipeline:
  # The recorded results.json has the user script failing (UNSTABLE).
  blocking: [smoke]
  build:
    backend: openshift
    openshift: {namespace: cccp-builds}
  test:
    backend: jenkins
    jenkins: {url: %q, user: %s, token: %s, job: %s, poll: 1s}
web: {admin_tokens: [%s]}
`, addr, filepath.Join(dir, "data"), filepath.Join(dir, "index"), reg, freeAddr(t), jk.URL, jk.User, jk.Token, jenkinstest.Job, admin))
	cfg, err := loadServeConfig(filepath.Join(dir, "config.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pipeline.Build.connect = cluster.connect

	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	served := make(chan error, 1)
	go func() { served <- serve(ctx, &stderr, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(time.Minute):
			t.Error("serve did not stop")
		}
	})
	base := "http://" + addr
	api := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	waitFor := func(what string, d time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(d); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waited %s for %s; serve said:\n%s", d, what, stderr.String())
			}
		}
	}
	waitFor("serve to be ready", time.Minute, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	state := func(id string) string {
		_, run := api("GET", "/api/v1/runs/"+id, nil)
		s, _ := run["state"].(string)
		return s
	}
	finished := func(id string) string {
		t.Helper()
		var s string
		waitFor("run "+id+" to finish", 3*time.Minute, func() bool {
			s = state(id)
			return s == "passed" || s == "failed" || s == "cancelled"
		})
		return s
	}

	// Onboarding queues the first run.
	code, onboarded := api("POST", "/api/v1/projects", map[string]any{
		"app-id": "acme", "job-id": "web", "git-url": gitURL, "git-branch": "main", "git-path": "/",
		"target-file": "Dockerfile", "desired-tag": "latest", "build-context": "./", "notify-email": []string{"team@acme.example.org"},
	})
	first, _ := onboarded["run_id"].(string)
	if code != http.StatusCreated || first == "" {
		t.Fatalf("POST /api/v1/projects: %d %v", code, onboarded)
	}
	if s := finished(first); s != "passed" {
		_, run := api("GET", "/api/v1/runs/"+first, nil)
		t.Fatalf("run %s %s: %v", first, s, run)
	}
	resp, err := http.Get(base + "/runs/" + first)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"Cloning &#34;" + gitURL + "&#34;",    // the Build's log, from builds/log
		"STEP 2/2: RUN make",                  // ...
		"[Pipeline] Start of Pipeline",        // the Jenkins console
		`<table class="checks">`, "<td>smoke", // the checks table, from results.json
		"Commit:\t" + commit,
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the run page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("run page:\n%s", page)
	}

	rerun := func() string {
		t.Helper()
		code, run := api("POST", "/api/v1/runs/"+first+"/rerun", nil)
		id, _ := run["id"].(string)
		if code != http.StatusCreated || id == "" {
			t.Fatalf("rerun: %d %v", code, run)
		}
		return id
	}
	cancelRun := func(id string) {
		t.Helper()
		if code, run := api("POST", "/api/v1/runs/"+id+"/cancel", nil); code != http.StatusOK {
			t.Fatalf("cancel %s: %d %v", id, code, run)
		}
		if s := finished(id); s != "cancelled" {
			t.Errorf("run %s %s after /cancel, want cancelled", id, s)
		}
	}

	t.Run("cancel while OpenShift builds", func(t *testing.T) {
		cluster.hold(true)
		defer cluster.hold(false)
		id := rerun()
		var build string
		waitFor("the Build to run", time.Minute, func() bool { build = cluster.running(); return build != "" })
		cancelRun(id)
		waitFor("status.cancelled on "+build, time.Minute, func() bool { return cluster.cancelledByUpdate(build) })
	})

	t.Run("cancel while Jenkins tests", func(t *testing.T) {
		started := make(chan struct{})
		var once sync.Once
		jk.Queue(jenkinstest.Script{Steps: 100000, OnStep: func(int) { once.Do(func() { close(started) }) }})
		id := rerun()
		select {
		case <-started:
		case <-time.After(3 * time.Minute):
			t.Fatalf("the Jenkins build never ran; calls %q", jk.Calls())
		}
		cancelRun(id)
		waitFor("POST .../stop", time.Minute, func() bool {
			for _, c := range jk.Calls() {
				if c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/stop") {
					return true
				}
			}
			return false
		})
	})
}

// serveGit serves the git repositories under root over HTTP (smart
// protocol, read-only) and returns the server's URL.
func serveGit(t *testing.T, root string) string {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("git: %v", err)
	}
	srv := httptest.NewServer(&cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	})
	t.Cleanup(srv.Close)
	return srv.URL
}

// fakeCluster is openshift/client-go's fake clientset with what a cluster
// does that the fake does not: instantiate makes a Build from the
// BuildConfig, a build controller runs it (pushes a random image to its
// output and completes with that digest, or, held, runs until
// status.cancelled is set), and builds/log streams its log.
type fakeCluster struct {
	t    *testing.T
	ns   string
	cs   *fake.Clientset
	logs *fakerest.RESTClient

	mu       sync.Mutex
	holding  bool
	current  string // the held Build that is running
	versions map[string]int64
}

var buildsResource = buildv1.GroupVersion.WithResource("builds")

func newFakeCluster(t *testing.T, ns string) *fakeCluster {
	c := &fakeCluster{t: t, ns: ns, cs: fake.NewSimpleClientset(), versions: map[string]int64{}}
	c.cs.PrependReactor("create", "buildconfigs", c.instantiate)
	c.logs = &fakerest.RESTClient{
		NegotiatedSerializer: scheme.Codecs.WithoutConversion(),
		GroupVersion:         buildv1.GroupVersion,
		VersionedAPIPath:     "/apis/build.openshift.io/v1",
		Client:               fakerest.CreateHTTPClient(c.serveLog),
	}
	return c
}

func (c *fakeCluster) connect(cfg openshift.Config) (*openshift.Builder, error) {
	return openshift.NewWithClients(cfg, c.cs.BuildV1(), c.logs)
}

func (c *fakeCluster) hold(on bool) {
	c.mu.Lock()
	c.holding, c.current = on, ""
	c.mu.Unlock()
}

func (c *fakeCluster) running() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current
}

// cancelledByUpdate tells whether cccp updated the Build with
// status.cancelled set, as `oc cancel-build` does.
func (c *fakeCluster) cancelledByUpdate(build string) bool {
	for _, a := range c.cs.Actions() {
		u, ok := a.(k8stesting.UpdateAction)
		if !ok || a.GetResource() != buildsResource {
			continue
		}
		if b, ok := u.GetObject().(*buildv1.Build); ok && b.Name == build && b.Status.Cancelled {
			return true
		}
	}
	return false
}

func (c *fakeCluster) instantiate(action k8stesting.Action) (bool, runtime.Object, error) {
	ca, ok := action.(k8stesting.CreateAction)
	if !ok || action.GetSubresource() != "instantiate" {
		return false, nil, nil
	}
	req := ca.GetObject().(*buildv1.BuildRequest)
	obj, err := c.cs.Tracker().Get(buildv1.GroupVersion.WithResource("buildconfigs"), c.ns, req.Name)
	if err != nil {
		return true, nil, err
	}
	bc := obj.(*buildv1.BuildConfig)
	c.mu.Lock()
	c.versions[bc.Name]++
	n := c.versions[bc.Name]
	c.mu.Unlock()
	b := &buildv1.Build{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", bc.Name, n), Namespace: c.ns,
			Labels: req.Labels, Annotations: req.Annotations},
		Spec: buildv1.BuildSpec{CommonSpec: *bc.Spec.CommonSpec.DeepCopy(), TriggeredBy: req.TriggeredBy},
		Status: buildv1.BuildStatus{Phase: buildv1.BuildPhaseNew,
			Config: &corev1.ObjectReference{Kind: "BuildConfig", Namespace: c.ns, Name: bc.Name}},
	}
	b.Spec.Revision = req.Revision
	if err := c.cs.Tracker().Create(buildsResource, b, c.ns); err != nil {
		return true, nil, err
	}
	go c.run(b.Name)
	return true, b, nil
}

func (c *fakeCluster) set(name string, f func(*buildv1.Build)) *buildv1.Build {
	obj, err := c.cs.Tracker().Get(buildsResource, c.ns, name)
	if err != nil {
		return nil
	}
	b := obj.(*buildv1.Build).DeepCopy()
	f(b)
	if err := c.cs.Tracker().Update(buildsResource, b, c.ns); err != nil {
		return nil
	}
	return b
}

// run is the build controller for one Build.
func (c *fakeCluster) run(build string) {
	b := c.set(build, func(b *buildv1.Build) { b.Status.Phase = buildv1.BuildPhaseRunning })
	if b == nil {
		return
	}
	c.mu.Lock()
	held := c.holding
	if held {
		c.current = build
	}
	c.mu.Unlock()
	if held {
		for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			obj, err := c.cs.Tracker().Get(buildsResource, c.ns, build)
			if err == nil && obj.(*buildv1.Build).Status.Cancelled {
				c.set(build, func(b *buildv1.Build) {
					b.Status.Phase, b.Status.Reason, b.Status.Message = buildv1.BuildPhaseCancelled, buildv1.StatusReasonCancelledBuild, "The build was cancelled by the user."
				})
				return
			}
		}
		return
	}
	digest, err := pushRandom(b.Spec.Output.To)
	if err != nil {
		c.t.Errorf("fake cluster: %v", err)
		c.set(build, func(b *buildv1.Build) {
			b.Status.Phase, b.Status.Reason = buildv1.BuildPhaseFailed, buildv1.StatusReasonPushImageToRegistryFailed
		})
		return
	}
	c.set(build, func(b *buildv1.Build) {
		b.Status.Phase = buildv1.BuildPhaseComplete
		b.Status.Output.To = &buildv1.BuildStatusOutputTo{ImageDigest: digest}
	})
}

// pushRandom pushes a small random image where a Build's output points
// and returns its digest.
func pushRandom(out *corev1.ObjectReference) (string, error) {
	if out == nil || out.Kind != "DockerImage" {
		return "", fmt.Errorf("build output %v is not a DockerImage", out)
	}
	ref, err := name.ParseReference(out.Name, name.Insecure)
	if err != nil {
		return "", err
	}
	img, err := random.Image(512, 2)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img); err != nil {
		return "", fmt.Errorf("push %s: %w", out.Name, err)
	}
	d, err := img.Digest()
	return d.String(), err
}

// logText is the log a Build prints, in the form of OpenShift's docker
// strategy (buildah) output.
func (c *fakeCluster) logText(b *buildv1.Build) string {
	uri, commit := "", ""
	if b.Spec.Source.Git != nil {
		uri = b.Spec.Source.Git.URI
	}
	if b.Spec.Revision != nil && b.Spec.Revision.Git != nil {
		commit = b.Spec.Revision.Git.Commit
	}
	return fmt.Sprintf("Cloning %q ...\n\tCommit:\t%s\nSTEP 1/2: FROM registry.example.org/base:1\nSTEP 2/2: RUN make\n", uri, commit)
}

// serveLog answers GET .../builds/NAME/log: the Build's log once it runs;
// a held Build's stream stays open until it is cancelled.
func (c *fakeCluster) serveLog(req *http.Request) (*http.Response, error) {
	parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/apis/build.openshift.io/v1/"), "/")
	if len(parts) != 5 || parts[2] != "builds" || parts[4] != "log" {
		return nil, fmt.Errorf("unexpected request %s %s", req.Method, req.URL)
	}
	c.cs.Invokes(k8stesting.NewGetSubresourceAction(buildsResource, parts[1], "log", parts[3]), nil)
	obj, err := c.cs.Tracker().Get(buildsResource, parts[1], parts[3])
	if err == nil && obj.(*buildv1.Build).Status.Phase == buildv1.BuildPhaseNew {
		err = apierrors.NewBadRequest("build " + parts[3] + " is not running yet")
	}
	if err != nil {
		status := apierrors.NewInternalError(err).ErrStatus
		if s, ok := err.(apierrors.APIStatus); ok {
			status = s.Status()
		}
		body, _ := json.Marshal(status)
		return &http.Response{StatusCode: int(status.Code), Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(body))}, nil
	}
	b := obj.(*buildv1.Build)
	text := c.logText(b)
	body := io.NopCloser(strings.NewReader(text))
	if b.Status.Phase == buildv1.BuildPhaseRunning && c.running() == b.Name {
		r, w := io.Pipe()
		go func() {
			io.WriteString(w, text+"STEP 3/3: RUN sleep 600\n")
			for {
				o, err := c.cs.Tracker().Get(buildsResource, c.ns, b.Name)
				if err != nil || o.(*buildv1.Build).Status.Phase != buildv1.BuildPhaseRunning {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			w.Close()
		}()
		body = r
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/plain"}}, Body: body}, nil
}
