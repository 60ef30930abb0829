package local

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/checks"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/types"
)

// test pulls the image by digest and runs every check on it, in the run's
// checkout (cccp.yaml, the Dockerfile for the lint, the user's test
// script).
func (b *Backend) test(ctx context.Context, spec backend.TestSpec, log io.Writer) (backend.TestResult, error) {
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
	if err := b.cfg.Podman.Pull(ctx, spec.Image, b.tlsVerify(spec.Image)); err != nil {
		return backend.TestResult{}, stageErr(ReasonPullFailed, fmt.Errorf("pull %s: %w", spec.Image, err))
	}
	checks, err := b.runChecks(ctx, checkSpec{image: spec.Image, dockerfile: dockerfile, repoDir: repoDir, config: cfg}, log)
	return backend.TestResult{Checks: checks}, err
}

// checkSpec is what the checks need.
type checkSpec struct {
	image      string // pulled, by digest
	dockerfile string // absolute path in the checkout
	repoDir    string // the entry's git-path in the checkout, where test scripts run
	config     *index.RepoConfig
}

// explainLines is how many of a failed check's last output lines are kept
// to explain it.
const explainLines = 20

// runChecks runs the predefined checks and the user's test script. A check
// that could not run at all (podman failed) is reported failed with the
// reason; an error is returned only when ctx ends.
func (b *Backend) runChecks(ctx context.Context, spec checkSpec, log io.Writer) ([]backend.CheckResult, error) {
	var out []backend.CheckResult
	var tail *tailLines
	section := func(name types.CheckName) io.Writer {
		fmt.Fprintf(log, "cccp: ---- %s ----\n", name)
		tail = &tailLines{max: explainLines}
		return io.MultiWriter(log, tail)
	}
	add := func(name types.CheckName, r checks.Result, err error) {
		c := backend.CheckResult{Name: name, Summary: r.Summary, Findings: r.Findings}
		switch {
		case err != nil:
			c.State = backend.CheckFailed
			c.Summary = "could not run: " + err.Error()
		case r.Skipped:
			c.State = backend.CheckSkipped
		case r.Passed:
			c.State = backend.CheckPassed
		default:
			c.State = backend.CheckFailed
		}
		if c.State == backend.CheckFailed {
			c.Explain = tail.lines()
		}
		fmt.Fprintf(log, "cccp: check %s: %s: %s\n", name, c.State, c.Summary)
		out = append(out, c)
	}
	suite := b.cfg.Suite

	w := section(types.CheckLint)
	if df, err := os.ReadFile(spec.dockerfile); err != nil {
		add(types.CheckLint, checks.Result{}, fmt.Errorf("read Dockerfile: %w", err))
	} else {
		add(types.CheckLint, checks.Lint(filepath.Base(spec.dockerfile), df, w), nil)
	}

	w = section(types.CheckCapabilities)
	labels, err := b.cfg.Podman.ImageLabels(ctx, spec.image)
	add(types.CheckCapabilities, checks.Capabilities(labels, w), err)

	for _, scan := range []struct {
		name types.CheckName
		run  func(context.Context, string, io.Writer) (checks.Result, error)
	}{
		{types.CheckPackageUpdates, suite.PackageUpdates},
		{types.CheckRPMVerify, suite.RPMVerify},
		{types.CheckLangPackages, suite.LangPackages},
	} {
		w := section(scan.name)
		r, err := scan.run(ctx, spec.image, w)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		add(scan.name, r, err)
	}

	w = section(types.CheckSmoke)
	hold := b.cfg.Hold
	if hold == 0 {
		hold = checks.DefaultHold
	}
	r, err := suite.Smoke(ctx, spec.image, hold, w)
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	add(types.CheckSmoke, r, err)

	w = section(types.CheckUserScript)
	switch cfg := spec.config; {
	case cfg == nil || cfg.TestScript == "":
		add(types.CheckUserScript, checks.Result{Skipped: true, Summary: "no test-script in cccp.yaml"}, nil)
	case cfg.TestSkip:
		add(types.CheckUserScript, checks.Result{Skipped: true, Summary: "test-skip is set in cccp.yaml"}, nil)
	default:
		script := filepath.Join(spec.repoDir, filepath.Clean("/"+cfg.TestScript))
		r, err := suite.UserScript(ctx, script, spec.repoDir, spec.image, w)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		add(types.CheckUserScript, r, err)
	}
	return out, nil
}

// tailLines keeps the last max complete lines written to it, each cut at
// maxExplainLine bytes.
type tailLines struct {
	max     int
	partial []byte
	ring    []string
}

const maxExplainLine = 512

func (t *tailLines) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if room := maxExplainLine - len(t.partial); room > 0 {
				t.partial = append(t.partial, p[:min(room, len(p))]...)
			}
			break
		}
		if room := maxExplainLine - len(t.partial); room > 0 {
			t.partial = append(t.partial, p[:min(room, i)]...)
		}
		t.push(string(t.partial))
		t.partial = t.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (t *tailLines) push(l string) {
	t.ring = append(t.ring, l)
	if len(t.ring) > t.max {
		t.ring = t.ring[len(t.ring)-t.max:]
	}
}

func (t *tailLines) lines() []string {
	out := append([]string(nil), t.ring...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	return out
}
