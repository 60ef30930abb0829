package store

import (
	"errors"
	"log/slog"
	"time"

	"github.com/cccp-project/cccp/internal/types"
)

// ErrNotFound is returned when a run, meta key or report does not exist.
var ErrNotFound = errors.New("not found")

// State is the state of a run, a stage or a check.
type State string

// The states of runs, stages and checks.
const (
	Queued    State = "queued"
	Running   State = "running"
	Passed    State = "passed"
	Failed    State = "failed"
	Cancelled State = "cancelled"
	Skipped   State = "skipped"
)

// Done reports whether s is final (passed, failed, cancelled or skipped).
func (s State) Done() bool {
	switch s {
	case Passed, Failed, Cancelled, Skipped:
		return true
	}
	return false
}

// Cause says why a run was started.
type Cause struct {
	Kind       types.CauseKind
	Commit     string
	Ref        string
	PR         int
	Parent     string // app-id/job-id of a rebuilt parent
	Actor      string
	Detail     string
	Forge      string
	Repo       string // forge full name, e.g. org/app
	DeliveryID string
	// Cascade is the ID of the cascade (see Cascade) a parent-triggered
	// run belongs to.
	Cascade string `json:",omitempty"`
}

// Check is the result of one predefined or user test inside a stage.
type Check struct {
	Name     types.CheckName
	State    State
	Blocking bool
	Summary  string
	Findings []string
	// Explain are the lines of the check's own output that explain its
	// failure (what the run page highlights and the PR comment quotes).
	Explain []string `json:",omitempty"`
}

// Stage is one step of a run.
type Stage struct {
	Name              types.StageName
	State             State
	Started, Finished time.Time
	Error             string
	// Reason is the backend's short word for a failure (BuildFailed,
	// DeadlineExceeded, ...); Error is then its message.
	Reason string `json:",omitempty"`
	Checks []Check
	Digest string
	// Backend and Handle name the stage's work at its backend, stored
	// before the work begins, so a restarted cccp can ask about it.
	Backend string `json:",omitempty"`
	Handle  string `json:",omitempty"`
	// Bases are the images the build started FROM, as the backend used
	// them (build stage only).
	Bases []Base `json:",omitempty"`
	// Waiting says why a stage that is due has not started: every slot of
	// its backend is taken ("waiting for a build slot (2 of 2 in use)").
	Waiting string `json:",omitempty"`
}

// Base is one image a build started FROM.
type Base struct {
	Image  string // as written after FROM
	Digest string `json:",omitempty"` // what it resolved to, when known
	Pinned bool   `json:",omitempty"` // pinned to a parent's delivered digest
}

// Image is one place a run's image went (:test, :rc, final tags), with its digest.
type Image struct {
	Ref    string
	Digest string
}

// Run is one pipeline run of one project.
type Run struct {
	ID      string // assigned by CreateRun: decimal sequence ("1","2",...), stable for URLs
	Project string // app-id/job-id
	Kind    types.RunKind
	Cause   Cause

	GitURL, Branch, Commit string // GitURL without userinfo

	State                      State
	Created, Started, Finished time.Time
	Stages                     []Stage
	Images                     []Image
	Error                      string
	// Backend holds opaque per-run data of the pipeline (a trial run's
	// proposed entry).
	Backend map[string]string
	// Resumes counts how often the run was picked up again after cccp
	// stopped in the middle of it.
	Resumes int `json:",omitempty"`
	// ImageSize is the sum of the layer sizes of the delivered image's
	// manifest, in bytes (0: not delivered or not known).
	ImageSize int64 `json:",omitempty"`
	// BuildKey is the digest over everything the build depended on
	// (internal/buildkey); UpToDate marks a branch run that found the key
	// equal to the last delivered run's and built nothing (its images are
	// the ones delivered before, with their digests); Force asks for a build
	// even then (a manual run).
	BuildKey string `json:",omitempty"`
	UpToDate bool   `json:",omitempty"`
	Force    bool   `json:",omitempty"`
	// Folded are the requests folded into this run while it was queued,
	// oldest first: each asked for an older commit of the same target, and
	// the run took the newer request's commit and cause instead.
	Folded []Fold `json:",omitempty"`
	// WaitsOn are the parents in its cascade that a queued cascade run
	// still waits on: it is queued with its whole cascade at once, and
	// works only once they settled (store.FinishRun releases it: clears
	// WaitsOn, sets Released). Empty: the run may start.
	WaitsOn  []string  `json:",omitempty"`
	Released time.Time `json:",omitempty"`
}

// Fold is one request folded into a queued run of the same target: its
// cause and commit were the run's until a newer request (By) replaced
// them, before the run started.
type Fold struct {
	Cause  Cause
	Commit string `json:",omitempty"` // "" = the branch head
	By     string `json:",omitempty"` // the commit that superseded it ("" = the branch head)
	At     time.Time
}

// RunFilter selects runs for Runs. Zero values select everything.
type RunFilter struct {
	Project string        // exact app-id/job-id; "" = all projects
	States  []State       // any of these; empty = any state
	Kind    types.RunKind // only runs of this kind; "" = any kind
	Limit   int           // at most this many; 0 = no limit
	Before  string        // only runs with an ID lower than this one (paging); "" = from the newest
}

// Delivery is one accepted webhook delivery.
type Delivery struct {
	Forge    string // "github", "gitlab", "gitea"
	ID       string // the forge's delivery ID
	Event    string
	Headers  map[string]string // without signatures or tokens
	Body     []byte
	Received time.Time
	// Seq is the store's order of acceptance, set by PendingDeliveries (the
	// cursor for its next page); AcceptDelivery ignores it.
	Seq uint64
	// Attempts, NextAttempt and LastError are the failed routing attempts so
	// far (RetryDelivery), set by PendingDeliveries; AcceptDelivery ignores
	// them.
	Attempts    int
	NextAttempt time.Time
	LastError   string
}

// Report is one pending forge report in the outbox, keyed by its target.
type Report struct {
	Key         string // e.g. "github:org/repo:sha:cccp/app/job"
	Kind        string
	Payload     []byte
	Attempts    int
	NextAttempt time.Time
	LastError   string
	Updated     time.Time // set by PutReport; identifies this version for DeleteReport
	// Failed: the forge refused this report for good (FailReport); it is
	// not due, and LastError says why.
	Failed bool `json:",omitempty"`
}

// Options configure Open.
type Options struct {
	Logger  *slog.Logger  // default: discard
	Timeout time.Duration // how long Open waits for the file lock; default 5s
}
