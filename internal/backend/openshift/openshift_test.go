package openshift

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/types"
)

const commit = "3f2a9c1d0b8e7f6a5c4d3e2f1a0b9c8d7e6f5a4b"

func entry() *index.Entry {
	return &index.Entry{
		AppID: "acme", JobID: "web", DesiredTag: "1.2",
		GitURL: "https://git.example.org/acme/web.git", GitBranch: "main",
		GitPath: "images/web", TargetFile: "Containerfile", BuildContext: "./",
	}
}

func spec() backend.BuildSpec {
	return backend.BuildSpec{
		RunID: "42", Kind: types.KindBranch, Entry: entry(),
		Src:  backend.Source{GitURL: "https://git.example.org/acme/web.git", Commit: commit, Branch: "main"},
		Push: "registry.example.org/acme/web:test",
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestStartBuildObjects asserts the BuildConfig and the BuildRequest field
// by field, through golden YAML files of the objects sent to the API.
func TestStartBuildObjects(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		spec func() backend.BuildSpec
	}{
		{"plain", Config{PushSecret: "push-creds"}, spec},
		{"parent-resources-registry", Config{
			PushSecret: "push-creds", PullSecret: "pull-creds", SourceSecret: "git-creds",
			Registry:     "image-registry.cccp.svc:5000",
			Requests:     map[string]string{"cpu": "500m", "memory": "1Gi"},
			Limits:       map[string]string{"memory": "2Gi"},
			NodeSelector: map[string]string{"node-role.kubernetes.io/builder": ""},
		}, func() backend.BuildSpec {
			s := spec()
			s.RunID, s.Kind = "run-7", types.KindPR
			s.Entry.BuildContext, s.Entry.TargetFile = "..", "web/Dockerfile"
			s.Push = "registry.example.org/acme/web:run-7"
			s.Parents = []backend.ParentPin{{Key: "acme/base:1", Repository: "acme/base", Tag: "registry.example.org/acme/base:1",
				DigestRef: "registry.example.org/acme/base@sha256:" + strings.Repeat("ab", 32)}}
			return s
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.cfg)
			hd, err := h.b.StartBuild(ctxT(t), c.spec())
			if err != nil {
				t.Fatal(err)
			}
			var bc, req runtime.Object
			for _, a := range h.cs.Actions() {
				if ca, ok := a.(k8stesting.CreateAction); ok {
					switch a.GetSubresource() {
					case "":
						bc = ca.GetObject()
					case "instantiate":
						req = ca.GetObject()
					}
				}
			}
			if bc == nil || req == nil {
				t.Fatalf("actions %v: want a BuildConfig created and instantiated", h.actions())
			}
			for name, obj := range map[string]runtime.Object{"buildconfig": bc, "buildrequest": req} {
				y, err := yaml.Marshal(obj)
				if err != nil {
					t.Fatal(err)
				}
				golden(t, c.name+"."+name+".yaml", y)
			}
			want := "cccp/" + bc.(*buildv1.BuildConfig).Name + "-1"
			if string(hd) != want {
				t.Errorf("handle %q, want %q", hd, want)
			}
			got, err := h.cs.BuildV1().Builds("cccp").Get(ctxT(t), want[len("cccp/"):], metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Spec.Revision == nil || got.Spec.Revision.Git == nil || got.Spec.Revision.Git.Commit != commit {
				t.Errorf("build revision %+v, want commit %s", got.Spec.Revision, commit)
			}
		})
	}
}

func TestStartBuildUpdatesBuildConfigOnlyWhenItDiffers(t *testing.T) {
	h := newHarness(t, Config{PushSecret: "push-creds"})
	ctx := ctxT(t)
	if _, err := h.b.StartBuild(ctx, spec()); err != nil {
		t.Fatal(err)
	}
	// Someone labels the BuildConfig; cccp must keep their label.
	name := buildConfigName(entry().Key())
	bc, err := h.cs.BuildV1().BuildConfigs("cccp").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bc.Labels["team"] = "web"
	if _, err := h.cs.BuildV1().BuildConfigs("cccp").Update(ctx, bc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.cs.ClearActions()

	if _, err := h.b.StartBuild(ctx, spec()); err != nil {
		t.Fatal(err)
	}
	if got, want := h.actions(), []string{"get buildconfigs", "create buildconfigs/instantiate"}; !slices.Equal(got, want) {
		t.Errorf("same spec again: actions %v, want %v", got, want)
	}

	h.cs.ClearActions()
	s := spec()
	s.Push = "registry.example.org/acme/web:run-9"
	hd, err := h.b.StartBuild(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.actions(), []string{"get buildconfigs", "update buildconfigs", "create buildconfigs/instantiate"}; !slices.Equal(got, want) {
		t.Errorf("new push target: actions %v, want %v", got, want)
	}
	bc, _ = h.cs.BuildV1().BuildConfigs("cccp").Get(ctx, name, metav1.GetOptions{})
	if bc.Labels["team"] != "web" || bc.Spec.Output.To.Name != s.Push {
		t.Errorf("after update: labels %v, output %v", bc.Labels, bc.Spec.Output.To)
	}
	if !strings.HasSuffix(string(hd), "-3") {
		t.Errorf("third build's handle %q", hd)
	}
}

func TestStartBuildRefuses(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*backend.BuildSpec)
		reason string // "" for a plain error
	}{
		{"prebuild-script", func(s *backend.BuildSpec) { s.Entry.PrebuildScript, s.Entry.PrebuildContext = "gen.sh", "." }, "Unsupported"},
		{"two parents", func(s *backend.BuildSpec) {
			s.Parents = []backend.ParentPin{{DigestRef: "r/a@sha256:1"}, {DigestRef: "r/b@sha256:2"}}
		}, "Unsupported"},
		{"dockerfile outside the context", func(s *backend.BuildSpec) { s.Entry.BuildContext, s.Entry.TargetFile = "sub", "Dockerfile" }, "Unsupported"},
		{"no commit", func(s *backend.BuildSpec) { s.Src.Commit = "" }, ""},
		{"no push target", func(s *backend.BuildSpec) { s.Push = "" }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			s := spec()
			c.mod(&s)
			_, err := h.b.StartBuild(ctxT(t), s)
			var se *backend.StageError
			switch {
			case err == nil:
				t.Fatal("started")
			case c.reason != "" && (!errors.As(err, &se) || se.Reason != c.reason):
				t.Errorf("error %v, want a StageError %s", err, c.reason)
			}
			if n := len(h.cs.Actions()); n != 0 {
				t.Errorf("made %d API requests for a build it refuses: %v", n, h.actions())
			}
		})
	}
}

