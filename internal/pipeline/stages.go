package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Reasons the pipeline itself gives a failed stage (backends give theirs
// in *backend.StageError).
const (
	ReasonDeadlineExceeded = "DeadlineExceeded"
	ReasonChecksFailed     = "ChecksFailed"
	ReasonTooManyResumes   = "TooManyResumes"
)

// execution is one run being worked.
type execution struct {
	r     *Runner
	run   *store.Run
	entry *index.Entry
	// base is the workers' context: when it ends cccp is stopping, and a
	// stage's work is left to its backend (to reattach to) rather than
	// cancelled.
	base context.Context
	// reattach marks the stages that were running when cccp stopped.
	reattach map[types.StageName]bool
}

// Tag names used while an image moves through the stages.
const (
	TagTest = "test"
	TagRC   = "rc"
)

// stageTag is the tag an entry's image carries between stages: `test` and
// `rc` for an entry delivering `latest`, `<desired-tag>-test` and
// `<desired-tag>-rc` otherwise, since several entries of one name (one per
// desired-tag) share a repository.
func stageTag(e *index.Entry, stage string) string {
	if e.DesiredTag == index.DefaultDesiredTag || e.DesiredTag == "" {
		return stage
	}
	return e.DesiredTag + "-" + stage
}

// errStageDeadline is the cause of a stage context that ran out of time.
var errStageDeadline = errors.New("stage deadline exceeded")

// stage runs one stage, recording its state, timing and error. The stage's
// log gets the backend's output; an error also ends up in Stage.Error (and
// a backend's reason in Stage.Reason).
func (ex *execution) stage(ctx context.Context, name types.StageName) error {
	if ex.run.UpToDate {
		return nil // the build found nothing to do and skipped every stage
	}
	lw, err := ex.r.cfg.Logs.Create(ex.run.ID, string(name))
	if err != nil {
		return ex.failStage(ctx, name, fmt.Errorf("open %s log: %w", name, err))
	}
	defer lw.Close()
	logw := &lockedWriter{w: lw}
	reattach := ex.reattach[name]
	if name == types.StageBuild && !reattach && ex.upToDate(ctx, logw) {
		return nil // recorded in one write: nothing to build
	}
	ex.update(ctx, func(run *store.Run) {
		if run.State == store.Queued {
			run.State = store.Running
			run.Started = time.Now().UTC()
		}
		s := stageOf(run, name)
		s.State = store.Running
		if !reattach || s.Started.IsZero() {
			s.Started = time.Now().UTC()
		}
		s.Finished = time.Time{}
		s.Error, s.Reason = "", ""
	})
	timeout := ex.r.cfg.StageTimeout
	sctx, cancel := context.WithTimeoutCause(ctx, timeout, errStageDeadline)
	defer cancel()
	var checks []store.Check
	switch name {
	case types.StageBuild:
		err = ex.build(sctx, logw)
	case types.StageTest:
		checks, err = ex.test(sctx, logw)
	case types.StageDeliver:
		err = ex.deliver(sctx, logw)
	default:
		err = fmt.Errorf("unknown stage %q", name)
	}
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(sctx), errStageDeadline) {
		err = &backend.StageError{Reason: ReasonDeadlineExceeded,
			Message: fmt.Sprintf("the %s stage ran longer than its deadline of %s and was stopped", name, timeout)}
	}
	if err != nil {
		fmt.Fprintf(logw, "cccp: %s failed: %v\n", name, err)
		if ctx.Err() != nil {
			return err
		}
		reason, msg := "", err.Error()
		var se *backend.StageError
		if errors.As(err, &se) {
			reason, msg = se.Reason, se.Message
		}
		ex.update(ctx, func(run *store.Run) {
			s := stageOf(run, name)
			s.State = store.Failed
			s.Finished = time.Now().UTC()
			s.Error, s.Reason = msg, reason
			s.Checks = checks
			run.Error = fmt.Sprintf("%s: %s", name, msg)
		})
		return err
	}
	fmt.Fprintf(logw, "cccp: %s passed\n", name)
	ex.update(ctx, func(run *store.Run) {
		s := stageOf(run, name)
		s.State = store.Passed
		s.Finished = time.Now().UTC()
		s.Checks = checks
	})
	return nil
}

