// Package backend is the stage backend seam, in the manner of
// go-containerregistry's pkg/v1: value types and small interfaces here,
// one implementation per sub-package (local, openshift, jenkins), and a
// conformance suite in backendtest that every implementation passes.
//
// A backend does the heavy work of one stage somewhere else (buildah on
// this machine, an OpenShift Build, a Jenkins job) and is known to the pipeline only through these interfaces, in
// cccp's own types. The pipeline keeps the state machine, the queue and
// every decision (which commit, which parent digests, which tag to push,
// which checks block); a backend only carries them out.
//
// Lifecycle of one stage:
//
//	h, err := b.StartBuild(ctx, spec) // returns at once with a storable handle
//	store h with the stage             // before waiting, so a restart can reattach
//	go b.Log(ctx, h, offset, w)        // follow the backend's log into the stage log
//	res, err := b.WaitBuild(ctx, h)    // until done; a failure is a *StageError
//	b.Cancel(ctx, h)                   // on supersede, /cancel, the stage deadline
//
// After a restart the pipeline calls Wait and Log again with the stored
// handle, Log from offset 0 into a fresh stage log (so the stage log holds
// the backend's whole log once). A backend that cannot reattach (the local
// backend, whose processes died with cccp) returns ErrLost, and the
// pipeline runs the stage again from its start.
//
// Parent pins: only a backend reads the Dockerfile, but which digest a FROM
// is pinned to is the pipeline's decision. BuildSpec.Parents carries the
// pins of the entry's depends-on; for any other FROM image a backend asks
// BuildSpec.Resolve (BuildSpec.Pin does both).
package backend

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/types"
)

// Handle identifies one stage's work at its backend: a plain string that is
// stored with the stage, together with the backend's name, so that a
// restarted cccp asks the same backend about it. Each backend chooses its
// form: `17/build` (local), `namespace/build-name` (OpenShift),
// `job/<name>/<number>` (Jenkins).
type Handle string

// Named is implemented by every backend: its name as configured
// (`local`, `openshift`, `jenkins`), stored with each stage's handle.
type Named interface {
	Name() string
}

// ErrLost is returned by Wait and Log for a handle the backend no longer
// knows (its work died with a previous cccp process, or was deleted).
var ErrLost = errors.New("stage work lost")

// Source names the code a stage works on: a clone URL (never with
// credentials) and the exact commit, which the pipeline resolved before the
// stage started. Branch is informational (logs, labels).
type Source struct {
	GitURL string
	Commit string
	Branch string
}

// ParentPin is one image of this index that the entry is built FROM, pinned
// by the pipeline to the digest it was delivered with.
type ParentPin struct {
	Key        string // the parent entry's key, app-id/job-id:desired-tag
	Repository string // the parent's repository path in the registry, app-id/job-id
	Tag        string // the parent's tag (its desired-tag)
	DigestRef  string // the pinned reference, host/app/job@sha256:...
}

// BuildSpec is what to build: an entry's image from an exact commit, pushed
// to Push.
type BuildSpec struct {
	RunID string
	Kind  types.RunKind
	Entry *index.Entry // git-path, target-file, build-context, prebuild-*
	Src   Source
	// Push is the reference the image goes to (a tag in the delivery
	// registry: :test, :<tag>-test or :run-N).
	Push string
	// Parents pins the entry's FROM lines that name images of this index.
	// A backend rewrites or overrides exactly those FROM lines; it reports
	// every base it used in BuildResult.Bases.
	Parents []ParentPin
	// OwnRegistries are the registry hosts under which a FROM names an image
	// of this index (no host at all counts too).
	OwnRegistries []string
	// Resolve, when set, is asked about each FROM image that may name an
	// image of this index (see OwnImage) and not covered by Parents: only
	// the backend sees the Dockerfile, the pipeline decides the pin. It
	// returns the pin and true, or false to build FROM the image as
	// written. An error fails the build.
	Resolve func(ctx context.Context, image string) (ParentPin, bool, error)
}

