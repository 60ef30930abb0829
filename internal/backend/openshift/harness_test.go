package openshift

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	"github.com/openshift/client-go/build/clientset/versioned/fake"
	"github.com/openshift/client-go/build/clientset/versioned/scheme"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	fakerest "k8s.io/client-go/rest/fake"
	k8stesting "k8s.io/client-go/testing"
)

var update = flag.Bool("update", false, "rewrite golden files and testdata/actions.txt")

var buildsGVR = buildv1.GroupVersion.WithResource("builds")

// actionsSeen collects every (verb, resource, subresource) the fakes of
// this package's tests saw; TestMain compares them with
// testdata/actions.txt, the list a Role for this backend must grant.
var actionsSeen = struct {
	sync.Mutex
	set map[string]bool
}{set: map[string]bool{}}

const actionsFile = "testdata/actions.txt"

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	// Only a full run sees every action.
	if code != 0 || flag.Lookup("test.run").Value.String() != "" || flag.Lookup("test.bench").Value.String() != "" {
		os.Exit(code)
	}
	var lines []string
	for a := range actionsSeen.set {
		lines = append(lines, a)
	}
	slices.Sort(lines)
	got := "# The Kubernetes API requests the openshift build backend made in its tests,\n" +
		"# as `verb resource[/subresource]` in group build.openshift.io, namespaced.\n" +
		"# Regenerate with `go test ./internal/backend/openshift -update`; a Role for cccp grants exactly these.\n" +
		strings.Join(lines, "\n") + "\n"
	if *update {
		if err := os.WriteFile(actionsFile, []byte(got), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	want, err := os.ReadFile(actionsFile)
	if err != nil || string(want) != got {
		fmt.Fprintf(os.Stderr, "%s differs from the actions the tests saw (run with -update):\n--- want\n%s--- got\n%s", actionsFile, want, got)
		os.Exit(1)
	}
	os.Exit(0)
}

// simClock is simulated time: Sleep advances it at once.
type simClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  []time.Duration
	sleeps int
}

func newSimClock() *simClock { return &simClock{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)} }

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *simClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a Builder on openshift/client-go's fake clientset, with the
// server behaviour the fake lacks added as reactors: instantiate (the fake
// would store the BuildRequest as an update of the BuildConfig), builds/log
// (the fake's RESTClient is nil), and scripted watches.
type harness struct {
	t     *testing.T
	cs    *fake.Clientset
	b     *Builder
	clock *simClock

	mu       sync.Mutex
	sessions [][]watch.Event // scripted watches, one per Watch call
	watches  []k8stesting.WatchActionImpl
	logs     []func() (io.ReadCloser, error) // one per builds/log request
	logURLs  []string

	// cluster, when set, answers watches from the fake's object tracker
	// and builds/log by build name, instead of the scripts.
	cluster func(name string) (io.ReadCloser, error)
}

func newHarness(t testing.TB, cfg Config, objs ...runtime.Object) *harness {
	h := &harness{cs: fake.NewSimpleClientset(objs...), clock: newSimClock()}
	if tt, ok := t.(*testing.T); ok {
		h.t = tt
	}
	h.cs.PrependReactor("create", "buildconfigs", h.instantiate)
	h.cs.PrependReactor("get", "builds", h.buildLog)
	h.cs.PrependWatchReactor("builds", h.watch)
	logs := &fakerest.RESTClient{
		NegotiatedSerializer: scheme.Codecs.WithoutConversion(),
		GroupVersion:         buildv1.GroupVersion,
		VersionedAPIPath:     "/apis/build.openshift.io/v1",
		Client:               fakerest.CreateHTTPClient(h.serveLog),
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "cccp"
	}
	h.b = newBuilder(cfg, h.cs.BuildV1(), logs, h.clock)
	t.Cleanup(h.record)
	return h
}

func (h *harness) record() {
	actionsSeen.Lock()
	defer actionsSeen.Unlock()
	for _, a := range h.cs.Actions() {
		r := a.GetResource().Resource
		if s := a.GetSubresource(); s != "" {
			r += "/" + s
		}
		actionsSeen.set[a.GetVerb()+" "+r] = true
	}
}

// actions lists what the fake saw, as `verb resource[/sub] name`.
func (h *harness) actions() []string {
	var out []string
	for _, a := range h.cs.Actions() {
		r := a.GetResource().Resource
		if s := a.GetSubresource(); s != "" {
			r += "/" + s
		}
		out = append(out, a.GetVerb()+" "+r)
	}
	return out
}