func TestStartBuildMisdirectedOutput(t *testing.T) {
	h := newHarness(t, Config{})
	// Between our update and the instantiation, another writer points the
	// BuildConfig elsewhere: the Build that comes back pushes there.
	h.cs.PrependReactor("create", "buildconfigs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "instantiate" {
			return false, nil, nil
		}
		bc, _ := h.cs.Tracker().Get(buildv1.GroupVersion.WithResource("buildconfigs"), "cccp", a.(k8stesting.CreateAction).GetObject().(*buildv1.BuildRequest).Name)
		bc.(*buildv1.BuildConfig).Spec.Output.To.Name = "evil.example.org/x:y"
		_ = h.cs.Tracker().Update(buildv1.GroupVersion.WithResource("buildconfigs"), bc, "cccp")
		return false, nil, nil
	})
	_, err := h.b.StartBuild(ctxT(t), spec())
	if err == nil || !strings.Contains(err.Error(), "evil.example.org/x:y") {
		t.Fatalf("err %v, want the misdirected push named", err)
	}
	b, err := h.cs.BuildV1().Builds("cccp").Get(ctxT(t), buildConfigName(entry().Key())+"-1", metav1.GetOptions{})
	if err != nil || !b.Status.Cancelled {
		t.Errorf("misdirected build not cancelled: %v %+v", err, b.Status)
	}
}

func TestNames(t *testing.T) {
	keys := []string{"acme/web:1.2", "acme/web-1.2:", "ACME/Web:1.2", "a/b:c", "a-b/c:", "x/" + strings.Repeat("long", 40) + ":latest", "/:"}
	seen := map[string]string{}
	for _, k := range keys {
		n := buildConfigName(k)
		if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 || len(n) > 50 {
			t.Errorf("buildConfigName(%q) = %q: %v", k, n, msgs)
		}
		if msgs := validation.IsValidLabelValue(n + "-9999-build"); len(msgs) > 0 {
			t.Errorf("pod name of %q is no label value: %v", n, msgs)
		}
		if o, dup := seen[n]; dup {
			t.Errorf("%q and %q share %q", o, k, n)
		}
		seen[n] = k
		if n != buildConfigName(k) {
			t.Errorf("buildConfigName(%q) is not stable", k)
		}
	}
	for _, v := range []string{"42", "run-7", "pr/12:head", "-x-", strings.Repeat("y", 80), "ü"} {
		l := labelValue(v)
		if msgs := validation.IsValidLabelValue(l); len(msgs) > 0 || l == "" {
			t.Errorf("labelValue(%q) = %q: %v", v, l, msgs)
		}
	}
	if labelValue("run-7") != "run-7" {
		t.Error("a valid label value was changed")
	}
}

