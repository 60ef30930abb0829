package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/checks"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/sandbox"
)

// ReasonSandbox is a stage that could not set up or end its sandbox.
const ReasonSandbox = "SandboxUnavailable"

// testStage is where one test stage's containers and script run: a
// sandbox box (its own rootless podman storage and service, cgroup limits,
// nothing left after close), or without a sandbox cccp's own podman.
type testStage struct {
	box   *sandbox.Box
	pod   *podman.Runner
	pull  func(ctx context.Context, ref string, tlsVerify bool) error
	suite *checks.Suite
	log   *slog.Logger
	// unpull ends the stage's use of what it pulled without a box.
	unpull []func()
}

// testStage opens the test stage's box. The image's registry is the only
// one pulled from without verified TLS, and only when Insecure says so.
func (b *Backend) testStage(ctx context.Context, image string, network bool) (*testStage, error) {
	suite := *b.cfg.Suite
	st := &testStage{log: b.log}
	if b.cfg.Sandbox == nil {
		st.pod, st.suite = b.cfg.Podman, &suite
		st.pull = func(ctx context.Context, ref string, tlsVerify bool) error {
			done, err := b.pulls.pull(ctx, b.cfg.Podman, ref, tlsVerify)
			if err == nil {
				st.unpull = append(st.unpull, done)
			}
			return err
		}
		return st, nil
	}
	box, err := b.cfg.Sandbox.Open(ctx, "test")
	if err != nil {
		return nil, stageErr(ReasonSandbox, fmt.Errorf("open sandbox: %w", err))
	}
	st.box = box
	box.ServiceOnHostNetwork = network
	var insecure []string
	if host := hostOf(image); !b.tlsVerify(image) {
		insecure = append(insecure, host)
	}
	if err := box.WriteRegistriesConf(insecure); err != nil {
		st.close()
		return nil, stageErr(ReasonSandbox, err)
	}
	pod, err := box.Podman(ctx)
	if err != nil {
		st.close()
		return nil, stageErr(ReasonSandbox, fmt.Errorf("open sandbox: %w", err))
	}
	st.pod, st.pull = pod, box.Puller().Pull
	suite.Containers, suite.Scripts = pod, box
	if network {
		suite.TestNetwork = "slirp4netns"
	}
	st.suite = &suite
	return st, nil
}

// close ends everything of the stage in the box: containers, script
// processes, the image pulled by digest, the box's storage. Without a box
// it removes the image it pulled, unless another stage still uses it or
// it was there before.
func (st *testStage) close() {
	for _, done := range st.unpull {
		done()
	}
	if st.box == nil {
		return
	}
	if err := st.box.Close(); err != nil {
		st.log.Warn("close sandbox", "box", st.box.Name(), "err", err)
	}
}

// prebuild runs the entry's prebuild-script in its prebuild-context, in a
// box of its own (see internal/sandbox): as the unprivileged sandbox user,
// the checkout its only writable folder, no network, with CCCP_APP_ID,
// CCCP_JOB_ID and CCCP_COMMIT and nothing else of cccp's environment.
// Everything it started is ended before the build reads the checkout.
func (b *Backend) prebuild(ctx context.Context, co *checkout, spec backend.BuildSpec, log io.Writer) error {
	e := spec.Entry
	if e.PrebuildScript == "" {
		return nil
	}
	dir, err := co.in(e.PrebuildContext)
	if err != nil {
		return err
	}
	script, err := co.in(e.PrebuildScript)
	if err != nil {
		return err
	}
	if b.cfg.Sandbox == nil {
		return stageErr(ReasonPrebuildFailed, errors.New("prebuild-script not run: no sandbox to run it in (cccp never runs repository code on the host)"))
	}
	fmt.Fprintf(log, "cccp: prebuild: %s in %s (in the sandbox, checkout at %s)\n", e.PrebuildScript, e.PrebuildContext, sandbox.Dest)
	box, err := b.cfg.Sandbox.Open(ctx, "prebuild")
	if err != nil {
		return stageErr(ReasonSandbox, fmt.Errorf("open sandbox: %w", err))
	}
	defer func() {
		if err := box.Close(); err != nil {
			b.log.Warn("close sandbox", "box", box.Name(), "err", err)
		}
	}()
	relDir, _ := filepath.Rel(co.root, dir)
	relScript, _ := filepath.Rel(co.root, script)
	res, err := box.Run(ctx, sandbox.Script{
		Checkout: co.root, Dir: relDir, Output: log,
		Argv: []string{"/bin/sh", filepath.Join(sandbox.Dest, relScript)},
		Env:  []string{"CCCP_APP_ID=" + e.AppID, "CCCP_JOB_ID=" + e.JobID, "CCCP_COMMIT=" + spec.Src.Commit},
	})
	switch {
	case err != nil:
		return stageErr(ReasonPrebuildFailed, fmt.Errorf("prebuild-script %s: %w", e.PrebuildScript, err))
	case res.Reason != "":
		fmt.Fprintf(log, "cccp: prebuild-script stopped: %s\n", res.Reason)
		return stageErr(ReasonPrebuildFailed, fmt.Errorf("prebuild-script %s: %s", e.PrebuildScript, res.Reason))
	case res.ExitCode != 0:
		return stageErr(ReasonPrebuildFailed, fmt.Errorf("prebuild-script %s: exit status %d", e.PrebuildScript, res.ExitCode))
	}
	return nil
}

// imageRecord is where the backend notes a run image before building it,
// until it is removed: what Cleanup removes after a crash.
func (b *Backend) imageRecord(image string) string {
	return filepath.Join(b.cfg.Dir, "images", strings.NewReplacer("/", "_", ":", "_").Replace(image))
}

// noteImage records image as being built.
func (b *Backend) noteImage(image string) error {
	p := b.imageRecord(image)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(image), 0o600)
}

// removeImage removes a run's local image and its record, even when the
// stage's ctx has ended.
func (b *Backend) removeImage(image string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.cfg.Buildah.Remove(ctx, image); err != nil {
		b.log.Warn("remove run image", "image", image, "err", err)
		return
	}
	os.Remove(b.imageRecord(image))
}

// Cleanup removes what an earlier cccp with the same Dir left behind when
// it crashed: its sandbox boxes (their processes, containers, pulled
// images and storage), the run images of builds it had started
// (localhost/cccp/...:run-N) and, in a build storage of its own, the
// working containers of those builds. Call it at start, before any stage
// runs.
func (b *Backend) Cleanup(ctx context.Context) error {
	var errs []error
	if b.cfg.Buildah.Root != "" {
		if _, err := b.cleanContainers(ctx, false); err != nil {
			errs = append(errs, fmt.Errorf("working containers of killed builds: %w", err))
		}
	}
	if b.cfg.Sandbox != nil {
		if err := b.cfg.Sandbox.Cleanup(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	records, _ := os.ReadDir(filepath.Join(b.cfg.Dir, "images"))
	for _, r := range records {
		p := filepath.Join(b.cfg.Dir, "images", r.Name())
		image, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := b.cfg.Buildah.Remove(ctx, string(image)); err != nil {
			errs = append(errs, err)
			continue
		}
		os.Remove(p)
	}
	return errors.Join(errs...)
}
