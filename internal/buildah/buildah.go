// Package buildah builds and pushes images with the buildah CLI.
//
// Builds run with OCI isolation under runc (`buildah bud --isolation oci
// --runtime runc --layers`). Whether that isolation is available is probed
// before a build, never guessed from a build's output (which a RUN step
// controls): without it the build is refused with ErrIsolationUnavailable.
// Chroot isolation, which shares the host's network and PID namespaces
// with every RUN step, is only ever used when the operator sets it, and
// then logged as a warning on every build. A failed build is a
// *BuildError that names the Dockerfile line of the failing instruction.
//
// Base images are pulled with TLS verified, except from the registries a
// request names insecure (cccp's own on loopback): those go into a
// registries.conf of the build's own (CONTAINERS_REGISTRIES_CONF), never a
// global --tls-verify=false.
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
	"sync"
	"syscall"
	"time"

	"github.com/cccp-project/cccp/internal/regconf"
	"github.com/cccp-project/cccp/internal/safefs"
	"github.com/cccp-project/cccp/internal/tailbuf"
)

// Isolation modes accepted by Builder.Isolation.
const (
	IsolationOCI    = "oci"
	IsolationChroot = "chroot"
)

// ErrIsolationUnavailable is a build refused because OCI isolation cannot
// run here (no runtime, no buildah).
var ErrIsolationUnavailable = errors.New("OCI isolation unavailable")

// Builder runs buildah. The zero value works: OCI isolation with runc,
// buildah's default storage, slog.Default() for logs.
type Builder struct {
	// Isolation is "oci" (default, run with Runtime) or "chroot" (an
	// operator's explicit choice; weaker, warned about on every build).
	Isolation string
	// Runtime is the OCI runtime for "oci" isolation; default "runc"
	// (buildah's own default, crun, fails on cgroup v1 hybrid hosts).
	Runtime string
	// Root and RunRoot, when set, select a separate storage (tests).
	Root, RunRoot string
	// Binary is the buildah executable; default "buildah" from PATH.
	Binary string
	// OutputLimit is how many bytes of a build's output reach its log;
	// default tailbuf.DefaultLimit. The rest is counted, not kept.
	OutputLimit int64
	Logger      *slog.Logger

	runRootMu sync.Mutex
	runRootIs string // what buildah info said, asked once
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
	// InsecureRegistries are the registry hosts ("127.0.0.1:5000") base
	// images may come from over plain HTTP or without a verified
	// certificate; every other registry is verified.
	InsecureRegistries []string
	// Log receives buildah's stdout and stderr as they come; may be nil.
	Log io.Writer
	// Env is added to buildah's environment (e.g. REGISTRY_AUTH_FILE).
	Env []string
	// IDMap, when set, runs the RUN steps in a user namespace with these
	// host ids (see IDMap); nil runs them as the host's root.
	IDMap *IDMap
}

// BuildResult is a successful build.
type BuildResult struct {
	ImageID  string
	Duration time.Duration
	// Isolation is the isolation the build ran with in the end.
	Isolation string
	// Attempts is how many times buildah ran: more than 1 when a run met
	// the image storage race and was run again.
	Attempts int
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
	content, err := readDockerfile(req.ContextDir, dfPath)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", req.Image, err)
	}
	iso := b.Isolation
	if iso == "" {
		iso = IsolationOCI
	}
	switch iso {
	case IsolationOCI:
		if err := b.Probe(); err != nil {
			return nil, fmt.Errorf("build %s: %w", req.Image, err)
		}
	case IsolationChroot:
		b.logger().Warn("building with chroot isolation (set by the operator): RUN steps share the host's network and PID namespaces",
			"image", req.Image)
		if req.Log != nil {
			fmt.Fprintln(req.Log, "cccp: warning: chroot isolation (operator setting): RUN steps share the host's network and PID namespaces")
		}
	default:
		return nil, fmt.Errorf("build %s: unknown isolation %q (want %q or %q)", req.Image, iso, IsolationOCI, IsolationChroot)
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		id, out, err := b.bud(ctx, req, dfPath, iso)
		if err == nil {
			return &BuildResult{ImageID: id, Duration: time.Since(start), Isolation: iso, Attempts: attempt}, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("build %s: %w", req.Image, ctx.Err())
		}
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return nil, fmt.Errorf("build %s: %w", req.Image, err)
		}
		cause, raced := storageRace(out.lines())
		if !raced || attempt >= storageRaceAttempts {
			return nil, newBuildError(dockerfile, content, out)
		}
		b.logger().Warn("build met a concurrent change of the image storage; building again",
			"image", req.Image, "attempt", attempt+1, "of", storageRaceAttempts, "cause", cause)
		if req.Log != nil {
			fmt.Fprintf(req.Log, "cccp: the build met another change of the image storage (%s), a known buildah race (containers/buildah#5674); building again, attempt %d of %d\n",
				cause, attempt+1, storageRaceAttempts)
		}
	}
}

// storageRaceAttempts is how many times a build is run when each attempt
// ends in the image storage race (see storageRace).
const storageRaceAttempts = 3

