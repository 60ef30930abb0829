package openshift

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/backendtest"
	"github.com/cccp-project/cccp/internal/index"
)

// cluster plays OpenShift's build controller over the fake's object
// tracker: a new Build runs, then completes with a digest (the good
// source), fails (the failing one) or runs until status.cancelled is set
// (the slow one). Its log is the buildah output such a build prints.
type cluster struct {
	h  *harness
	mu sync.Mutex
	// cancelled is closed when the Build of that name is cancelled.
	cancelled map[string]chan struct{}
}

const (
	goodURL    = "https://git.example.org/acme/good.git"
	failingURL = "https://git.example.org/acme/failing.git"
	slowURL    = "https://git.example.org/acme/slow.git"
)

func (c *cluster) logText(b *buildv1.Build) string {
	return fmt.Sprintf("Cloning %q ...\n\tCommit:\t%s\nSTEP 1/2: FROM registry.example.org/acme/base:1\nSTEP 2/2: RUN make\n",
		b.Spec.Source.Git.URI, b.Spec.Revision.Git.Commit)
}

func (c *cluster) run(ctx context.Context, t *testing.T, w watch.Interface) {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.ResultChan():
			if ev.Type != watch.Added {
				continue
			}
			b := ev.Object.(*buildv1.Build)
			c.mu.Lock()
			c.cancelled[b.Name] = make(chan struct{})
			c.mu.Unlock()
			go c.build(ctx, t, b.Name)
		}
	}
}

func (c *cluster) set(name string, f func(*buildv1.Build)) *buildv1.Build {
	obj, err := c.h.cs.Tracker().Get(buildsGVR, "cccp", name)
	if err != nil {
		return nil
	}
	b := obj.(*buildv1.Build).DeepCopy()
	f(b)
	if err := c.h.cs.Tracker().Update(buildsGVR, b, "cccp"); err != nil {
		return nil
	}
	return b
}

func (c *cluster) build(ctx context.Context, t *testing.T, name string) {
	b := c.set(name, func(b *buildv1.Build) { b.Status.Phase = buildv1.BuildPhaseRunning })
	if b == nil {
		t.Errorf("build %s vanished", name)
		return
	}
	switch b.Spec.Source.Git.URI {
	case goodURL:
		c.set(name, func(b *buildv1.Build) {
			b.Status.Phase = buildv1.BuildPhaseComplete
			b.Status.Output.To = &buildv1.BuildStatusOutputTo{ImageDigest: "sha256:" + strings.Repeat("5", 64)}
		})
	case failingURL:
		c.set(name, func(b *buildv1.Build) {
			b.Status.Phase, b.Status.Reason, b.Status.Message = buildv1.BuildPhaseFailed, buildv1.StatusReasonDockerBuildFailed, "Docker build strategy has failed."
		})
	case slowURL:
		// The build controller notices status.cancelled on its own watch.
		for ctx.Err() == nil {
			obj, err := c.h.cs.Tracker().Get(buildsGVR, "cccp", name)
			if err == nil && obj.(*buildv1.Build).Status.Cancelled {
				c.mu.Lock()
				close(c.cancelled[name])
				c.mu.Unlock()
				c.set(name, func(b *buildv1.Build) {
					b.Status.Phase, b.Status.Reason, b.Status.Message = buildv1.BuildPhaseCancelled, buildv1.StatusReasonCancelledBuild, "The build was cancelled by the user."
				})
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// log answers builds/log: the whole text of a build that ran; for the slow
// one, its text and then a stream that ends when it is cancelled.
func (c *cluster) log(name string) (io.ReadCloser, error) {
	obj, err := c.h.cs.Tracker().Get(buildsGVR, "cccp", name)
	if err != nil {
		return nil, err
	}
	b := obj.(*buildv1.Build)
	if b.Status.Phase == buildv1.BuildPhaseNew || b.Status.Phase == buildv1.BuildPhasePending {
		return nil, apierrors.NewBadRequest("build " + name + " is not running yet")
	}
	text := c.logText(b)
	if b.Spec.Source.Git.URI != slowURL {
		return io.NopCloser(strings.NewReader(text)), nil
	}
	c.mu.Lock()
	done := c.cancelled[name]
	c.mu.Unlock()
	r, w := io.Pipe()
	go func() {
		_, _ = io.WriteString(w, text+"STEP 3/3: RUN sleep 600\n")
		<-done
		w.Close()
	}()
	return r, nil
}

func TestConformance(t *testing.T) {
	h := newHarness(t, Config{})
	h.b.clock = realClock{}
	c := &cluster{h: h, cancelled: map[string]chan struct{}{}}
	h.cluster = c.log
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	w, err := h.cs.Tracker().Watch(buildsGVR, "cccp")
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { c.run(ctx, t, w) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	src := func(job, url string) backendtest.Source {
		return backendtest.Source{
			Entry: &index.Entry{AppID: "acme", JobID: job, DesiredTag: "latest", GitURL: url, GitBranch: "main",
				GitPath: "/", TargetFile: "Dockerfile", BuildContext: "./"},
			Src: backend.Source{GitURL: url, Commit: strings.Repeat("a", 40), Branch: "main"},
		}
	}
	backendtest.Run(t, backendtest.Config{
		Builder: h.b,
		Fixture: backendtest.Fixture{
			Good: src("good", goodURL), Failing: src("failing", failingURL), Slow: src("slow", slowURL),
			Push: func(runID string) string { return "registry.example.org/acme/x:" + runID },
		},
		Restart: func(t *testing.T) (backend.Builder, backend.Tester) {
			return newBuilder(Config{Namespace: "cccp"}, h.cs.BuildV1(), h.b.logs, realClock{}), nil
		},
		CanReattach: true,
		Timeout:     time.Minute,
	})
	if errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("cluster stopped early")
	}
}
