package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/store"
)

// execution is one run being worked.
type execution struct {
	r     *Runner
	run   *store.Run
	entry *index.Entry
	dir   string // the run's work folder

	checkout string // repository root, once fetched
	config   *index.RepoConfig
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

// stage runs one stage, recording its state, timing and error. The stage's
// log gets the tools' output; an error also ends up in Stage.Error.
func (ex *execution) stage(ctx context.Context, name string) error {
	logw, err := ex.r.cfg.Logs.Create(ex.run.ID, name)
	if err != nil {
		return ex.failStage(ctx, name, fmt.Errorf("open %s log: %w", name, err))
	}
	defer logw.Close()
	ex.update(ctx, func(run *store.Run) {
		if run.State == store.Queued {
			run.State = store.Running
			run.Started = time.Now().UTC()
		}
		s := stageOf(run, name)
		s.State = store.Running
		s.Started = time.Now().UTC()
		s.Finished = time.Time{}
		s.Error = ""
	})
	var checks []store.Check
	switch name {
	case StageBuild:
		err = ex.build(ctx, logw)
	case StageTest:
		checks, err = ex.test(ctx, logw)
	case StageDeliver:
		err = ex.deliver(ctx, logw)
	default:
		err = fmt.Errorf("unknown stage %q", name)
	}
	if err != nil {
		fmt.Fprintf(logw, "cccp: %s failed: %v\n", name, err)
		if ctx.Err() != nil {
			return err
		}
		ex.update(ctx, func(run *store.Run) {
			s := stageOf(run, name)
			s.State = store.Failed
			s.Finished = time.Now().UTC()
			s.Error = err.Error()
			s.Checks = checks
			run.Error = fmt.Sprintf("%s: %v", name, err)
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

func (ex *execution) failStage(ctx context.Context, name string, err error) error {
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

func stageOf(run *store.Run, name string) *store.Stage {
	for i := range run.Stages {
		if run.Stages[i].Name == name {
			return &run.Stages[i]
		}
	}
	run.Stages = append(run.Stages, store.Stage{Name: name})
	return &run.Stages[len(run.Stages)-1]
}

// fetch checks the repository out once per execution, at the run's commit
// when one is known (a resumed run tests what it built).
func (ex *execution) fetch(ctx context.Context, log io.Writer) error {
	if ex.checkout != "" {
		return nil
	}
	dest := filepath.Join(ex.dir, "src")
	if err := os.RemoveAll(dest); err != nil {
		return fmt.Errorf("clean checkout: %w", err)
	}
	if err := os.MkdirAll(ex.dir, 0o755); err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	fmt.Fprintf(log, "cccp: fetching %s (branch %s%s)\n", redact.URL(ex.run.GitURL), ex.run.Branch, commitNote(ex.run.Commit))
	commit, err := ex.r.cfg.Source.Fetch(ctx, ex.run.GitURL, ex.run.Branch, ex.run.Commit, dest)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", redact.URL(ex.run.GitURL), err)
	}
	fmt.Fprintf(log, "cccp: checked out commit %s\n", commit)
	ex.checkout = dest
	if ex.run.Commit != commit {
		ex.update(ctx, func(run *store.Run) { run.Commit = commit })
	}
	return nil
}

func commitNote(c string) string {
	if c == "" {
		return ""
	}
	return ", commit " + c
}

// inRepo joins a path of the index entry to the checkout, refusing one
// that leaves it (the linter reports these; this is the last line).
func (ex *execution) inRepo(parts ...string) (string, error) {
	p := filepath.Join(append([]string{ex.checkout}, parts...)...)
	rel, err := filepath.Rel(ex.checkout, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("path %q leaves the repository", filepath.Join(parts...))
	}
	return p, nil
}

func (ex *execution) paths() (repoDir, dockerfile, contextDir string, err error) {
	e := ex.entry
	if repoDir, err = ex.inRepo(e.GitPath); err != nil {
		return
	}
	if dockerfile, err = ex.inRepo(e.GitPath, e.TargetFile); err != nil {
		return
	}
	contextDir, err = ex.inRepo(e.GitPath, e.BuildContext)
	return
}

func (ex *execution) build(ctx context.Context, log io.Writer) error {
	if err := ex.fetch(ctx, log); err != nil {
		return err
	}
	if err := ex.prebuild(ctx, log); err != nil {
		return err
	}
	_, dockerfile, contextDir, err := ex.paths()
	if err != nil {
		return err
	}
	if _, err := os.Stat(dockerfile); err != nil {
		return fmt.Errorf("%s/%s not found at commit %s", strings.Trim(ex.entry.GitPath, "/"), ex.entry.TargetFile, ex.run.Commit)
	}
	pinned, err := ex.pinParents(ctx, dockerfile, log)
	if err != nil {
		return err
	}
	if pinned != "" {
		dockerfile = pinned
	}
	local := "localhost/cccp/" + ex.entry.Repository() + ":run-" + ex.run.ID
	fmt.Fprintf(log, "cccp: building %s\n", ex.entry.Key())
	if err := ex.r.cfg.Builder.Build(ctx, BuildSpec{ContextDir: contextDir, Dockerfile: dockerfile, Image: local, Log: log}); err != nil {
		return err
	}
	tag := stageTag(ex.entry, TagTest)
	if ex.run.Kind != KindBranch {
		// PR and trial builds never move the shared tags.
		tag = "run-" + ex.run.ID
	}
	ref := ex.r.cfg.Target.Ref(ex.entry.Repository(), tag)
	fmt.Fprintf(log, "cccp: pushing %s\n", ref)
	digest, err := ex.r.cfg.Builder.Push(ctx, local, ref, log)
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	fmt.Fprintf(log, "cccp: pushed %s@%s\n", ref, digest)
	ex.update(ctx, func(run *store.Run) {
		stageOf(run, StageBuild).Digest = digest
		run.Images = append(run.Images, store.Image{Ref: ref, Digest: digest})
	})
	return nil
}

// prebuild runs the entry's prebuild-script in its prebuild-context.
func (ex *execution) prebuild(ctx context.Context, log io.Writer) error {
	e := ex.entry
	if e.PrebuildScript == "" {
		return nil
	}
	dir, err := ex.inRepo(e.PrebuildContext)
	if err != nil {
		return err
	}
	script, err := ex.inRepo(e.PrebuildScript)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "cccp: prebuild: %s in %s\n", e.PrebuildScript, e.PrebuildContext)
	cmd := exec.CommandContext(ctx, "sh", script)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "CCCP_APP_ID="+e.AppID, "CCCP_JOB_ID="+e.JobID, "CCCP_COMMIT="+ex.run.Commit)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("prebuild-script %s: %w", e.PrebuildScript, err)
	}
	return nil
}

// digest is the build stage's pushed digest; later stages use only it.
func (ex *execution) digest() (string, error) {
	d := stageOf(ex.run, StageBuild).Digest
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
	if err := ex.fetch(ctx, log); err != nil {
		return nil, err
	}
	repoDir, dockerfile, _, err := ex.paths()
	if err != nil {
		return nil, err
	}
	cfg, findings, err := index.LoadRepoConfig(repoDir)
	if err != nil {
		return nil, fmt.Errorf("cccp.yaml: %w", err)
	}
	for _, f := range findings {
		fmt.Fprintf(log, "cccp: %s\n", f)
	}
	image := ex.r.cfg.Target.DigestRef(ex.entry.Repository(), digest)
	fmt.Fprintf(log, "cccp: testing %s\n", image)
	checks, err := ex.r.cfg.Tester.Test(ctx, TestSpec{Image: image, Dockerfile: dockerfile, RepoDir: repoDir, Config: cfg, Log: log})
	if err != nil {
		return checks, fmt.Errorf("tests: %w", err)
	}
	var failed []string
	for i := range checks {
		c := &checks[i]
		c.Blocking = ex.r.cfg.Blocking[c.Name]
		if c.State == store.Failed && c.Blocking {
			failed = append(failed, c.Name)
		}
	}
	if len(failed) > 0 {
		return checks, fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	if ex.run.Kind == KindBranch {
		rc := ex.r.cfg.Target.Ref(ex.entry.Repository(), stageTag(ex.entry, TagRC))
		if err := ex.r.cfg.Images.Tag(ctx, image, rc); err != nil {
			return checks, fmt.Errorf("tag %s: %w", rc, err)
		}
		fmt.Fprintf(log, "cccp: tagged %s\n", rc)
		ex.update(ctx, func(run *store.Run) { run.Images = append(run.Images, store.Image{Ref: rc, Digest: digest}) })
	}
	return checks, nil
}

func (ex *execution) deliver(ctx context.Context, log io.Writer) error {
	digest, err := ex.digest()
	if err != nil {
		return err
	}
	src := ex.r.cfg.Target.DigestRef(ex.entry.Repository(), digest)
	var delivered []store.Image
	for _, tag := range ex.entry.Tags() {
		dst := ex.r.cfg.Target.Ref(ex.entry.Repository(), tag)
		if err := ex.r.cfg.Images.Tag(ctx, src, dst); err != nil {
			return fmt.Errorf("tag %s: %w", dst, err)
		}
		fmt.Fprintf(log, "cccp: delivered %s (%s)\n", dst, digest)
		delivered = append(delivered, store.Image{Ref: dst, Digest: digest})
	}
	ex.update(ctx, func(run *store.Run) { run.Images = append(run.Images, delivered...) })
	return nil
}
