// Package event holds cccp's own forge-neutral types: the events that the
// forge adapters (bot/github, bot/gitlab, bot/gitea) parse out of webhooks,
// and the statuses the bot reports back. It imports no forge SDK.
package event

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Kind names what happened, independent of the forge.
type Kind string

// The kinds of events cccp acts on.
const (
	KindPush        Kind = "push"
	KindPullRequest Kind = "pull_request"
	KindComment     Kind = "comment"
	KindCheckRerun  Kind = "check_rerun"
	KindPing        Kind = "ping"
	KindIgnored     Kind = "ignored"
)

// Forge names.
const (
	GitHub = "github"
	GitLab = "gitlab"
	Gitea  = "gitea"
)

// Repo is a repository on a forge.
type Repo struct {
	Forge         string `json:"forge"`
	FullName      string `json:"full_name"` // org/app or group/sub/app
	CloneURL      string `json:"clone_url"`
	HTMLURL       string `json:"html_url"`
	DefaultBranch string `json:"default_branch"`
	ID            int64  `json:"id"`
}

// PullRequest is a pull request (GitHub, Gitea) or merge request (GitLab).
type PullRequest struct {
	Number       int    `json:"number"`
	HeadSHA      string `json:"head_sha"`
	HeadRef      string `json:"head_ref"`
	BaseRef      string `json:"base_ref"`
	HeadCloneURL string `json:"head_clone_url"`
	// Author is the pull request's author, the one whose code runs. ""
	// when the payload does not name it (GitLab names only AuthorID): the
	// bot then asks the forge's API, never the event's sender.
	Author   string `json:"author"`
	AuthorID int64  `json:"author_id,omitempty"`
	Fork     bool   `json:"fork"` // head lives in another repository
	// Updated is when the forge last changed the pull request (its head
	// among others), when the payload says; zero otherwise.
	Updated time.Time `json:"updated,omitzero"`
	Title   string    `json:"title"`
	// Draft: the pull request is a draft (its runs wait until it is
	// ready, unless drafts are built).
	Draft bool `json:"draft,omitempty"`
	// Closed: the pull request was closed or merged (its unfinished runs
	// are cancelled).
	Closed bool `json:"closed,omitempty"`
}

// Comment is a comment on a pull request.
type Comment struct {
	ID     int64  `json:"id"`
	Body   string `json:"body"`
	Author string `json:"author"`
	// Created is when the comment was written, when the payload says.
	Created time.Time `json:"created,omitzero"`
}

// Event is one webhook delivery turned into cccp's terms.
type Event struct {
	Forge      string `json:"forge"`
	DeliveryID string `json:"delivery_id"`
	Kind       Kind   `json:"kind"`
	Action     string `json:"action,omitempty"` // the forge's action word: opened, synchronize, update, rerequested...
	Repo       Repo   `json:"repo"`
	Sender     string `json:"sender"`

	// Push.
	Ref     string `json:"ref,omitempty"`    // refs/heads/x
	Branch  string `json:"branch,omitempty"` // x
	Before  string `json:"before,omitempty"`
	After   string `json:"after,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`

	PR      *PullRequest `json:"pr,omitempty"`
	Comment *Comment     `json:"comment,omitempty"`

	// GitHub check_run / check_suite rerequested.
	CheckName  string `json:"check_name,omitempty"`
	CheckSHA   string `json:"check_sha,omitempty"`
	CheckRunID int64  `json:"check_run_id,omitempty"`

	InstallationID int64 `json:"installation_id,omitempty"`
}

// State is the state of one reported pipeline.
type State string

// The states a Status can report.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSuccess   State = "success"
	StateFailure   State = "failure"
	StateCancelled State = "cancelled"
	StateError     State = "error"
)

// Done reports whether s is a final state.
func (s State) Done() bool {
	switch s {
	case StateSuccess, StateFailure, StateCancelled, StateError:
		return true
	}
	return false
}

// Status is what cccp reports for one pipeline on one commit.
type Status struct {
	Name        string // e.g. cccp/app/job
	SHA         string
	State       State
	Title       string
	Summary     string // markdown
	Text        string // markdown, longer details
	DetailsURL  string
	StartedAt   time.Time
	CompletedAt time.Time
}

// ErrIgnored is wrapped, with the reason, by parsers for deliveries cccp does
// not act on. The delivery is valid; the caller acknowledges it and stops.
var ErrIgnored = errors.New("event ignored")

// ErrBadSignature is returned by Verify when a delivery's signature or token
// is missing or wrong.
var ErrBadSignature = errors.New("bad webhook signature")

// ErrNoSecret is returned when a webhook verifier is built without a secret:
// an endpoint with no secret refuses to start instead of accepting anything.
var ErrNoSecret = errors.New("webhook secret not configured")

// Ignored returns an error wrapping ErrIgnored with a reason.
func Ignored(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrIgnored, fmt.Sprintf(format, args...))
}

// RetryableError is returned by the forge clients when the forge asked to
// wait (a primary rate limit, a 429 or a 5xx with Retry-After). The caller's
// outbox keeps the report and tries again after RetryAfter.
type RetryableError struct {
	Op    string
	After time.Duration
	Err   error
}

func (e *RetryableError) Error() string {
	return fmt.Sprintf("%s: retry after %s: %v", e.Op, e.After, e.Err)
}

func (e *RetryableError) Unwrap() error { return e.Err }

// RetryAfter says how long to wait before trying again.
func (e *RetryableError) RetryAfter() time.Duration { return e.After }

// Headers are one forge's webhook header rules, supplied by its adapter.
type Headers struct {
	// Retry names the headers that carry the same key on every retry of
	// one event (GitLab 17.4+'s Idempotency-Key); the first present one is
	// the delivery's ID for deduplication.
	Retry []string
	// Delivery names the delivery-ID headers, first present wins, when no
	// retry key is there.
	Delivery []string
	// Event names the header with the event's name.
	Event string
	// Keep are the headers stored with a delivery for Parse: never a
	// signature or a token.
	Keep []string
}

// PermanentError is returned by the forge clients when the forge refused a
// request for a reason that trying again will not change: a 4xx other than
// 429 (and other than a rate limit, which is a RetryableError). The bot
// gives up on the delivery or report, with the reason kept for a person.
type PermanentError struct {
	Op     string
	Status int // the HTTP status
	Err    error
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("%s: %d: %v", e.Op, e.Status, e.Err)
}

func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err (or an error it wraps) is a
// PermanentError.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}

// BodyID derives a delivery ID from a body, for forges or proxies that send
// no delivery header: a redelivery of the same body gets the same ID.
func BodyID(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256-" + hex.EncodeToString(sum[:16])
}