func TestParseHandle(t *testing.T) {
	for h, ok := range map[backend.Handle]bool{"cccp/web-1": true, "cccp": false, "/x": false, "Bad_NS/x": false, "cccp/": false, "cccp/a/b": false} {
		_, _, err := parseHandle(h)
		if (err == nil) != ok {
			t.Errorf("parseHandle(%q): %v", h, err)
		}
	}
}

// TestWait walks a Build through each phase over a scripted watch.
func TestWait(t *testing.T) {
	const name = "web-1"
	digest := "sha256:" + strings.Repeat("cd", 32)
	running := build(name, buildv1.BuildPhaseRunning, "11")
	complete := build(name, buildv1.BuildPhaseComplete, "12", func(b *buildv1.Build) {
		b.Status.Output.To = &buildv1.BuildStatusOutputTo{ImageDigest: digest}
	})
	failed := func(phase buildv1.BuildPhase, reason buildv1.StatusReason, msg string) *buildv1.Build {
		return build(name, phase, "12", func(b *buildv1.Build) { b.Status.Reason, b.Status.Message = reason, msg })
	}
	cases := []struct {
		name     string
		initial  *buildv1.Build
		sessions [][]watch.Event
		digest   string
		reason   string // StageError reason
		message  string
		lost     bool
		watchRVs []string // the resourceVersion each watch started from
	}{
		{name: "complete with a digest", initial: build(name, buildv1.BuildPhaseNew, "10"),
			sessions: [][]watch.Event{{{Type: watch.Modified, Object: build(name, buildv1.BuildPhasePending, "10")},
				{Type: watch.Modified, Object: running}, {Type: watch.Modified, Object: complete}}},
			digest: digest, watchRVs: []string{"10"}},
		{name: "already complete", initial: complete, digest: digest},
		{name: "failed with a reason", initial: running,
			sessions: [][]watch.Event{{{Type: watch.Modified, Object: failed(buildv1.BuildPhaseFailed, buildv1.StatusReasonDockerBuildFailed, "Docker build strategy has failed.")}}},
			reason:   "DockerBuildFailed", message: "Docker build strategy has failed.", watchRVs: []string{"11"}},
		{name: "out of memory", initial: running,
			sessions: [][]watch.Event{{{Type: watch.Modified, Object: failed(buildv1.BuildPhaseFailed, buildv1.StatusReasonOutOfMemoryKilled, "The build pod was killed due to an out of memory condition.")}}},
			reason:   "OutOfMemory", message: "out of memory", watchRVs: []string{"11"}},
		{name: "error", initial: build(name, buildv1.BuildPhasePending, "10"),
			sessions: [][]watch.Event{{{Type: watch.Modified, Object: failed(buildv1.BuildPhaseError, buildv1.StatusReasonCannotCreateBuildPod, "Failed creating build pod.")}}},
			reason:   "CannotCreateBuildPod", message: "Failed creating build pod.", watchRVs: []string{"10"}},
		{name: "error without a reason", initial: running,
			sessions: [][]watch.Event{{{Type: watch.Modified, Object: failed(buildv1.BuildPhaseError, "", "")}}},
			reason:   "BuildError", message: "web-1 ended Error", watchRVs: []string{"11"}},
		{name: "cancelled", initial: running,
			sessions: [][]watch.Event{{{Type: watch.Modified, Object: failed(buildv1.BuildPhaseCancelled, buildv1.StatusReasonCancelledBuild, "The build was cancelled by the user.")}}},
			reason:   "Cancelled", message: "cancelled by the user", watchRVs: []string{"11"}},
		{name: "complete without a digest", initial: running,
			sessions: [][]watch.Event{{{Type: watch.Modified, Object: build(name, buildv1.BuildPhaseComplete, "12")}}},
			reason:   "NoDigest", watchRVs: []string{"11"}},
		{name: "watch closed mid-build and re-established", initial: build(name, buildv1.BuildPhasePending, "10"),
			sessions: [][]watch.Event{{{Type: watch.Modified, Object: running}}, {}, {{Type: watch.Modified, Object: complete}}},
			digest:   digest, watchRVs: []string{"10", "11", "11"}},
		{name: "watch expired: read afresh", initial: build(name, buildv1.BuildPhasePending, "10"),
			sessions: [][]watch.Event{{{Type: watch.Error, Object: &apierrors.NewResourceExpired("too old resource version: 10 (20)").ErrStatus}},
				{{Type: watch.Modified, Object: complete}}},
			digest: digest, watchRVs: []string{"10", "10"}},
		{name: "events of other builds are ignored", initial: running,
			sessions: [][]watch.Event{{{Type: watch.Modified, Object: build("web-2", buildv1.BuildPhaseFailed, "13")}, {Type: watch.Modified, Object: complete}}},
			digest:   digest, watchRVs: []string{"11"}},
		{name: "deleted", initial: running,
			sessions: [][]watch.Event{{{Type: watch.Deleted, Object: running}}}, lost: true, watchRVs: []string{"11"}},
		{name: "missing", lost: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var objs []runtime.Object
			if c.initial != nil {
				objs = append(objs, c.initial)
			}
			h := newHarness(t, Config{}, objs...)
			h.script(c.sessions...)
			res, err := h.b.WaitBuild(ctxT(t), "cccp/"+name)
			var se *backend.StageError
			switch {
			case c.lost:
				if !errors.Is(err, backend.ErrLost) {
					t.Fatalf("err %v, want ErrLost", err)
				}
			case c.reason != "":
				if !errors.As(err, &se) || se.Reason != c.reason || !strings.Contains(se.Message, c.message) {
					t.Fatalf("err %#v, want StageError %s %q", err, c.reason, c.message)
				}
			case err != nil:
				t.Fatal(err)
			case res.Digest != c.digest:
				t.Errorf("digest %q, want %q", res.Digest, c.digest)
			}
			var rvs []string
			for _, w := range h.watches {
				r := w.GetWatchRestrictions()
				if got := r.Fields.String(); got != "metadata.name="+name {
					t.Errorf("watch field selector %q", got)
				}
				rvs = append(rvs, r.ResourceVersion)
			}
			if !slices.Equal(rvs, c.watchRVs) {
				t.Errorf("watches from resourceVersions %q, want %q", rvs, c.watchRVs)
			}
			for _, a := range h.cs.Actions() {
				if a.GetVerb() == "list" {
					t.Errorf("listed builds: following must watch, not poll")
				}
			}
		})
	}
}

