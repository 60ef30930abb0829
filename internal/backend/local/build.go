package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/safefs"
)

// Reasons of the local backend's failures (backend.StageError.Reason).
const (
	ReasonSourceUnavailable = "SourceUnavailable"
	ReasonBadPath           = "BadPath"
	ReasonPrebuildFailed    = "PrebuildFailed"
	ReasonBuildFailed       = "BuildFailed"
	ReasonPushFailed        = "PushFailed"
	ReasonPullFailed        = "PullFailed"
	// ReasonForbiddenURL: an ADD of a URL on this host or its networks.
	ReasonForbiddenURL = "ForbiddenURL"
)

func stageErr(reason string, err error) error {
	var se *backend.StageError
	if errors.As(err, &se) {
		return err
	}
	return &backend.StageError{Reason: reason, Message: err.Error()}
}

// checkout is the run's checkout of src: cloned once, at the exact commit,
// and shared by the build and the test stage.
type checkout struct {
	root string
}

// checkout clones src into the run's work folder, or reuses the clone an
// earlier stage of the run made of the same commit.
func (b *Backend) checkout(ctx context.Context, runID string, src backend.Source, log io.Writer) (*checkout, error) {
	mu := b.runLock(runID)
	mu.Lock()
	defer mu.Unlock()
	dest := filepath.Join(b.runDir(runID), "src")
	if src.Commit != "" {
		if head, err := gitsrc.HeadCommit(ctx, dest); err == nil && head == src.Commit {
			fmt.Fprintf(log, "cccp: reusing the checkout of commit %s\n", head)
			return &checkout{root: dest}, nil
		}
	}
	if err := os.RemoveAll(dest); err != nil {
		return nil, fmt.Errorf("clean checkout: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	what := "commit " + src.Commit
	if src.Commit == "" {
		what = "branch " + src.Branch
	}
	fmt.Fprintf(log, "cccp: fetching %s (%s)\n", redact.URL(src.GitURL), what)
	if err := gitsrc.Clone(ctx, src.GitURL, dest, gitsrc.CloneOptions{Branch: src.Branch, Commit: src.Commit, Depth: 1, Misses: b.misses}); err != nil {
		return nil, stageErr(ReasonSourceUnavailable, fmt.Errorf("fetch %s: %w", redact.URL(src.GitURL), err))
	}
	head, err := gitsrc.HeadCommit(ctx, dest)
	if err != nil {
		return nil, stageErr(ReasonSourceUnavailable, err)
	}
	fmt.Fprintf(log, "cccp: checked out commit %s\n", head)
	return &checkout{root: dest}, nil
}

// in joins a path of the index entry to the checkout with its symlinks
// resolved, refusing one that leaves it (the linter reports the lexical
// cases; a symlink the repository placed is caught here). A path that does
// not exist is returned as joined.
func (c *checkout) in(parts ...string) (string, error) {
	joined := filepath.Join(parts...)
	p := filepath.Join(c.root, joined)
	rel, err := filepath.Rel(c.root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", stageErr(ReasonBadPath, fmt.Errorf("path %q leaves the repository", joined))
	}
	real, err := safefs.Resolve(c.root, rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return p, nil
	case errors.Is(err, safefs.ErrEscapes):
		return "", stageErr(ReasonBadPath, fmt.Errorf("path %q leaves the repository through a symlink", joined))
	case err != nil:
		return "", stageErr(ReasonBadPath, err)
	}
	return real, nil
}

// paths are the entry's folders and Dockerfile in the checkout.
func (c *checkout) paths(e *index.Entry) (repoDir, dockerfile, contextDir string, err error) {
	if repoDir, err = c.in(e.GitPath); err != nil {
		return
	}
	if dockerfile, err = c.in(e.GitPath, e.TargetFile); err != nil {
		return
	}
	contextDir, err = c.in(e.GitPath, e.BuildContext)
	return
}

// localImage is the name a run's image has in buildah's storage:
// localhost/cccp/<instance>/<repository>:run-<ID>. Run IDs start at 1 in
// every data folder, so the instance (from the backend's folder) keeps
// two cccp on one machine, sharing root's storage, off each other's run
// images: without it, one's build or clean-up replaced or removed the
// other's image between its build and its push.
func (b *Backend) localImage(spec backend.BuildSpec) string {
	return "localhost/cccp/" + b.instance + "/" + spec.Entry.Repository() + ":run-" + spec.RunID
}

// instanceOf names a backend's folder in its run images' names: the first
// 8 hex digits of its path's SHA-256, the same across restarts, so
// Cleanup's records and the names agree.
func instanceOf(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(sum[:4])
}

func (b *Backend) build(ctx context.Context, spec backend.BuildSpec, log io.Writer) (backend.BuildResult, error) {
	var res backend.BuildResult
	co, err := b.checkout(ctx, spec.RunID, spec.Src, log)
	if err != nil {
		return res, err
	}
	if err := b.prebuild(ctx, co, spec, log); err != nil {
		return res, err
	}
	_, dockerfile, contextDir, err := co.paths(spec.Entry)
	if err != nil {
		return res, err
	}
	if _, err := os.Stat(dockerfile); err != nil {
		return res, stageErr(ReasonBadPath, fmt.Errorf("%s/%s not found at commit %s",
			strings.Trim(spec.Entry.GitPath, "/"), spec.Entry.TargetFile, spec.Src.Commit))
	}
	pinned, bases, err := pinFrom(ctx, &spec, co.root, dockerfile, filepath.Join(b.runDir(spec.RunID), "Dockerfile.pinned"), log)
	if err != nil {
		return res, err
	}
	res.Bases = bases
	if pinned != "" {
		dockerfile = pinned
	}
	local := b.localImage(spec)
	if err := b.noteImage(local); err != nil {
		return res, fmt.Errorf("record run image: %w", err)
	}
	ids, err := b.buildIDs(ctx, log)
	if err != nil {
		return res, err
	}
	// From here until its image is removed the build uses the storage:
	// no pruning meanwhile (buildcache.go).
	release := b.cache.hold()
	_, err = b.cfg.Buildah.Build(ctx, buildah.BuildRequest{
		ContextDir: contextDir, Dockerfile: dockerfile, Image: local, Log: log, InsecureRegistries: b.cfg.InsecureRegistries,
		BuildArgs: buildArgs(spec), IDMap: ids.idMap(),
	})
	ids.release(log)
	if err != nil {
		b.removeImage(local)
		release()
		b.afterFailedBuild()
		return res, stageErr(ReasonBuildFailed, err)
	}
	defer release()
	// The run's image is needed only until it is pushed: the test stage
	// pulls it by digest into its own box.
	defer b.removeImage(local)
	if err := b.cacheUsed(ctx, local); err != nil {
		b.log.Warn("build cache: record what the build used", "image", local, "err", err)
	}
	fmt.Fprintf(log, "cccp: pushing %s\n", spec.Push)
	digest, err := b.cfg.Buildah.Push(ctx, local, spec.Push, buildah.PushOptions{
		Username: b.cfg.Username, Password: b.cfg.Password, TLSVerify: b.tlsVerify(spec.Push), Log: log,
	})
	if err != nil {
		return res, stageErr(ReasonPushFailed, fmt.Errorf("push %s: %w", spec.Push, err))
	}
	res.Digest = digest
	return res, nil
}

// buildArgs are the build arguments every build gets, the same the
// OpenShift backend passes: a Dockerfile that declares `ARG CCCP_COMMIT`
// can stamp the commit it was built from (deploy/Containerfile does).
// Arguments a Dockerfile does not declare change nothing.
func buildArgs(spec backend.BuildSpec) map[string]string {
	return map[string]string{"CCCP_RUN_ID": spec.RunID, "CCCP_COMMIT": spec.Src.Commit}
}
