package openshift

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/cccp-project/cccp/internal/backend"
)

// clock is time as the follower sees it; tests and the benchmark simulate it.
type clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pacing of re-established watches and log streams.
const (
	// minInterval is the least time between two requests of one follower.
	// Wait and Log follow a Build at once, so together they stay at or
	// below one request a second whatever the server does.
	minInterval = 2 * time.Second
	maxBackoff  = 30 * time.Second // the longest pause after watches without news
)

// pacer spaces out the requests of one follower: a token bucket of two
// (so a read and a watch, or a read and a log stream, go out together)
// refilled every minInterval, and a doubling pause (up to maxBackoff) after
// requests that brought no news.
type pacer struct {
	clock   clock
	limit   *rate.Limiter
	backoff time.Duration
}

func newPacer(c clock) *pacer {
	return &pacer{clock: c, limit: rate.NewLimiter(rate.Every(minInterval), 2)}
}

// wait returns when the next request may go out.
func (p *pacer) wait(ctx context.Context, news bool) error {
	switch {
	case news:
		p.backoff = 0
	case p.backoff == 0:
		p.backoff = minInterval
	default:
		p.backoff = min(2*p.backoff, maxBackoff)
	}
	now := p.clock.Now()
	d := p.limit.ReserveN(now, 1).DelayFrom(now)
	d = max(d, p.backoff)
	if d > 0 {
		return p.clock.Sleep(ctx, d)
	}
	return nil
}

func finished(b *buildv1.Build) bool {
	switch b.Status.Phase {
	case buildv1.BuildPhaseComplete, buildv1.BuildPhaseFailed, buildv1.BuildPhaseError, buildv1.BuildPhaseCancelled:
		return true
	}
	return false
}

func started(b *buildv1.Build) bool {
	return b.Status.Phase == buildv1.BuildPhaseRunning || finished(b)
}

// transient tells whether a failed request is worth repeating.
func transient(err error) bool {
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err) ||
		!isStatus(err)
}

func isStatus(err error) bool {
	var s apierrors.APIStatus
	return errors.As(err, &s)
}

// follow reads Build ns/name once and then watches it until until(build)
// holds, re-establishing the watch when it closes. A deleted Build is
// backend.ErrLost.
// Its requests are spaced by p.
func (b *Builder) follow(ctx context.Context, p *pacer, ns, name string, until func(*buildv1.Build) bool) (*buildv1.Build, error) {
	builds := b.api.Builds(ns)
	rv, news := "", true
	timeout := int64(b.cfg.WatchTimeout / time.Second)
	for {
		if err := p.wait(ctx, news); err != nil {
			return nil, err
		}
		news = false
		if rv == "" {
			build, err := builds.Get(ctx, name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				return nil, fmt.Errorf("build %s/%s: %w", ns, name, backend.ErrLost)
			case err != nil && ctx.Err() == nil && transient(err):
				b.log.Warn("read build", "build", ns+"/"+name, "err", err)
				continue
			case err != nil:
				return nil, fmt.Errorf("read build %s/%s: %w", ns, name, err)
			}
			if until(build) {
				return build, nil
			}
			rv, news = build.ResourceVersion, true
			if rv == "" {
				rv = "0" // a server that keeps none: any version
			}
		}
		w, err := builds.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
			ResourceVersion: rv,
			TimeoutSeconds:  &timeout,
		})
		switch {
		case apierrors.IsGone(err) || apierrors.IsResourceExpired(err):
			rv = ""
			continue
		case err != nil && ctx.Err() == nil && transient(err):
			b.log.Warn("watch build", "build", ns+"/"+name, "err", err)
			continue
		case err != nil:
			return nil, fmt.Errorf("watch build %s/%s: %w", ns, name, err)
		}
		build, done, err := b.drain(ctx, w, name, &rv, &news, until)
		w.Stop()
		if err != nil || done {
			return build, err
		}
	}
}

