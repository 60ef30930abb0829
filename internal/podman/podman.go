// Package podman runs containers with the podman CLI.
//
// Every container runs under runc with explicit nofile and nproc limits:
// podman's default runtime (crun) fails on cgroup v1 hybrid hosts, and its
// default rlimits are above what such machines let a process raise.
package podman

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cccp-project/cccp/internal/registry"
)

// ErrNotFound is a container or image that does not exist.
var ErrNotFound = errors.New("not found")

// Runner runs podman. The zero value uses podman from PATH with its
// default storage and slog.Default().
type Runner struct {
	// Root and RunRoot, when set, select a separate storage (tests, and
	// a sandbox's per-run storage).
	Root, RunRoot string
	// StorageDriver, when set, is passed as --storage-driver.
	StorageDriver string
	// Remote, when set, is the unix socket of a podman service that every
	// command goes to (podman --remote); Root, RunRoot and StorageDriver
	// are the service's business then.
	Remote string
	// Env, when non-nil, is podman's whole environment instead of cccp's.
	Env []string
	// SysProcAttr, when set, is given to every podman process (a sandbox
	// runs podman as its unprivileged user).
	SysProcAttr *syscall.SysProcAttr
	// Dir, when set, is podman's working directory (another user may not
	// be allowed into cccp's).
	Dir string
	// RegistriesConf, when set, is a registries.conf for pulls
	// (CONTAINERS_REGISTRIES_CONF): TLS is then decided per registry there,
	// and Pull passes no --tls-verify.
	RegistriesConf string
	// Binary is the podman executable; default "podman".
	Binary string
	Logger *slog.Logger
}

// RunOptions describe one `podman run`.
type RunOptions struct {
	Image string
	Name  string
	// Entrypoint replaces the image's entrypoint when non-nil; an empty,
	// non-nil slice clears it.
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=VALUE
	Network    string   // "none", "host", a network name; "" is podman's default
	Detach     bool
	Remove     bool
	User       string
	Volumes    []string // podman --volume specs, e.g. /host/dir:/in/container:ro
	// Log receives the container's output (or, detached, the container ID).
	Log io.Writer
	// Interactive keeps the container's stdin open, so that a detached
	// `sh -c 'read _'` waits for ever without needing sleep in the image.
	Interactive bool
}

// State is a container's state as podman inspect reports it.
type State struct {
	Status     string // created, running, exited, ...
	Running    bool
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
	OOMKilled  bool
	Error      string
}

// Fixed flags for every container (see the package comment).
var runFlags = []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) binary() string {
	if r.Binary != "" {
		return r.Binary
	}
	return "podman"
}

func (r *Runner) command(ctx context.Context, args ...string) *exec.Cmd {
	args = append(r.GlobalArgs(), args...)
	r.logger().Debug("podman", "args", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, r.binary(), args...)
	cmd.WaitDelay = 10 * time.Second
	if r.Env != nil {
		cmd.Env = slices.Clone(r.Env)
	}
	if r.RegistriesConf != "" {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, "CONTAINERS_REGISTRIES_CONF="+r.RegistriesConf)
	}
	if r.SysProcAttr != nil {
		attr := *r.SysProcAttr
		cmd.SysProcAttr = &attr
		// Another user's podman cannot start in cccp's working folder
		// (a 0700 folder of root's): it runs from the root folder.
		cmd.Dir = "/"
	}
	cmd.Dir = r.Dir
	return cmd
}

// GlobalArgs are the arguments that come before podman's command.
func (r *Runner) GlobalArgs() []string {
	if r.Remote != "" {
		return []string{"--remote", "--url", "unix://" + r.Remote}
	}
	global := []string{"--runtime", "runc"}
	if r.Root != "" {
		global = append(global, "--root", r.Root)
	}
	if r.RunRoot != "" {
		global = append(global, "--runroot", r.RunRoot)
	}
	if r.StorageDriver != "" {
		global = append(global, "--storage-driver", r.StorageDriver)
	}
	return global
}

// output runs podman and returns stdout; a failure carries stderr.
func (r *Runner) output(ctx context.Context, args ...string) ([]byte, error) {
	cmd := r.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "no such container") || strings.Contains(msg, "no such object") ||
			strings.Contains(msg, "image not known") || strings.Contains(msg, "failed to find image") {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, msg)
		}
		return nil, fmt.Errorf("%w: %s", err, msg)
	}
	return out, nil
}

// RunArgs returns the podman arguments (after the global ones) for opts.
func RunArgs(opts RunOptions) []string {
	args := append([]string{"run"}, runFlags...)
	if opts.Name != "" {
		args = append(args, "--name", opts.Name)
	}
	if opts.Detach {
		args = append(args, "--detach")
	}
	if opts.Interactive {
		args = append(args, "--interactive")
	}
	if opts.Remove {
		args = append(args, "--rm")
	}
	if opts.Network != "" {
		args = append(args, "--network", opts.Network)
	}
	if opts.User != "" {
		args = append(args, "--user", opts.User)
	}
	for _, e := range opts.Env {
		args = append(args, "--env", e)
	}
	for _, v := range opts.Volumes {
		args = append(args, "--volume", v)
	}
	if opts.Entrypoint != nil {
		ep := "" // clears the image's entrypoint
		if len(opts.Entrypoint) > 0 {
			dt, _ := json.Marshal(opts.Entrypoint)
			ep = string(dt)
		}
		args = append(args, "--entrypoint", ep)
	}
	args = append(args, opts.Image)
	return append(args, opts.Cmd...)
}