// storageRace tells whether a failed build ended on buildah's race with
// another writer of the same image storage: a layer that another
// process's removal or commit deleted between buildah's listing and its
// use of it, while buildah looked for a cached step or committed one
// ("checking if cached image exists from a previous build: getting top
// layer info: layer not known", "committing the finished image: creating
// image ...: layer not known"). buildah releases before 1.43 fail the build
// (containers/buildah#5674); running it again finds the storage settled.
//
// Only buildah's own last line counts, and only the two steps the race
// hits (its cache lookup and its commit): it is printed after everything
// a RUN step wrote, a RUN step that fails ends in "exit status N", and a
// registry's error while pulling a base is "creating build container: ...",
// so neither a repository nor a registry it names can make a build run
// again by printing the message. It
// returns that line's reason.
func storageRace(lines []string) (string, bool) {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		cause, ok := strings.CutPrefix(l, "Error: ")
		return cause, ok && strings.HasSuffix(cause, ": layer not known") &&
			(strings.HasPrefix(cause, "checking if cached image exists from a previous build: ") ||
				strings.HasPrefix(cause, "committing container for step "))
	}
	return "", false
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
	var env []string
	if req.IDMap != nil {
		if err := b.noIDMappedLowers(ctx); err != nil {
			return "", nil, err
		}
		args = append(args, req.IDMap.args()...)
		env = append(env, disableIDMapEnv)
	}
	args = append(args, fmt.Sprintf("--layers=%t", !req.NoLayers), "--iidfile", iid.Name(), "-f", dfPath, "-t", req.Image)
	regConf := filepath.Join(filepath.Dir(iid.Name()), filepath.Base(iid.Name())+"-registries.conf")
	if err := regconf.Write(regConf, regconf.Base(os.Getenv), req.InsecureRegistries); err != nil {
		return "", nil, err
	}
	defer os.Remove(regConf)
	keys := make([]string, 0, len(req.BuildArgs))
	for k := range req.BuildArgs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, "--build-arg", k+"="+req.BuildArgs[k])
	}
	args = append(args, req.ContextDir)

	w := newWatcher(&tailbuf.Writer{Out: req.Log, Limit: b.OutputLimit})
	cmd := exec.CommandContext(ctx, b.binary(), args...)
	cmd.Env = append(append(append(os.Environ(), req.Env...), env...), "CONTAINERS_REGISTRIES_CONF="+regConf)
	cmd.Stdout, cmd.Stderr = w, w
	// A cancelled build gets SIGTERM first: buildah then kills the RUN
	// step's container, which a SIGKILL of buildah leaves running.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	// The same when cccp dies: buildah is not left building. What it
	// leaves anyway (after SIGKILL) runs as the build's id range, which
	// idpool kills before handing the range out again.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
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

// Probe tells whether OCI isolation can run builds here: buildah and the
// OCI runtime are there. It looks at the machine, never at a build.
func (b *Builder) Probe() error {
	if _, err := exec.LookPath(b.binary()); err != nil {
		return fmt.Errorf("%w: buildah: %v", ErrIsolationUnavailable, err)
	}
	rt := b.Runtime
	if rt == "" {
		rt = "runc"
	}
	if _, err := exec.LookPath(rt); err != nil {
		return fmt.Errorf("%w: runtime %s: %v (chroot isolation is an explicit operator setting, never a fallback)", ErrIsolationUnavailable, rt, err)
	}
	return nil
}

// readDockerfile reads the Dockerfile as a regular file under
// maxDockerfile bytes, beneath the build context when it is there (no
// symlink out of it), else beneath its own folder (a Dockerfile cccp
// rewrote, or one beside the context).
func readDockerfile(contextDir, path string) ([]byte, error) {
	root := contextDir
	if r, err := filepath.Rel(contextDir, path); err != nil || r == ".." || strings.HasPrefix(r, "../") {
		root = filepath.Dir(path)
	}
	return safefs.ReadFile(root, path, maxDockerfile)
}

// maxDockerfile bounds a Dockerfile that cccp reads.
const maxDockerfile = 1 << 20

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
//
// When another build is using the image as its base at that moment (two
// builds whose first steps are the same share their cached layers), buildah
// takes the name off and keeps the image for that build: that is done as
// far as the name's owner is concerned. What stays is an unnamed image like
// the cached steps --layers keeps.
func (b *Builder) Remove(ctx context.Context, image string) error {
	out, err := b.rmi(ctx, image)
	if err != nil {
		if untaggedInUse(out, image) {
			b.logger().Info("image untagged; a build in progress keeps it as its base", "image", image)
			return nil
		}
		return fmt.Errorf("remove image %s: %w: %s", image, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// rmi runs buildah rmi on refs and returns its output; an image that is
// not there is not an error.
func (b *Builder) rmi(ctx context.Context, refs ...string) ([]byte, error) {
	args := append(append(b.globalArgs(), "rmi"), refs...)
	out, err := exec.CommandContext(ctx, b.binary(), args...).CombinedOutput()
	if err != nil && (bytes.Contains(out, []byte("image not known")) || bytes.Contains(out, []byte("no such image"))) {
		return out, nil
	}
	return out, err
}

// untaggedInUse tells whether buildah rmi's output says that it took
// image's name off and kept the image for a container using it (and
// nothing else went wrong).
func untaggedInUse(out []byte, image string) bool {
	untagged := false
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "untagged: "+image:
			untagged = true
		case strings.HasPrefix(l, "* ") && !strings.HasSuffix(l, "image is in use by a container: consider listing external containers and force-removing image"):
			return false
		}
	}
	return untagged
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

// Images lists the local images whose name starts with prefix, as
// "name:tag" ("localhost/cccp/app/job:run-12").
func (b *Builder) Images(ctx context.Context, prefix string) ([]string, error) {
	args := append(b.globalArgs(), "images", "--format", "{{.Name}}:{{.Tag}}")
	out, err := exec.CommandContext(ctx, b.binary(), args...).Output()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
			names = append(names, l)
		}
	}
	return names, nil
}