// drain reads one watch until it closes or until(build) holds.
func (b *Builder) drain(ctx context.Context, w watch.Interface, name string, rv *string, news *bool, until func(*buildv1.Build) bool) (*buildv1.Build, bool, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, true, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				build, ok := ev.Object.(*buildv1.Build)
				if !ok || build.Name != name {
					continue
				}
				if build.ResourceVersion != "" {
					*rv = build.ResourceVersion
				}
				*news = true
				if until(build) {
					return build, true, nil
				}
			case watch.Bookmark:
				if m, err := metaOf(ev.Object); err == nil && m.GetResourceVersion() != "" {
					*rv = m.GetResourceVersion()
				}
			case watch.Deleted:
				if build, ok := ev.Object.(*buildv1.Build); ok && build.Name != name {
					continue
				}
				return nil, true, fmt.Errorf("build %s was deleted: %w", name, backend.ErrLost)
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if s, ok := err.(apierrors.APIStatus); ok && s.Status().Code == http.StatusGone || apierrors.IsResourceExpired(err) {
					*rv = "" // too old: read the Build afresh
				}
				b.log.Debug("watch error", "build", name, "err", err)
				return nil, false, nil
			}
		}
	}
}

// WaitBuild follows the Build until it finishes.
func (b *Builder) WaitBuild(ctx context.Context, h backend.Handle) (backend.BuildResult, error) {
	ns, name, err := parseHandle(h)
	if err != nil {
		return backend.BuildResult{}, err
	}
	build, err := b.follow(ctx, newPacer(b.clock), ns, name, finished)
	if err != nil {
		return backend.BuildResult{}, err
	}
	res, err := result(build)
	if err != nil {
		return res, err
	}
	if bases, err := b.bases(ctx, ns, name); err != nil {
		b.log.Warn("read the bases from the build log", "build", h, "err", err)
	} else if len(bases) > 0 {
		res.Bases = markPinned(bases, res.Bases)
	}
	return res, nil
}

// result maps a finished Build to cccp's result.
func result(build *buildv1.Build) (backend.BuildResult, error) {
	st := build.Status
	switch st.Phase {
	case buildv1.BuildPhaseComplete:
		if st.Output.To == nil || st.Output.To.ImageDigest == "" {
			return backend.BuildResult{}, &backend.StageError{Reason: "NoDigest",
				Message: fmt.Sprintf("build %s completed but reported no pushed image digest", build.Name)}
		}
		res := backend.BuildResult{Digest: st.Output.To.ImageDigest}
		if s := build.Spec.Strategy.DockerStrategy; s != nil && s.From != nil {
			res.Bases = append(res.Bases, backend.Base{Image: s.From.Name, Digest: digestOf(s.From.Name), Pinned: true})
		}
		return res, nil
	case buildv1.BuildPhaseCancelled:
		msg := st.Message
		if msg == "" {
			msg = fmt.Sprintf("build %s was cancelled", build.Name)
		}
		return backend.BuildResult{}, &backend.StageError{Reason: "Cancelled", Message: msg}
	}
	reason := string(st.Reason)
	switch st.Reason {
	case buildv1.StatusReasonOutOfMemoryKilled:
		reason = "OutOfMemory"
	case buildv1.StatusReasonPullBuilderImageFailed:
		reason = "PullFailed"
	case "":
		reason = "BuildFailed"
		if st.Phase == buildv1.BuildPhaseError {
			reason = "BuildError"
		}
	}
	msg := st.Message
	if msg == "" {
		msg = fmt.Sprintf("build %s ended %s", build.Name, st.Phase)
	}
	if st.LogSnippet != "" {
		msg += "\n" + st.LogSnippet
	}
	return backend.BuildResult{}, &backend.StageError{Reason: reason, Message: msg}
}

func digestOf(ref string) string {
	for i := len(ref) - 1; i >= 0; i-- {
		if ref[i] == '@' {
			return ref[i+1:]
		}
	}
	return ""
}

// Cancel sets status.cancelled on the Build, as `oc cancel-build` does.
// A finished or missing Build is left alone.
func (b *Builder) Cancel(ctx context.Context, h backend.Handle) error {
	ns, name, err := parseHandle(h)
	if err != nil {
		return err
	}
	builds := b.api.Builds(ns)
	for attempt := 0; ; attempt++ {
		build, err := builds.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cancel build %s: %w", h, err)
		}
		if finished(build) || build.Status.Cancelled {
			return nil
		}
		build.Status.Cancelled = true
		_, err = builds.Update(ctx, build, metav1.UpdateOptions{})
		switch {
		case apierrors.IsConflict(err) && attempt < 5:
			continue
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return fmt.Errorf("cancel build %s: %w", h, err)
		}
		b.log.Info("build cancelled", "build", h)
		return nil
	}
}

func metaOf(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}
