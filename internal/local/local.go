// Package local assembles cccp's embedded default backends behind the
// pipeline's interfaces: buildah builds and pushes, podman runs the
// predefined checks and the user's test script. Nothing here decides what a
// run does; the pipeline does.
package local

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/checks"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/sandbox"
	"github.com/cccp-project/cccp/internal/store"
)

// Builder builds with buildah and pushes with the registry's credentials.
type Builder struct {
	Buildah *buildah.Builder
	// Username and Password authenticate pushes; empty for a registry
	// that needs none (or takes them from the auth files).
	Username, Password string
	// Insecure tells whether a registry host is reached over plain HTTP.
	Insecure func(host string) bool
	// InsecureRegistries are the registry hosts builds may pull base
	// images from (a parent pinned to its digest in the delivery registry)
	// over plain HTTP; TLS is verified for every other registry.
	InsecureRegistries []string
}

var _ pipeline.Builder = (*Builder)(nil)

// Build builds spec's image.
func (b *Builder) Build(ctx context.Context, spec pipeline.BuildSpec) error {
	_, err := b.Buildah.Build(ctx, buildah.BuildRequest{
		ContextDir:         spec.ContextDir,
		Dockerfile:         spec.Dockerfile,
		Image:              spec.Image,
		Log:                spec.Log,
		InsecureRegistries: b.InsecureRegistries,
	})
	return err
}

// Push pushes image to ref and returns its digest.
func (b *Builder) Push(ctx context.Context, image, ref string, log io.Writer) (string, error) {
	tlsVerify := b.Insecure == nil || !b.Insecure(hostOf(ref))
	return b.Buildah.Push(ctx, image, ref, buildah.PushOptions{
		Username: b.Username, Password: b.Password, TLSVerify: tlsVerify, Log: log,
	})
}

func hostOf(ref string) string {
	if i := strings.IndexByte(ref, '/'); i > 0 {
		return ref[:i]
	}
	return ref
}

// Tester runs the predefined checks and the user's test script with podman.
type Tester struct {
	Podman *podman.Runner
	Suite  *checks.Suite
	// Insecure tells whether a registry host is reached over plain HTTP.
	Insecure func(host string) bool
	// Hold is how long the smoke run must keep running (or exit 0 before).
	Hold time.Duration
	// Sandbox, when set, holds each test stage in a box of its own: the
	// image is pulled into it and every container and the user's script
	// run there as the unprivileged sandbox user (see box.go). Without
	// it the checks run with Podman and the user's script is not run.
	Sandbox *sandbox.Sandbox
}

var _ pipeline.Tester = (*Tester)(nil)

// Check names, as reported and as named in the blocking configuration.
const (
	CheckLint           = "lint"
	CheckCapabilities   = "capabilities"
	CheckPackageUpdates = "package-updates"
	CheckRPMVerify      = "rpm-verify"
	CheckLangPackages   = "language-packages"
	CheckSmoke          = "smoke"
	CheckUserScript     = "user-script"
)

// Checks are the names of every check Test runs, in order.
var Checks = []string{CheckLint, CheckCapabilities, CheckPackageUpdates, CheckRPMVerify, CheckLangPackages, CheckSmoke, CheckUserScript}

// Test pulls the image by digest and runs every check on it. A check that
// could not run at all (podman failed) is recorded as failed with the
// reason; Test returns an error only when the image cannot be had.
func (t *Tester) Test(ctx context.Context, spec pipeline.TestSpec) ([]store.Check, error) {
	log := spec.Log
	st, err := t.stage(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer st.close()
	tlsVerify := t.Insecure == nil || !t.Insecure(hostOf(spec.Image))
	if err := st.pull(ctx, spec.Image, tlsVerify); err != nil {
		return nil, fmt.Errorf("pull %s: %w", spec.Image, err)
	}
	var out []store.Check
	add := func(name string, r checks.Result, err error) {
		c := store.Check{Name: name, Summary: r.Summary, Findings: r.Findings}
		switch {
		case err != nil:
			c.State = store.Failed
			c.Summary = "could not run: " + err.Error()
		case r.Skipped:
			c.State = store.Skipped
		case r.Passed:
			c.State = store.Passed
		default:
			c.State = store.Failed
		}
		fmt.Fprintf(log, "cccp: check %s: %s: %s\n", name, c.State, c.Summary)
		out = append(out, c)
	}

	section(log, CheckLint)
	if df, err := os.ReadFile(spec.Dockerfile); err != nil {
		add(CheckLint, checks.Result{}, fmt.Errorf("read Dockerfile: %w", err))
	} else {
		add(CheckLint, checks.Lint(filepath.Base(spec.Dockerfile), df, log), nil)
	}

	section(log, CheckCapabilities)
	labels, err := st.pod.ImageLabels(ctx, spec.Image)
	add(CheckCapabilities, checks.Capabilities(labels, log), err)

	for _, scan := range []struct {
		name string
		run  func(context.Context, string, io.Writer) (checks.Result, error)
	}{
		{CheckPackageUpdates, st.suite.PackageUpdates},
		{CheckRPMVerify, st.suite.RPMVerify},
		{CheckLangPackages, st.suite.LangPackages},
	} {
		section(log, scan.name)
		r, err := scan.run(ctx, spec.Image, log)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		add(scan.name, r, err)
	}

	section(log, CheckSmoke)
	hold := t.Hold
	if hold == 0 {
		hold = checks.DefaultHold
	}
	r, err := st.suite.Smoke(ctx, spec.Image, hold, log)
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	add(CheckSmoke, r, err)

	section(log, CheckUserScript)
	switch cfg := spec.Config; {
	case cfg == nil || cfg.TestScript == "":
		add(CheckUserScript, checks.Result{Skipped: true, Summary: "no test-script in cccp.yaml"}, nil)
	case cfg.TestSkip:
		add(CheckUserScript, checks.Result{Skipped: true, Summary: "test-skip is set in cccp.yaml"}, nil)
	default:
		script := filepath.Join(spec.RepoDir, filepath.Clean("/"+cfg.TestScript))
		r, err := st.suite.UserScript(ctx, script, spec.RepoDir, spec.Image, log)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		add(CheckUserScript, r, err)
	}
	return out, nil
}

func section(w io.Writer, name string) { fmt.Fprintf(w, "cccp: ---- %s ----\n", name) }