// lockedWriter lets the backend's log follower and the pipeline's own
// notes share the stage log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (ex *execution) failStage(ctx context.Context, name types.StageName, err error) error {
	ex.update(ctx, func(run *store.Run) {
		s := stageOf(run, name)
		s.State = store.Failed
		s.Finished = time.Now().UTC()
		s.Error = err.Error()
		run.Error = fmt.Sprintf("%s: %v", name, err)
	})
	return err
}

// update changes the stored run and tells the observer. A failure to store
// is logged: the work itself goes on, and the next update tries again.
func (ex *execution) update(ctx context.Context, fn func(*store.Run)) {
	run, err := ex.r.cfg.Store.UpdateRun(context.WithoutCancel(ctx), ex.run.ID, func(run *store.Run) error {
		if run.State.Done() {
			return nil // cancelled meanwhile: its record stays as Cancel left it
		}
		fn(run)
		return nil
	})
	if err != nil {
		ex.r.log.Error("update run", "run", ex.run.ID, "err", err)
		fn(ex.run)
		return
	}
	ex.run = run
	ex.r.notify(run)
}

func stageOf(run *store.Run, name types.StageName) *store.Stage {
	for i := range run.Stages {
		if run.Stages[i].Name == name {
			return &run.Stages[i]
		}
	}
	run.Stages = append(run.Stages, store.Stage{Name: name})
	return &run.Stages[len(run.Stages)-1]
}

// source resolves the run's branch to the exact commit it builds, once:
// every stage (and a resumed run) works on that commit.
func (ex *execution) source(ctx context.Context, log io.Writer) (backend.Source, error) {
	src := backend.Source{GitURL: ex.run.GitURL, Commit: ex.run.Commit, Branch: ex.run.Branch}
	if src.Commit != "" {
		return src, nil
	}
	commit, err := ex.r.cfg.Resolver.Resolve(ctx, src.GitURL, src.Branch)
	if err != nil {
		return src, fmt.Errorf("resolve branch %s of %s: %w", src.Branch, redact.URL(src.GitURL), err)
	}
	fmt.Fprintf(log, "cccp: branch %s of %s is at commit %s\n", src.Branch, redact.URL(src.GitURL), commit)
	src.Commit = commit
	ex.update(ctx, func(run *store.Run) { run.Commit = commit })
	return src, nil
}

// backendName is the configured name of a backend ("" when it has none).
func backendName(b any) string {
	if n, ok := b.(backend.Named); ok {
		return n.Name()
	}
	return ""
}

// onBackend starts one stage's work at a backend (or, after a restart,
// reattaches to the stored handle), stores the handle before waiting, and
// follows the backend's log into the stage log until wait returns.
func (ex *execution) onBackend(ctx context.Context, name types.StageName, b backend.Follower, log io.Writer,
	start func(context.Context) (backend.Handle, error), wait func(context.Context, backend.Handle) error) error {
	bname := backendName(b)
	if st := stageOf(ex.run, name); ex.reattach[name] && st.Handle != "" && st.Backend == bname {
		delete(ex.reattach, name)
		h := backend.Handle(st.Handle)
		fmt.Fprintf(log, "cccp: reattaching to %s work %s\n", bname, h)
		err := ex.follow(ctx, b, h, log, wait)
		if !errors.Is(err, backend.ErrLost) {
			return err
		}
		// The local backend's work dies with cccp: reattaching to it
		// means running the stage again from its start.
		fmt.Fprintf(log, "cccp: %s no longer knows %s (%v); running the %s stage again from its start\n", bname, h, err, name)
	}
	h, err := start(ctx)
	if err != nil {
		return err
	}
	ex.update(ctx, func(run *store.Run) {
		s := stageOf(run, name)
		s.Backend, s.Handle = bname, string(h)
	})
	return ex.follow(ctx, b, h, log, wait)
}

// logGrace is how long the log follower may lag behind the end of the work
// before it is stopped.
const logGrace = 10 * time.Second