// TestWaitAfterRestart: a second Builder (a restarted cccp) waits on the
// handle the first one returned.
func TestWaitAfterRestart(t *testing.T) {
	h := newHarness(t, Config{})
	hd, err := h.b.StartBuild(ctxT(t), spec())
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(string(hd), "cccp/")
	b, _ := h.cs.BuildV1().Builds("cccp").Get(ctxT(t), name, metav1.GetOptions{})
	b.Status.Phase = buildv1.BuildPhaseComplete
	b.Status.Output.To = &buildv1.BuildStatusOutputTo{ImageDigest: "sha256:" + strings.Repeat("0", 64)}
	if _, err := h.cs.BuildV1().Builds("cccp").Update(ctxT(t), b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	restarted := newBuilder(Config{Namespace: "cccp"}, h.cs.BuildV1(), h.b.logs, h.clock)
	res, err := restarted.WaitBuild(ctxT(t), hd)
	if err != nil || res.Digest != b.Status.Output.To.ImageDigest {
		t.Fatalf("reattached: %+v %v", res, err)
	}
}

func TestCancel(t *testing.T) {
	cases := []struct {
		name     string
		initial  *buildv1.Build
		conflict bool
		updated  bool
	}{
		{name: "running", initial: build("web-1", buildv1.BuildPhaseRunning, ""), updated: true},
		{name: "new, after a conflict", initial: build("web-1", buildv1.BuildPhaseNew, ""), conflict: true, updated: true},
		{name: "finished", initial: build("web-1", buildv1.BuildPhaseComplete, "")},
		{name: "missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var objs []runtime.Object
			if c.initial != nil {
				objs = append(objs, c.initial)
			}
			h := newHarness(t, Config{}, objs...)
			if c.conflict {
				once := true
				h.cs.PrependReactor("update", "builds", func(k8stesting.Action) (bool, runtime.Object, error) {
					if once {
						once = false
						return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "build.openshift.io", Resource: "builds"}, "web-1", errors.New("modified"))
					}
					return false, nil, nil
				})
			}
			if err := h.b.Cancel(ctxT(t), "cccp/web-1"); err != nil {
				t.Fatal(err)
			}
			updates := 0
			for _, a := range h.cs.Actions() {
				if a.GetVerb() == "update" {
					updates++
				}
			}
			if c.updated != (updates > 0) {
				t.Errorf("%d updates (%v)", updates, h.actions())
			}
			if c.initial == nil {
				return
			}
			b, err := h.cs.BuildV1().Builds("cccp").Get(ctxT(t), "web-1", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if b.Status.Cancelled != c.updated {
				t.Errorf("status.cancelled = %v", b.Status.Cancelled)
			}
		})
	}
}

