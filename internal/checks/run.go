package checks

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/safefs"
	"github.com/cccp-project/cccp/internal/sandbox"
)

// DefaultHold is how long Smoke wants an image to keep running.
const DefaultHold = 5 * time.Second

// logTail is how many lines of a container's or script's output a failed
// result carries.
const logTail = 20

// remove removes a container even when ctx has ended.
func (s *Suite) remove(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Containers.Rm(ctx, name); err != nil {
		s.logger().Warn("remove test container", "container", name, "err", err)
	}
}

// Smoke starts the image with its own entrypoint, detached and without a
// network. It passes when the container still runs after hold (DefaultHold
// when 0) or has exited 0; a failure carries the container's last log
// lines. The container is always removed.
func (s *Suite) Smoke(ctx context.Context, image string, hold time.Duration, log io.Writer) (Result, error) {
	const check = "smoke"
	if hold <= 0 {
		hold = DefaultHold
	}
	name := s.containerName(check)
	defer s.remove(name)
	fmt.Fprintf(log, "starting %s as %s (network none), want it running for %s or exited 0\n", image, name, hold)
	if _, err := s.Containers.Run(ctx, podman.RunOptions{Image: image, Name: name, Detach: true, Network: "none", Log: log}); err != nil {
		return Result{Name: check, Summary: "could not start: " + err.Error()}, fmt.Errorf("smoke %s: %w", image, err)
	}
	deadline := time.NewTimer(hold)
	defer deadline.Stop()
	tick := time.NewTicker(s.poll())
	defer tick.Stop()
	for {
		st, err := s.Containers.Inspect(ctx, name)
		if err != nil {
			return Result{Name: check, Summary: "could not inspect: " + err.Error()}, fmt.Errorf("smoke %s: %w", image, err)
		}
		if !st.Running && st.Status != "created" && st.Status != "" {
			logs := s.containerLogs(ctx, name, log)
			if st.ExitCode == 0 {
				return Result{Name: check, Passed: true, Summary: "exited 0"}, nil
			}
			return Result{Name: check, Summary: fmt.Sprintf("exited %d before %s", st.ExitCode, hold), Findings: logs}, nil
		}
		select {
		case <-ctx.Done():
			return Result{Name: check, Summary: "interrupted"}, fmt.Errorf("smoke %s: %w", image, ctx.Err())
		case <-deadline.C:
			s.containerLogs(ctx, name, log)
			fmt.Fprintf(log, "still running after %s\n", hold)
			return Result{Name: check, Passed: true, Summary: fmt.Sprintf("still running after %s", hold)}, nil
		case <-tick.C:
		}
	}
}

// containerLogs copies a container's last lines to log and returns them.
func (s *Suite) containerLogs(ctx context.Context, name string, log io.Writer) []string {
	out, err := s.Containers.Logs(ctx, name, logTail)
	if err != nil {
		fmt.Fprintf(log, "could not read the container's log: %v\n", err)
		return nil
	}
	fmt.Fprintf(log, "--- last lines of %s ---\n%s", name, out)
	return lastLines(out, logTail)
}

// ScriptRunner runs a repository's script in a box; *sandbox.Box is one.
type ScriptRunner interface {
	Run(ctx context.Context, sc sandbox.Script) (sandbox.Result, error)
}

