package local

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cccp-project/cccp/internal/checks"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/sandbox"
)

// testStage is where one test stage's containers and script run: a
// sandbox box (its own rootless podman storage and service, cgroup limits,
// nothing left after close), or without a sandbox cccp's own podman.
type testStage struct {
	box   *sandbox.Box
	pod   *podman.Runner
	pull  func(ctx context.Context, ref string, tlsVerify bool) error
	suite *checks.Suite
	log   *slog.Logger
}

// stage opens the test stage's box. The image's registry is the only one
// pulled from without verified TLS, and only when Insecure says so.
func (t *Tester) stage(ctx context.Context, spec pipeline.TestSpec) (*testStage, error) {
	suite := *t.Suite
	if t.Sandbox == nil {
		return &testStage{pod: t.Podman, pull: t.Podman.Pull, suite: &suite}, nil
	}
	box, err := t.Sandbox.Open(ctx, "test")
	if err != nil {
		return nil, fmt.Errorf("open sandbox: %w", err)
	}
	st := &testStage{box: box, log: t.Suite.Logger}
	network := spec.Config != nil && spec.Config.TestNetwork
	box.ServiceOnHostNetwork = network
	var insecure []string
	if host := hostOf(spec.Image); t.Insecure != nil && t.Insecure(host) {
		insecure = append(insecure, host)
	}
	if err := box.WriteRegistriesConf(insecure); err != nil {
		st.close()
		return nil, err
	}
	pod, err := box.Podman(ctx)
	if err != nil {
		st.close()
		return nil, fmt.Errorf("open sandbox: %w", err)
	}
	st.pod = pod
	st.pull = box.Puller().Pull
	suite.Containers, suite.Scripts = pod, box
	if network {
		suite.TestNetwork = "slirp4netns"
	}
	st.suite = &suite
	return st, nil
}

// close ends everything of the stage in the box: containers, script
// processes, the image pulled by digest, the box's storage.
func (st *testStage) close() {
	if st.box == nil {
		return
	}
	if err := st.box.Close(); err != nil && st.log != nil {
		st.log.Warn("close sandbox", "box", st.box.Name(), "err", err)
	}
}