// chunked is a log body that arrives in pieces.
func chunked(parts ...string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		r, w := io.Pipe()
		go func() {
			for _, p := range parts {
				if _, err := w.Write([]byte(p)); err != nil {
					return
				}
			}
			w.Close()
		}()
		return r, nil
	}
}

// recorder is an io.Writer that keeps each write apart.
type recorder struct{ writes []string }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}
func (r *recorder) String() string { return strings.Join(r.writes, "") }

func TestLog(t *testing.T) {
	const full = "Cloning \"https://git.example.org/acme/web.git\" ...\nSTEP 1/3: FROM base\nSTEP 2/3: RUN make\nPush successful\n"
	completeAfter := func(h *harness) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) {
			b, _ := h.cs.Tracker().Get(buildsGVR, "cccp", "web-1")
			b = b.(*buildv1.Build).DeepCopy()
			b.(*buildv1.Build).Status.Phase = buildv1.BuildPhaseComplete
			_ = h.cs.Tracker().Update(buildsGVR, b, "cccp")
			return io.NopCloser(strings.NewReader(full)), nil
		}
	}
	cases := []struct {
		name    string
		initial *buildv1.Build
		offset  int64
		script  func(h *harness)
		want    string
		logs    int // builds/log requests
	}{
		{name: "finished build, whole log", initial: build("web-1", buildv1.BuildPhaseComplete, "5"),
			script: func(h *harness) { h.scriptLog(logText(full)) }, want: full, logs: 1},
		{name: "finished build, from an offset", initial: build("web-1", buildv1.BuildPhaseFailed, "5"), offset: 20,
			script: func(h *harness) { h.scriptLog(logText(full)) }, want: full[20:], logs: 1},
		{name: "offset past the end", initial: build("web-1", buildv1.BuildPhaseComplete, "5"), offset: int64(len(full) + 5),
			script: func(h *harness) { h.scriptLog(logText(full)) }, want: "", logs: 1},
		{name: "running build in chunks", initial: build("web-1", buildv1.BuildPhaseRunning, "5"),
			script: func(h *harness) {
				h.scriptLog(func() (io.ReadCloser, error) {
					rc, _ := completeAfter(h)()
					rc.Close()
					return chunked(full[:10], full[10:30], full[30:])()
				})
			}, want: full, logs: 1},
		{name: "stream broke mid-build: reopened, nothing written twice", initial: build("web-1", buildv1.BuildPhaseRunning, "5"),
			script: func(h *harness) { h.scriptLog(chunked(full[:25]), completeAfter(h)) }, want: full, logs: 2},
		{name: "pending: waits by watch for the build to run", initial: build("web-1", buildv1.BuildPhasePending, "5"),
			script: func(h *harness) {
				h.script([]watch.Event{{Type: watch.Modified, Object: build("web-1", buildv1.BuildPhaseRunning, "6")}})
				h.scriptLog(completeAfter(h))
			}, want: full, logs: 1},
		{name: "failed before its pod ran: no log", initial: build("web-1", buildv1.BuildPhaseError, "5"),
			script: func(h *harness) {
				h.scriptLog(func() (io.ReadCloser, error) { return nil, apierrors.NewBadRequest("build web-1 has no pod") })
			}, want: "", logs: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, Config{}, c.initial)
			c.script(h)
			var w recorder
			off, err := h.b.Log(ctxT(t), "cccp/web-1", c.offset, &w)
			if err != nil {
				t.Fatal(err)
			}
			if w.String() != c.want {
				t.Errorf("wrote %q, want %q", w.String(), c.want)
			}
			if want := c.offset + int64(len(c.want)); off != want {
				t.Errorf("offset %d, want %d", off, want)
			}
			if len(h.logURLs) != c.logs {
				t.Errorf("%d builds/log requests, want %d", len(h.logURLs), c.logs)
			}
			for _, u := range h.logURLs {
				if u != "/apis/build.openshift.io/v1/namespaces/cccp/builds/web-1/log?follow=true" {
					t.Errorf("log request %s", u)
				}
			}
		})
	}
}

