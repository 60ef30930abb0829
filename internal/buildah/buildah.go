// Package buildah builds and pushes images with the buildah CLI.
//
// Builds run with OCI isolation under runc (`buildah bud --isolation oci
// --runtime runc --layers`); when that isolation cannot start a container
// on the machine, the build is retried once with chroot isolation. A
// failed build is a *BuildError that names the Dockerfile line of the
// failing instruction.
package buildah

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Isolation modes accepted by Builder.Isolation.
const (
	IsolationOCI    = "oci"
	IsolationChroot = "chroot"
)

// Builder runs buildah. The zero value works: OCI isolation with runc,
// buildah's default storage, slog.Default() for logs.
type Builder struct {
	// Isolation is "oci" (default, run with Runtime) or "chroot".
	Isolation string
	// Runtime is the OCI runtime for "oci" isolation; default "runc"
	// (buildah's own default, crun, fails on cgroup v1 hybrid hosts).
	Runtime string
	// Root and RunRoot, when set, select a separate storage (tests).
	Root, RunRoot string
	// Binary is the buildah executable; default "buildah" from PATH.
	Binary string
	Logger *slog.Logger
}

// BuildRequest describes one build.
type BuildRequest struct {
	ContextDir string
	// Dockerfile is relative to ContextDir or absolute; default "Dockerfile".
	Dockerfile string
	// Image is the local name given to the result, e.g. cccp-build/app/job:run-12.
	Image     string
	BuildArgs map[string]string
	// NoLayers turns off the layer cache (--layers=false). The zero value
	// builds with --layers, so a rebuild of an unchanged context reuses layers.
	NoLayers bool
	// InsecurePull lets the build pull base images over plain HTTP or
	// without verifying TLS (--tls-verify=false), for a loopback registry.
	InsecurePull bool
	// Log receives buildah's stdout and stderr as they come; may be nil.
	Log io.Writer
	// Env is added to buildah's environment (e.g. REGISTRY_AUTH_FILE).
	Env []string
}

// BuildResult is a successful build.
type BuildResult struct {
	ImageID  string
	Duration time.Duration
	// Isolation is the isolation the build ran with in the end.
	Isolation string
}

// BuildError is a build that buildah ran and that failed.
type BuildError struct {
	Dockerfile  string // as given in the request, default "Dockerfile"
	Stage       int    // 1-based stage of the failing step, 0 when unknown
	Step        int    // 1-based step within the stage (FROM is step 1), 0 when unknown
	Instruction string // e.g. "RUN false"
	Line        int    // 1-based Dockerfile line of the instruction, 0 when unknown
	Cause       string // buildah's reason, e.g. "exit status 1"
	Output      string // the last lines of buildah's output
}

func (e *BuildError) Error() string {
	var b strings.Builder
	b.WriteString(e.Dockerfile)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Instruction != "" {
		b.WriteString(": ")
		b.WriteString(e.Instruction)
	}
	b.WriteString(": ")
	if e.Cause != "" {
		b.WriteString(e.Cause)
	} else {
		b.WriteString("build failed")
	}
	return b.String()
}

func (b *Builder) logger() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (b *Builder) binary() string {
	if b.Binary != "" {
		return b.Binary
	}
	return "buildah"
}

func (b *Builder) globalArgs() []string {
	var args []string
	if b.Root != "" {
		args = append(args, "--root", b.Root)
	}
	if b.RunRoot != "" {
		args = append(args, "--runroot", b.RunRoot)
	}
	return args
}

// Build builds req.ContextDir into req.Image.
func (b *Builder) Build(ctx context.Context, req BuildRequest) (*BuildResult, error) {
	if req.ContextDir == "" || req.Image == "" {
		return nil, errors.New("build: context dir and image name are required")
	}
	dockerfile := req.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	dfPath := dockerfile
	if !filepath.IsAbs(dfPath) {
		dfPath = filepath.Join(req.ContextDir, dfPath)
	}
	content, err := os.ReadFile(dfPath)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", req.Image, err)
	}
	iso := b.Isolation
	if iso == "" {
		iso = IsolationOCI
	}
	start := time.Now()
	id, out, err := b.bud(ctx, req, dfPath, iso)
	if err != nil && iso == IsolationOCI && ctx.Err() == nil {
		if reason, ok := isolationUnavailable(out); ok {
			b.logger().Warn("OCI isolation unavailable, retrying build with chroot isolation",
				"image", req.Image, "reason", reason)
			if req.Log != nil {
				fmt.Fprintf(req.Log, "cccp: OCI isolation unavailable (%s); retrying with chroot isolation\n", reason)
			}
			iso = IsolationChroot
			id, out, err = b.bud(ctx, req, dfPath, iso)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("build %s: %w", req.Image, ctx.Err())
		}
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return nil, fmt.Errorf("build %s: %w", req.Image, err)
		}
		return nil, newBuildError(dockerfile, content, out)
	}
	return &BuildResult{ImageID: id, Duration: time.Since(start), Isolation: iso}, nil
}