// OwnImage tells whether image, as written after FROM, may name an image of
// this index: no registry host, or one of ownRegistries. It returns the
// repository path and tag (`latest` when none is written). A reference with
// a build argument or a digest is never one.
func OwnImage(image string, ownRegistries []string) (repo, tag string, ok bool) {
	if strings.Contains(image, "$") || strings.Contains(image, "@") {
		return "", "", false // build args or already pinned
	}
	host, path := "", image
	if i := strings.IndexByte(image, '/'); i > 0 {
		first := image[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			host, path = first, image[i+1:]
		}
	}
	if host != "" && !slices.ContainsFunc(ownRegistries, func(h string) bool { return strings.EqualFold(h, host) }) {
		return "", "", false
	}
	tag = "latest"
	if i := strings.LastIndexByte(path, ':'); i > 0 {
		path, tag = path[:i], path[i+1:]
	}
	return path, tag, path != ""
}

// Pin is the pin of one FROM image: the matching entry of Parents, else
// what Resolve says.
func (s *BuildSpec) Pin(ctx context.Context, image string) (ParentPin, bool, error) {
	if repo, tag, ok := OwnImage(image, s.OwnRegistries); ok {
		for _, p := range s.Parents {
			if p.Repository == repo && p.Tag == tag {
				return p, true, nil
			}
		}
	}
	if s.Resolve == nil {
		return ParentPin{}, false, nil
	}
	return s.Resolve(ctx, image)
}

// Base is one image a build started FROM, as written and as resolved.
type Base struct {
	Image  string // as written after FROM
	Digest string // the digest it resolved to, when known
	Pinned bool   // the pipeline pinned it (a parent in this index)
}

// BuildResult is a finished build.
type BuildResult struct {
	Digest string // manifest digest pushed to BuildSpec.Push; required on success
	Bases  []Base
}

// Builder runs the build stage.
type Builder interface {
	StartBuild(ctx context.Context, spec BuildSpec) (Handle, error)
	WaitBuild(ctx context.Context, h Handle) (BuildResult, error)
	Follower
}

// TestSpec is what to test: an image by digest, with the source it was built
// from (for the Dockerfile lint and the user's test script).
type TestSpec struct {
	RunID string
	Kind  types.RunKind
	Entry *index.Entry
	Src   Source
	Image string // immutable reference, host/app/job@sha256:...
	// Checks, when set, are the only checks to run (a rescan runs only the
	// scans); empty runs every check. A backend that cannot choose may run
	// more: the pipeline keeps only these.
	Checks []types.CheckName
}

// CheckResult is one check's outcome, as a backend reports it. Blocking is
// decided by the pipeline.
type CheckResult struct {
	Name     types.CheckName
	State    CheckState
	Summary  string
	Findings []string
	// Explain are the lines of the check's own output that explain a
	// failure (what the run page highlights and the PR comment quotes).
	Explain []string
}

// CheckState is a check's outcome.
type CheckState string

// Check outcomes.
const (
	CheckPassed  CheckState = "passed"
	CheckFailed  CheckState = "failed"
	CheckSkipped CheckState = "skipped"
)

// TestResult is a finished test stage.
type TestResult struct {
	Checks []CheckResult
}

// Tester runs the test stage.
type Tester interface {
	StartTest(ctx context.Context, spec TestSpec) (Handle, error)
	WaitTest(ctx context.Context, h Handle) (TestResult, error)
	Follower
}

// Follower is what every backend does with a handle besides waiting.
type Follower interface {
	// Log writes the stage's log from byte offset to w, following it until
	// the work ends or ctx is done, and returns the offset reached.
	Log(ctx context.Context, h Handle, offset int64, w io.Writer) (int64, error)
	// Cancel stops the work. Cancelling finished or unknown work is not an
	// error.
	Cancel(ctx context.Context, h Handle) error
}

// StageError is a failure a backend explains: Reason is a short machine
// word (`BuildFailed`, `DeadlineExceeded`, `OutOfMemory`, `Aborted`,
// `PullFailed`...), Message the sentence shown on the run page and in the
// pull-request comment.
type StageError struct {
	Reason  string
	Message string
}

func (e *StageError) Error() string {
	if e.Reason == "" {
		return e.Message
	}
	return e.Reason + ": " + e.Message
}