// instantiate does what OpenShift's build generator does with a
// BuildRequest: a Build named <bc>-<n> from the BuildConfig's spec at the
// requested revision, with the request's labels, annotations, build args
// and noCache.
func (h *harness) instantiate(action k8stesting.Action) (bool, runtime.Object, error) {
	ca, ok := action.(k8stesting.CreateAction)
	if !ok || action.GetSubresource() != "instantiate" {
		return false, nil, nil
	}
	req := ca.GetObject().(*buildv1.BuildRequest)
	ns := action.GetNamespace()
	obj, err := h.cs.Tracker().Get(buildv1.GroupVersion.WithResource("buildconfigs"), ns, req.Name)
	if err != nil {
		return true, nil, err
	}
	bc := obj.(*buildv1.BuildConfig).DeepCopy()
	bc.Status.LastVersion++
	if err := h.cs.Tracker().Update(buildv1.GroupVersion.WithResource("buildconfigs"), bc, ns); err != nil {
		return true, nil, err
	}
	build := &buildv1.Build{
		ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("%s-%d", bc.Name, bc.Status.LastVersion),
			Namespace:   ns,
			Labels:      map[string]string{"buildconfig": bc.Name},
			Annotations: map[string]string{"openshift.io/build-config.name": bc.Name},
		},
		Spec: buildv1.BuildSpec{CommonSpec: *bc.Spec.CommonSpec.DeepCopy(), TriggeredBy: req.TriggeredBy},
		Status: buildv1.BuildStatus{
			Phase:  buildv1.BuildPhaseNew,
			Config: &corev1.ObjectReference{Kind: "BuildConfig", Namespace: ns, Name: bc.Name},
		},
	}
	for k, v := range req.Labels {
		if _, ok := build.Labels[k]; !ok {
			build.Labels[k] = v
		}
	}
	for k, v := range req.Annotations {
		if _, ok := build.Annotations[k]; !ok {
			build.Annotations[k] = v
		}
	}
	build.Spec.Revision = req.Revision
	if ds := build.Spec.Strategy.DockerStrategy; ds != nil && req.DockerStrategyOptions != nil {
		ds.BuildArgs = append(ds.BuildArgs, req.DockerStrategyOptions.BuildArgs...)
		if req.DockerStrategyOptions.NoCache != nil {
			ds.NoCache = *req.DockerStrategyOptions.NoCache
		}
	}
	if err := h.cs.Tracker().Create(buildsGVR, build, ns); err != nil {
		return true, nil, err
	}
	return true, build, nil
}

// logBody is what the builds/log reactor answers: the body of the stream.
type logBody struct {
	metav1.TypeMeta
	body io.ReadCloser
}

func (l *logBody) DeepCopyObject() runtime.Object { return l }

// buildLog answers get builds/log from the scripted logs.
func (h *harness) buildLog(action k8stesting.Action) (bool, runtime.Object, error) {
	if action.GetSubresource() != "log" {
		return false, nil, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cluster != nil {
		body, err := h.cluster(action.(k8stesting.GetAction).GetName())
		if err != nil {
			return true, nil, err
		}
		return true, &logBody{body: body}, nil
	}
	if len(h.logs) == 0 {
		return true, nil, apierrors.NewBadRequest("no log scripted")
	}
	next := h.logs[0]
	h.logs = h.logs[1:]
	body, err := next()
	if err != nil {
		return true, nil, err
	}
	return true, &logBody{body: body}, nil
}

// serveLog is the HTTP side of builds/log: it records the request as an
// action of the fake (so reactors answer it and it is counted) and turns
// the answer into a response.
func (h *harness) serveLog(req *http.Request) (*http.Response, error) {
	// /apis/build.openshift.io/v1/namespaces/NS/builds/NAME/log
	parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/apis/build.openshift.io/v1/"), "/")
	if len(parts) != 5 || parts[0] != "namespaces" || parts[2] != "builds" || parts[4] != "log" || req.Method != http.MethodGet {
		return nil, fmt.Errorf("unexpected request %s %s", req.Method, req.URL)
	}
	h.mu.Lock()
	h.logURLs = append(h.logURLs, req.URL.RequestURI())
	h.mu.Unlock()
	obj, err := h.cs.Invokes(k8stesting.NewGetSubresourceAction(buildsGVR, parts[1], "log", parts[3]), nil)
	if err != nil {
		status := apierrors.NewInternalError(err).ErrStatus
		if s, ok := err.(apierrors.APIStatus); ok {
			status = s.Status()
		}
		body, _ := json.Marshal(status)
		return &http.Response{StatusCode: int(status.Code), Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(body))}, nil
	}
	lb, ok := obj.(*logBody)
	if !ok {
		return nil, fmt.Errorf("builds/log answered %T", obj)
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/plain"}}, Body: lb.body}, nil
}

// watch answers a Watch with the next scripted session: its events, then
// the watch closes (as a server does at its timeout).
func (h *harness) watch(action k8stesting.Action) (bool, watch.Interface, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watches = append(h.watches, action.(k8stesting.WatchActionImpl))
	if h.cluster != nil {
		return false, nil, nil // the tracker's own watch
	}
	if len(h.sessions) == 0 {
		return true, nil, apierrors.NewServiceUnavailable("no watch scripted")
	}
	evs := h.sessions[0]
	h.sessions = h.sessions[1:]
	w := watch.NewFakeWithChanSize(len(evs), false)
	for _, ev := range evs {
		switch ev.Type {
		case watch.Added:
			w.Add(ev.Object)
		case watch.Modified:
			w.Modify(ev.Object)
		case watch.Deleted:
			w.Delete(ev.Object)
		case watch.Error:
			w.Error(ev.Object)
		}
	}
	w.Stop()
	return true, w, nil
}

func (h *harness) script(sessions ...[]watch.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sessions = append(h.sessions, sessions...)
}

func (h *harness) scriptLog(fs ...func() (io.ReadCloser, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, fs...)
}

func logText(s string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

// build is a Build in namespace cccp at phase with resourceVersion rv.
func build(name string, phase buildv1.BuildPhase, rv string, mod ...func(*buildv1.Build)) *buildv1.Build {
	b := &buildv1.Build{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "cccp", ResourceVersion: rv},
		Status:     buildv1.BuildStatus{Phase: phase},
	}
	for _, m := range mod {
		m(b)
	}
	return b
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs (run with -update to accept):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
