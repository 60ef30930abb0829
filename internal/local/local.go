// Package local assembles cccp's embedded default backends behind the
// pipeline's interfaces: buildah builds and pushes, podman runs the
// predefined checks and the user's test script. Nothing here decides what a
// run does; the pipeline does.
package local

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/checks"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/podman"
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
	// InsecurePull lets builds pull base images (a parent pinned to its
	// digest in the delivery registry) over plain HTTP.
	InsecurePull bool
}

var _ pipeline.Builder = (*Builder)(nil)

// Build builds spec's image.
func (b *Builder) Build(ctx context.Context, spec pipeline.BuildSpec) error {
	_, err := b.Buildah.Build(ctx, buildah.BuildRequest{
		ContextDir:   spec.ContextDir,
		Dockerfile:   spec.Dockerfile,
		Image:        spec.Image,
		Log:          spec.Log,
		InsecurePull: b.InsecurePull,
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

// Test pulls the image by digest and runs every check on it (see
// checks.Suite.RunStage). A check that could not run at all (podman
// failed) is recorded as failed with the reason; Test returns an error
// only when the image cannot be had or ctx ended.
func (t *Tester) Test(ctx context.Context, spec pipeline.TestSpec) ([]store.Check, error) {
	tlsVerify := t.Insecure == nil || !t.Insecure(hostOf(spec.Image))
	if err := t.Podman.Pull(ctx, spec.Image, tlsVerify); err != nil {
		return nil, fmt.Errorf("pull %s: %w", spec.Image, err)
	}
	stage := checks.StageSpec{Image: spec.Image, Dockerfile: spec.Dockerfile, RepoDir: spec.RepoDir, Hold: t.Hold}
	if cfg := spec.Config; cfg != nil {
		stage.TestScript, stage.TestSkip = cfg.TestScript, cfg.TestSkip
	}
	outcomes, err := t.Suite.RunStage(ctx, stage, spec.Log)
	out := make([]store.Check, 0, len(outcomes))
	for _, o := range outcomes {
		out = append(out, store.Check{Name: string(o.Name), State: store.State(o.State), Summary: o.Summary,
			Findings: o.Findings, Explain: o.Explain})
	}
	return out, err
}