// follow waits for h while copying its log; when ctx ends for any reason
// but cccp stopping (cancel, supersede, the stage deadline) it cancels the
// work at the backend.
func (ex *execution) follow(ctx context.Context, b backend.Follower, h backend.Handle, log io.Writer,
	wait func(context.Context, backend.Handle) error) error {
	logCtx, stopLog := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLog()
	logDone := make(chan error, 1)
	go func() {
		_, err := b.Log(logCtx, h, 0, log)
		logDone <- err
	}()
	err := wait(ctx, h)
	if ctx.Err() != nil && ex.base.Err() == nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		if cerr := b.Cancel(cctx, h); cerr != nil {
			ex.r.log.Warn("cancel stage work", "run", ex.run.ID, "handle", h, "err", cerr)
		}
		cancel()
	}
	if ex.base.Err() != nil {
		stopLog() // cccp is stopping: the work goes on, its log is read again on reattach
	}
	timer := time.NewTimer(logGrace)
	defer timer.Stop()
	select {
	case lerr := <-logDone:
		if lerr != nil && !errors.Is(lerr, context.Canceled) && !errors.Is(lerr, backend.ErrLost) {
			ex.r.log.Warn("follow stage log", "run", ex.run.ID, "handle", h, "err", lerr)
		}
	case <-timer.C:
		stopLog()
		<-logDone
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return err
}

func (ex *execution) build(ctx context.Context, log io.Writer) error {
	src, err := ex.source(ctx, log)
	if err != nil {
		return err
	}
	parents, err := ex.parents(ctx, log)
	if err != nil {
		return err
	}
	tag := stageTag(ex.entry, TagTest)
	if ex.run.Kind != types.KindBranch {
		// PR and trial builds never move the shared tags.
		tag = "run-" + ex.run.ID
	}
	ref := ex.r.cfg.Target.Ref(ex.entry.Repository(), tag)
	spec := backend.BuildSpec{
		RunID: ex.run.ID, Kind: ex.run.Kind, Entry: ex.entry, Src: src, Push: ref,
		Parents: parents, OwnRegistries: ex.r.cfg.OwnRegistries,
		Resolve: func(ctx context.Context, image string) (backend.ParentPin, bool, error) {
			return ex.pinParent(ctx, image, log)
		},
	}
	fmt.Fprintf(log, "cccp: building %s at %s, pushing to %s\n", ex.entry.Key(), src.Commit, ref)
	var res backend.BuildResult
	b := ex.r.cfg.Builder
	err = ex.onBackend(ctx, types.StageBuild, b, log,
		func(ctx context.Context) (backend.Handle, error) { return b.StartBuild(ctx, spec) },
		func(ctx context.Context, h backend.Handle) (err error) { res, err = b.WaitBuild(ctx, h); return err })
	if err != nil {
		return err
	}
	if res.Digest == "" {
		return errors.New("the build backend reported no digest")
	}
	fmt.Fprintf(log, "cccp: pushed %s@%s\n", ref, res.Digest)
	bases := make([]store.Base, 0, len(res.Bases))
	for _, b := range res.Bases {
		bases = append(bases, store.Base{Image: b.Image, Digest: b.Digest, Pinned: b.Pinned})
	}
	ex.update(ctx, func(run *store.Run) {
		s := stageOf(run, types.StageBuild)
		s.Digest, s.Bases = res.Digest, bases
		run.Images = append(run.Images, store.Image{Ref: ref, Digest: res.Digest})
	})
	ex.recordKey(ctx, src.Commit, bases, log)
	return nil
}

// digest is the build stage's pushed digest; later stages use only it. A
// rescan has no build stage: its test stage names the delivered digest.
func (ex *execution) digest() (string, error) {
	if ex.run.Kind == types.KindRescan {
		return rescanDigest(ex.run)
	}
	d := stageOf(ex.run, types.StageBuild).Digest
	if d == "" {
		return "", errors.New("the build stage recorded no digest")
	}
	return d, nil
}