// Run runs a container. Attached, it returns the container's exit code;
// detached, 0 once the container started. err is set only when podman
// itself failed (exit 125) or ctx ended; 126 and 127 (the command could
// not be run, or was not found) are exit codes.
func (r *Runner) Run(ctx context.Context, opts RunOptions) (int, error) {
	if opts.Image == "" {
		return 0, errors.New("run: image is required")
	}
	cmd := r.command(ctx, RunArgs(opts)...)
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	var stderr tailBuffer
	cmd.Stdout = log
	cmd.Stderr = io.MultiWriter(log, &stderr)
	err := cmd.Run()
	if err == nil {
		return 0, nil
	}
	if ctx.Err() != nil {
		return 0, fmt.Errorf("run %s: %w", opts.Image, ctx.Err())
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() != 125 {
		return exitErr.ExitCode(), nil
	}
	return 0, fmt.Errorf("run %s: %w: %s", opts.Image, err, stderr.String())
}

// Exec runs cmd in a running container and returns its exit code.
func (r *Runner) Exec(ctx context.Context, name string, cmd []string, log io.Writer) (int, error) {
	c := r.command(ctx, append([]string{"exec", name}, cmd...)...)
	if log == nil {
		log = io.Discard
	}
	var stderr tailBuffer
	c.Stdout = log
	c.Stderr = io.MultiWriter(log, &stderr)
	err := c.Run()
	if err == nil {
		return 0, nil
	}
	if ctx.Err() != nil {
		return 0, fmt.Errorf("exec in %s: %w", name, ctx.Err())
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() != 125 {
		return exitErr.ExitCode(), nil
	}
	return 0, fmt.Errorf("exec in %s: %w: %s", name, err, stderr.String())
}

// Stop stops a container, killing it after timeout.
func (r *Runner) Stop(ctx context.Context, name string, timeout time.Duration) error {
	if _, err := r.output(ctx, "stop", "--time", fmt.Sprint(int(timeout.Seconds())), name); err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	return nil
}

// Rm removes a container, stopping it first; a container that does not
// exist is not an error.
func (r *Runner) Rm(ctx context.Context, name string) error {
	if _, err := r.output(ctx, "rm", "--force", "--ignore", "--time", "0", name); err != nil {
		return fmt.Errorf("rm %s: %w", name, err)
	}
	return nil
}

// Inspect returns a container's state; ErrNotFound when there is none.
func (r *Runner) Inspect(ctx context.Context, name string) (State, error) {
	out, err := r.output(ctx, "inspect", "--type", "container", "--format", "json", name)
	if err != nil {
		return State{}, fmt.Errorf("inspect %s: %w", name, err)
	}
	var got []struct{ State State }
	if err := json.Unmarshal(out, &got); err != nil {
		return State{}, fmt.Errorf("inspect %s: %w", name, err)
	}
	if len(got) == 0 {
		return State{}, fmt.Errorf("inspect %s: %w", name, ErrNotFound)
	}
	return got[0].State, nil
}

// Logs returns the last tail lines of a container's output (all when
// tail <= 0).
func (r *Runner) Logs(ctx context.Context, name string, tail int) (string, error) {
	args := []string{"logs"}
	if tail > 0 {
		args = append(args, "--tail", fmt.Sprint(tail))
	}
	cmd := r.command(ctx, append(args, name)...)
	out, err := cmd.CombinedOutput() // the container's stdout and stderr
	if err != nil {
		if strings.Contains(string(out), "no such container") {
			return "", fmt.Errorf("logs %s: %w", name, ErrNotFound)
		}
		return "", fmt.Errorf("logs %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Pull pulls an image. With a RegistriesConf, TLS is decided per registry
// there. Without one, a registry on loopback (127.0.0.1, ::1, localhost)
// is plain HTTP, so TLS verification is off for that pull whatever
// tlsVerify says.
func (r *Runner) Pull(ctx context.Context, ref string, tlsVerify bool) error {
	args := []string{"pull", "--quiet"}
	if r.RegistriesConf == "" {
		if isLoopback(ref) {
			tlsVerify = false
		}
		args = append(args, fmt.Sprintf("--tls-verify=%t", tlsVerify))
	}
	if _, err := r.output(ctx, append(args, ref)...); err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	return nil
}

// ImageLabels returns an image's labels.
func (r *Runner) ImageLabels(ctx context.Context, image string) (map[string]string, error) {
	out, err := r.output(ctx, "image", "inspect", "--format", "{{json .Labels}}", image)
	if err != nil {
		return nil, fmt.Errorf("labels of %s: %w", image, err)
	}
	labels := map[string]string{}
	if s := strings.TrimSpace(string(out)); s != "" && s != "null" {
		if err := json.Unmarshal([]byte(s), &labels); err != nil {
			return nil, fmt.Errorf("labels of %s: %w", image, err)
		}
	}
	return labels, nil
}

// RemoveImage removes a local image; one that is not there is not an error.
func (r *Runner) RemoveImage(ctx context.Context, image string) error {
	if _, err := r.output(ctx, "rmi", "--force", image); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("remove image %s: %w", image, err)
	}
	return nil
}

func isLoopback(ref string) bool {
	host, _, _ := strings.Cut(strings.TrimPrefix(ref, "docker://"), "/")
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return false // a Docker Hub path such as library/busybox
	}
	return registry.IsLoopback(host)
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }
