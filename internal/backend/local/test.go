package local

import (
	"context"
	"fmt"
	"io"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/checks"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/types"
)

// test pulls the image by digest and runs every check on it, in the run's
// checkout (cccp.yaml, the Dockerfile for the lint, the user's test
// script).
func (b *Backend) test(ctx context.Context, spec backend.TestSpec, log io.Writer) (backend.TestResult, error) {
	if !checks.NeedsSource(spec.Checks) {
		return b.testImageOnly(ctx, spec, log)
	}
	co, err := b.checkout(ctx, spec.RunID, spec.Src, log)
	if err != nil {
		return backend.TestResult{}, err
	}
	repoDir, dockerfile, _, err := co.paths(spec.Entry)
	if err != nil {
		return backend.TestResult{}, err
	}
	cfg, findings, err := index.LoadRepoConfig(repoDir)
	if err != nil {
		return backend.TestResult{}, stageErr(ReasonBadPath, fmt.Errorf("cccp.yaml: %w", err))
	}
	for _, f := range findings {
		fmt.Fprintf(log, "cccp: %s\n", f)
	}
	st, err := b.testStage(ctx, spec.Image, cfg.TestNetwork)
	if err != nil {
		return backend.TestResult{}, err
	}
	defer st.close()
	if err := st.pull(ctx, spec.Image, b.tlsVerify(spec.Image)); err != nil {
		return backend.TestResult{}, stageErr(ReasonPullFailed, fmt.Errorf("pull %s: %w", spec.Image, err))
	}
	checks, err := b.runChecks(ctx, st, checkSpec{image: spec.Image, only: spec.Checks, root: co.root, dockerfile: dockerfile, repoDir: repoDir, config: cfg}, log)
	return backend.TestResult{Checks: checks}, err
}

// testImageOnly runs checks that need only the image (a rescan's scans):
// no checkout, no cccp.yaml.
func (b *Backend) testImageOnly(ctx context.Context, spec backend.TestSpec, log io.Writer) (backend.TestResult, error) {
	st, err := b.testStage(ctx, spec.Image, false)
	if err != nil {
		return backend.TestResult{}, err
	}
	defer st.close()
	if err := st.pull(ctx, spec.Image, b.tlsVerify(spec.Image)); err != nil {
		return backend.TestResult{}, stageErr(ReasonPullFailed, fmt.Errorf("pull %s: %w", spec.Image, err))
	}
	checks, err := b.runChecks(ctx, st, checkSpec{image: spec.Image, only: spec.Checks}, log)
	return backend.TestResult{Checks: checks}, err
}

// checkSpec is what the checks need.
type checkSpec struct {
	image      string // pulled, by digest
	root       string // the checkout
	dockerfile string // absolute path in the checkout
	repoDir    string // the entry's git-path in the checkout, where test scripts run
	config     *index.RepoConfig
	only       []types.CheckName // empty: every check
}

// runChecks runs the predefined checks and the user's test script, the
// independent ones at the same time (checks.Suite.RunStage), in the
// stage's box. A check that could not run at all (podman failed) is
// reported failed with the reason; an error is returned only when ctx
// ends.
func (b *Backend) runChecks(ctx context.Context, st *testStage, spec checkSpec, log io.Writer) ([]backend.CheckResult, error) {
	stage := checks.StageSpec{Image: spec.image, Dockerfile: spec.dockerfile, Root: spec.root, RepoDir: spec.repoDir, Hold: b.cfg.Hold}
	if cfg := spec.config; cfg != nil {
		stage.TestScript, stage.TestSkip = cfg.TestScript, cfg.TestSkip
	}
	outcomes, err := st.suite.RunStage(ctx, stage, log)
	out := make([]backend.CheckResult, 0, len(outcomes))
	for _, o := range outcomes {
		out = append(out, backend.CheckResult{Name: o.Name, State: backend.CheckState(o.State),
			Summary: o.Summary, Findings: o.Findings, Explain: o.Explain})
	}
	return out, err
}