func TestLogWriterFails(t *testing.T) {
	h := newHarness(t, Config{}, build("web-1", buildv1.BuildPhaseRunning, "5"))
	h.scriptLog(chunked("a", "b", "c"))
	_, err := h.b.Log(ctxT(t), "cccp/web-1", 0, failWriter{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Namespace: "cccp"}, ""},
		{Config{}, "namespace is required"},
		{Config{Namespace: "Bad_NS"}, "namespace"},
		{Config{Namespace: "cccp", PushSecret: "no/slash"}, "push-secret"},
		{Config{Namespace: "cccp", Requests: map[string]string{"cpu": "lots"}}, "resources.requests.cpu"},
		{Config{Namespace: "cccp", NodeSelector: map[string]string{"a b": "x"}}, "node-selector"},
		{Config{Namespace: "cccp", Registry: "host/path"}, "registry"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

// TestWaitBoundsBasesFromTheLog: a RUN step may print lines that look like
// FROM steps without end; at most maxBases are kept, and the pinned parent
// is among them even when the imitations came first.
func TestWaitBoundsBasesFromTheLog(t *testing.T) {
	pinned := "registry.example.org/acme/base@sha256:" + strings.Repeat("ab", 32)
	complete := build("web-1", buildv1.BuildPhaseComplete, "9", func(b *buildv1.Build) {
		b.Status.Output.To = &buildv1.BuildStatusOutputTo{ImageDigest: "sha256:" + strings.Repeat("1", 64)}
		b.Spec.Strategy.DockerStrategy = &buildv1.DockerBuildStrategy{From: &corev1.ObjectReference{Kind: "DockerImage", Name: pinned}}
	})
	h := newHarness(t, Config{}, complete)
	var log strings.Builder
	log.WriteString("STEP 1/3: FROM golang:1.26 AS build\nSTEP 2/3: RUN ./noise\n")
	for i := range 10 * maxBases {
		fmt.Fprintf(&log, "STEP 1: FROM fake%d\n", i)
	}
	log.WriteString("STEP 3/3: FROM " + pinned + "\n")
	h.scriptLog(logText(log.String()))
	res, err := h.b.WaitBuild(ctxT(t), "cccp/web-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Bases) > maxBases+1 {
		t.Errorf("%d bases kept, want at most %d", len(res.Bases), maxBases+1)
	}
	if !slices.ContainsFunc(res.Bases, func(b backend.Base) bool { return b.Image == pinned && b.Pinned }) {
		t.Errorf("the pinned parent is not among the bases: %+v", res.Bases[len(res.Bases)-3:])
	}
}

func TestWaitReportsBases(t *testing.T) {
	pinned := "registry.example.org/acme/base@sha256:" + strings.Repeat("ab", 32)
	complete := build("web-1", buildv1.BuildPhaseComplete, "9", func(b *buildv1.Build) {
		b.Status.Output.To = &buildv1.BuildStatusOutputTo{ImageDigest: "sha256:" + strings.Repeat("1", 64)}
		b.Spec.Strategy.DockerStrategy = &buildv1.DockerBuildStrategy{From: &corev1.ObjectReference{Kind: "DockerImage", Name: pinned}}
	})
	h := newHarness(t, Config{}, complete)
	h.scriptLog(logText("Cloning \"https://git.example.org/acme/web.git\" ...\n" +
		"STEP 1/6: FROM golang:1.26 AS build\n" +
		"STEP 2/6: RUN go build ./...\n" +
		"STEP 3/6: FROM build AS test\n" +
		"Step 4/6 : FROM golang:1.26\n" +
		"STEP 5/6: FROM " + pinned + "\n" +
		"STEP 6/6: COPY --from=build /out /\n"))
	res, err := h.b.WaitBuild(ctxT(t), "cccp/web-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.Base{{Image: "golang:1.26"}, {Image: pinned, Digest: "sha256:" + strings.Repeat("ab", 32), Pinned: true}}
	if !slices.Equal(res.Bases, want) {
		t.Errorf("bases %+v, want %+v", res.Bases, want)
	}
	if len(h.logURLs) != 1 || strings.Contains(h.logURLs[0], "follow") {
		t.Errorf("log requests %v: want one, without follow", h.logURLs)
	}
}
