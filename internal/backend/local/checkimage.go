package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/checks"
	"github.com/cccp-project/cccp/internal/index"
)

// ImageCheck is one image to check in a checkout someone else made (a
// Jenkins agent's workspace): what `cccp test` runs.
type ImageCheck struct {
	Image      string // by digest
	Root       string // the checkout; RepoDir when empty
	Dockerfile string // absolute path in the checkout
	RepoDir    string // the entry's git-path in the checkout, where the test script runs
	Config     *index.RepoConfig
}

// CheckImage pulls c.Image and runs the test stage's checks on it, as the
// local backend's test stage does, with cfg's Podman, Suite, Insecure and
// Hold (Dir and Buildah are not used). A check that could not run is
// reported failed; an error means the image could not be pulled or ctx
// ended.
func CheckImage(ctx context.Context, cfg Config, c ImageCheck, log io.Writer) ([]backend.CheckResult, error) {
	if cfg.Podman == nil {
		return nil, errors.New("check image: no podman")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Suite == nil {
		cfg.Suite = &checks.Suite{Containers: cfg.Podman, Logger: cfg.Logger}
	}
	b := &Backend{cfg: cfg, log: cfg.Logger, pulls: &hostPulls{log: cfg.Logger}}
	root := c.Root
	if root == "" {
		root = c.RepoDir
	}
	st, err := b.testStage(ctx, c.Image, c.Config != nil && c.Config.TestNetwork)
	if err != nil {
		return nil, err
	}
	defer st.close()
	if err := st.pull(ctx, c.Image, b.tlsVerify(c.Image)); err != nil {
		return nil, stageErr(ReasonPullFailed, fmt.Errorf("pull %s: %w", c.Image, err))
	}
	return b.runChecks(ctx, st, checkSpec{image: c.Image, root: root, dockerfile: c.Dockerfile, repoDir: c.RepoDir, config: c.Config}, log)
}