func (ex *execution) test(ctx context.Context, log io.Writer) ([]store.Check, error) {
	digest, err := ex.digest()
	if err != nil {
		return nil, err
	}
	src, err := ex.source(ctx, log)
	if err != nil {
		return nil, err
	}
	image := ex.r.cfg.Target.DigestRef(ex.entry.Repository(), digest)
	fmt.Fprintf(log, "cccp: testing %s\n", image)
	spec := backend.TestSpec{RunID: ex.run.ID, Kind: ex.run.Kind, Entry: ex.entry, Src: src, Image: image}
	if ex.run.Kind == types.KindRescan {
		spec.Checks = RescanChecks
	}
	var res backend.TestResult
	t := ex.r.cfg.Tester
	err = ex.onBackend(ctx, types.StageTest, t, log,
		func(ctx context.Context) (backend.Handle, error) { return t.StartTest(ctx, spec) },
		func(ctx context.Context, h backend.Handle) (err error) { res, err = t.WaitTest(ctx, h); return err })
	checks := ex.checks(res.Checks)
	if len(spec.Checks) > 0 {
		checks = onlyChecks(checks, spec.Checks)
	}
	if err != nil {
		return checks, err
	}
	var failed []string
	for _, c := range checks {
		if c.State == store.Failed && c.Blocking {
			failed = append(failed, string(c.Name))
		}
	}
	if len(failed) > 0 {
		return checks, &backend.StageError{Reason: ReasonChecksFailed, Message: "failed: " + strings.Join(failed, ", ")}
	}
	if ex.run.Kind == types.KindBranch {
		rc := ex.r.cfg.Target.Ref(ex.entry.Repository(), stageTag(ex.entry, TagRC))
		if err := ex.r.cfg.Images.Tag(ctx, image, rc); err != nil {
			return checks, fmt.Errorf("tag %s: %w", rc, err)
		}
		fmt.Fprintf(log, "cccp: tagged %s\n", rc)
		ex.update(ctx, func(run *store.Run) { run.Images = append(run.Images, store.Image{Ref: rc, Digest: digest}) })
	}
	return checks, nil
}

// checks turns a backend's check results into stored checks; whether a
// check blocks is the pipeline's decision.
func (ex *execution) checks(in []backend.CheckResult) []store.Check {
	var out []store.Check
	for _, c := range in {
		state := store.Failed
		switch c.State {
		case backend.CheckPassed:
			state = store.Passed
		case backend.CheckSkipped:
			state = store.Skipped
		}
		out = append(out, store.Check{Name: c.Name, State: state, Blocking: ex.r.cfg.Blocking[c.Name],
			Summary: c.Summary, Findings: c.Findings, Explain: c.Explain})
	}
	return out
}

func (ex *execution) deliver(ctx context.Context, log io.Writer) error {
	digest, err := ex.digest()
	if err != nil {
		return err
	}
	src := ex.r.cfg.Target.DigestRef(ex.entry.Repository(), digest)
	if a := ex.r.cfg.Attester; a != nil && ex.run.Kind == types.KindBranch {
		var parents []string
		for _, b := range stageOf(ex.run, types.StageBuild).Bases {
			if b.Pinned && b.Digest != "" {
				parents = append(parents, ex.pinnedRef(b))
			}
		}
		d := Delivery{Image: src, Kind: ex.run.Kind, Entry: ex.entry, GitURL: ex.run.GitURL, Commit: ex.run.Commit,
			Branch: ex.run.Branch, Parents: parents, RunID: ex.run.ID, Started: ex.run.Started}
		if err := a.Attest(ctx, d, log); err != nil {
			return fmt.Errorf("attest %s: %w", src, err)
		}
	}
	var delivered []store.Image
	for _, tag := range ex.entry.Tags() {
		dst := ex.r.cfg.Target.Ref(ex.entry.Repository(), tag)
		if err := ex.r.cfg.Images.Tag(ctx, src, dst); err != nil {
			return fmt.Errorf("tag %s: %w", dst, err)
		}
		fmt.Fprintf(log, "cccp: delivered %s (%s)\n", dst, digest)
		delivered = append(delivered, store.Image{Ref: dst, Digest: digest})
	}
	size := ex.imageSize(ctx, src, log) // imagesize.go
	ex.update(ctx, func(run *store.Run) { run.Images = append(run.Images, delivered...); run.ImageSize = size })
	return nil
}