// UserScript runs the project's own test script in the suite's sandbox
// (Scripts), never on the host: as the unprivileged sandbox user, with the
// checkout (workdir) as its only writable folder, and IMAGE_NAME set to
// image and CONTAINER_NAME to a container started from the image by the
// same sandbox's podman, which the script reaches with podman exec. A
// non-zero exit fails the check, and so does a limit or the deadline,
// named in the summary; the container is always removed.
//
// The container runs the image's own entrypoint, detached. When it has
// already exited after Settle (a one-shot entrypoint), it is replaced by
// a container of the same name running `sleep` from the image, so that
// the script can still `podman exec` into it; when the image has no
// sleep either, the script runs against the exited container.
//
// script is relative to workdir (an absolute one must lie inside it); one
// without its executable bit runs with /bin/sh.
func (s *Suite) UserScript(ctx context.Context, script, workdir, image string, log io.Writer) (Result, error) {
	const check = "user-script"
	if s.Scripts == nil {
		msg := "test script not run: no sandbox to run it in (cccp never runs repository code on the host)"
		fmt.Fprintln(log, msg)
		return Result{Name: check, Summary: msg}, nil
	}
	rel := script
	if filepath.IsAbs(rel) {
		r, err := filepath.Rel(workdir, rel)
		if err != nil {
			r = ".."
		}
		rel = r
	}
	path, err := safefs.Resolve(workdir, rel)
	var fi os.FileInfo
	if err == nil {
		fi, err = os.Stat(path)
	}
	if err == nil && !fi.Mode().IsRegular() {
		err = safefs.ErrNotRegular
	}
	if err != nil {
		msg := fmt.Sprintf("test script %s: %v", script, err)
		fmt.Fprintln(log, msg)
		return Result{Name: check, Summary: msg}, nil
	}
	rel = filepath.Clean(rel)

	name := s.containerName("test")
	defer s.remove(name)
	if err := s.startForScript(ctx, image, name, log); err != nil {
		return Result{Name: check, Summary: "could not start a container: " + err.Error()}, fmt.Errorf("user script on %s: %w", image, err)
	}

	argv := []string{rel}
	if fi.Mode()&0o111 == 0 {
		argv = []string{"/bin/sh", filepath.Join(sandbox.Dest, rel)}
	}
	fmt.Fprintf(log, "$ IMAGE_NAME=%s CONTAINER_NAME=%s %s (in the sandbox, checkout at %s)\n", image, name, strings.Join(argv, " "), sandbox.Dest)
	res, err := s.Scripts.Run(ctx, sandbox.Script{
		Checkout: workdir, Argv: argv, Podman: true, Output: log,
		Env: []string{"IMAGE_NAME=" + image, "CONTAINER_NAME=" + name},
	})
	if err != nil {
		return Result{Name: check, Summary: fmt.Sprintf("test script could not run: %v", err)}, nil
	}
	switch {
	case res.Reason == "cancelled" && ctx.Err() != nil:
		return Result{Name: check, Summary: "interrupted"}, fmt.Errorf("user script on %s: %w", image, ctx.Err())
	case res.Reason != "":
		fmt.Fprintf(log, "cccp: test script stopped: %s\n", res.Reason)
		return Result{Name: check, Summary: "test script stopped: " + res.Reason, Findings: lastN(res.Tail, logTail)}, nil
	case res.ExitCode == 0:
		return Result{Name: check, Passed: true, Summary: "test script passed"}, nil
	default:
		return Result{Name: check, Summary: fmt.Sprintf("test script exited %d", res.ExitCode), Findings: lastN(res.Tail, logTail)}, nil
	}
}

func lastN(l []string, n int) []string {
	if len(l) > n {
		return l[len(l)-n:]
	}
	return l
}

func (s *Suite) startForScript(ctx context.Context, image, name string, log io.Writer) error {
	network := s.TestNetwork
	if network == "" {
		network = "none"
	}
	fmt.Fprintf(log, "starting %s as %s (network %s)\n", image, name, network)
	if _, err := s.Containers.Run(ctx, podman.RunOptions{Image: image, Name: name, Detach: true, Network: network, Log: log}); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.settle()):
	}
	st, err := s.Containers.Inspect(ctx, name)
	if err != nil {
		return err
	}
	if st.Running {
		return nil
	}
	fmt.Fprintf(log, "the image's entrypoint exited with %d; running `sleep` from the image in its place\n", st.ExitCode)
	s.containerLogs(ctx, name, log)
	if err := s.Containers.Rm(ctx, name); err != nil {
		return err
	}
	sleeper := podman.RunOptions{Image: image, Name: name, Detach: true, Network: network, Log: log,
		Entrypoint: []string{"sleep"}, Cmd: []string{"86400"}}
	if _, err := s.Containers.Run(ctx, sleeper); err == nil {
		if st, err := s.Containers.Inspect(ctx, name); err == nil && st.Running {
			return nil
		}
	}
	fmt.Fprintln(log, "no `sleep` in the image; the script gets the exited container")
	if err := s.Containers.Rm(ctx, name); err != nil {
		return err
	}
	_, err = s.Containers.Run(ctx, podman.RunOptions{Image: image, Name: name, Detach: true, Network: network, Log: log})
	return err
}