// bud runs one `buildah bud` and returns the image ID and what it saw of
// the output.
func (b *Builder) bud(ctx context.Context, req BuildRequest, dfPath, iso string) (string, *watcher, error) {
	iid, err := os.CreateTemp("", "cccp-iid-*")
	if err != nil {
		return "", nil, err
	}
	iid.Close()
	defer os.Remove(iid.Name())

	args := append(b.globalArgs(), "bud", "--isolation", iso)
	if iso == IsolationOCI {
		rt := b.Runtime
		if rt == "" {
			rt = "runc"
		}
		args = append(args, "--runtime", rt)
	}
	args = append(args, fmt.Sprintf("--layers=%t", !req.NoLayers), "--iidfile", iid.Name(), "-f", dfPath, "-t", req.Image)
	if req.InsecurePull {
		args = append(args, "--tls-verify=false")
	}
	keys := make([]string, 0, len(req.BuildArgs))
	for k := range req.BuildArgs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, "--build-arg", k+"="+req.BuildArgs[k])
	}
	args = append(args, req.ContextDir)

	w := newWatcher(req.Log)
	cmd := exec.CommandContext(ctx, b.binary(), args...)
	cmd.Env = append(os.Environ(), req.Env...)
	cmd.Stdout, cmd.Stderr = w, w
	// A cancelled build gets SIGTERM first: buildah then kills the RUN
	// step's container, which a SIGKILL of buildah leaves running.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	b.logger().Info("buildah", "args", strings.Join(args, " "))
	fmt.Fprintf(w.log, "$ %s %s\n", b.binary(), strings.Join(args, " "))
	err = cmd.Run()
	w.flush()
	if err != nil {
		return "", w, err
	}
	id, err := os.ReadFile(iid.Name())
	if err != nil {
		return "", w, fmt.Errorf("read image id: %w", err)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(id)), "sha256:"), w, nil
}

// isolationUnavailable tells a step that could not get a container (the
// runtime is missing or cannot create one here) from a step whose own
// command could not start or failed: runc reports the latter as "unable
// to start container process", and a retry would not help.
func isolationUnavailable(w *watcher) (string, bool) {
	if w == nil {
		return "", false
	}
	for _, l := range w.lines() {
		if strings.Contains(l, "unable to start container process") {
			return "", false
		}
	}
	for _, l := range w.lines() {
		for _, marker := range []string{"cgroups in hybrid mode", "creating container for", "OCI runtime"} {
			if strings.Contains(l, marker) {
				return strings.TrimSpace(l), true
			}
		}
	}
	return "", false
}

// PushOptions are a push's options.
type PushOptions struct {
	Username, Password string
	// TLSVerify requires HTTPS with a valid certificate; false allows a
	// plain-HTTP or self-signed registry.
	TLSVerify bool
	Log       io.Writer
}

// Push pushes a local image to dest ("host[:port]/repo:tag", with or
// without a "docker://" prefix) and returns the digest of the manifest in
// the registry. Credentials go to buildah in a private auth file, never on
// its command line, and never appear in logs or errors.
func (b *Builder) Push(ctx context.Context, image, dest string, opts PushOptions) (string, error) {
	dest = strings.TrimPrefix(dest, "docker://")
	secrets := nonEmpty(opts.Password, opts.Username+":"+opts.Password,
		base64.StdEncoding.EncodeToString([]byte(opts.Username+":"+opts.Password)))
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("push %s to %s: %s", image, dest, redact(err.Error(), secrets))
	}
	tmp, err := os.MkdirTemp("", "cccp-push-*")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	digestFile := filepath.Join(tmp, "digest")

	args := append(b.globalArgs(), "push", fmt.Sprintf("--tls-verify=%t", opts.TLSVerify), "--digestfile", digestFile)
	if opts.Username != "" || opts.Password != "" {
		authFile := filepath.Join(tmp, "auth.json")
		if err := writeAuthFile(authFile, dest, opts.Username, opts.Password); err != nil {
			return fail(err)
		}
		args = append(args, "--authfile", authFile)
	}
	args = append(args, image, "docker://"+dest)

	w := newWatcher(opts.Log)
	w.secrets = secrets
	cmd := exec.CommandContext(ctx, b.binary(), args...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 10 * time.Second
	b.logger().Info("buildah", "args", strings.Join(args, " "))
	fmt.Fprintf(w.log, "$ %s %s\n", b.binary(), strings.Join(args, " "))
	err = cmd.Run()
	w.flush()
	if err != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		return fail(fmt.Errorf("%w: %s", err, w.tail(5)))
	}
	dgst, err := os.ReadFile(digestFile)
	if err != nil {
		return fail(fmt.Errorf("read digest: %w", err))
	}
	return strings.TrimSpace(string(dgst)), nil
}

// Remove deletes a local image; an image that is not there is not an error.
func (b *Builder) Remove(ctx context.Context, image string) error {
	args := append(b.globalArgs(), "rmi", image)
	out, err := exec.CommandContext(ctx, b.binary(), args...).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("image not known")) || bytes.Contains(out, []byte("no such image")) {
			return nil
		}
		return fmt.Errorf("remove image %s: %w: %s", image, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func writeAuthFile(path, dest, user, pass string) error {
	host, _, _ := strings.Cut(dest, "/")
	auth := map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))},
	}}
	dt, err := json.Marshal(auth)
	if err != nil {
		return err
	}
	return os.WriteFile(path, dt, 0o600)
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" && v != ":" {
			out = append(out, v)
		}
	}
	// Longest first, so "user:pass" is replaced before "pass".
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}
