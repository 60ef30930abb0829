package github

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/internal/hmacsig"
	"github.com/cccp-project/cccp/bot/internal/jsonpick"
)

// Webhook verifies and parses GitHub webhook deliveries.
type Webhook struct {
	secret []byte
	pick   *jsonpick.Picker // the members of payload
}

// NewWebhook returns a Webhook checking X-Hub-Signature-256 with secret.
// An empty secret is refused (event.ErrNoSecret).
func NewWebhook(secret []byte) (*Webhook, error) {
	if len(secret) == 0 {
		return nil, fmt.Errorf("github webhook: %w", event.ErrNoSecret)
	}
	return &Webhook{secret: append([]byte(nil), secret...), pick: jsonpick.ForStruct(payload{})}, nil
}

// Verify checks the X-Hub-Signature-256 header ("sha256=<hex HMAC-SHA256 of
// body>") in constant time. It returns an error wrapping
// event.ErrBadSignature when the header is missing or wrong.
// Headers are GitHub's webhook header rules. A manual redelivery keeps
// X-GitHub-Delivery.
func (w *Webhook) Headers() event.Headers {
	return event.Headers{
		Delivery: []string{"X-GitHub-Delivery"},
		Event:    "X-GitHub-Event",
		Keep:     []string{"X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-Installation-Target-ID", "Content-Type"},
	}
}

func (w *Webhook) Verify(headers http.Header, body []byte) error {
	sig := headers.Get("X-Hub-Signature-256")
	hexSum, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return fmt.Errorf("github: X-Hub-Signature-256 missing or not sha256: %w", event.ErrBadSignature)
	}
	switch err := hmacsig.Check(w.secret, body, hexSum); {
	case errors.Is(err, hmacsig.ErrNotHex):
		return fmt.Errorf("github: X-Hub-Signature-256 not hex: %w", event.ErrBadSignature)
	case err != nil:
		return fmt.Errorf("github: X-Hub-Signature-256 does not match: %w", event.ErrBadSignature)
	}
	return nil
}

// Sign returns the X-Hub-Signature-256 value for body, as GitHub computes it.
// Tests and the benchmark client use it.
func Sign(secret, body []byte) string {
	return "sha256=" + hmacsig.Sum(secret, body)
}

// DeliveryID returns X-GitHub-Delivery, or a hash of the body when the
// header is absent.
func DeliveryID(headers http.Header, body []byte) string {
	if id := headers.Get("X-GitHub-Delivery"); id != "" {
		return id
	}
	return event.BodyID(body)
}

// Parse turns a delivery (already verified) into an event.Event. Events cccp
// does not act on return an error wrapping event.ErrIgnored with the reason.
//
// Payloads are decoded into the few fields cccp reads, not go-github's full
// types: GitHub's own published examples carry timestamps such as
// "2018-04-25 20:42:10" that the full types refuse.
func (w *Webhook) Parse(headers http.Header, body []byte) (*event.Event, error) {
	kind := headers.Get("X-GitHub-Event")
	if kind == "" {
		return nil, fmt.Errorf("github: X-GitHub-Event header missing")
	}
	switch kind {
	case "ping", "push", "pull_request", "issue_comment", "check_run", "check_suite":
	default:
		return nil, event.Ignored("github event %q is not handled", kind)
	}
	var p payload
	// Only payload's members are decoded: a push's commits list, most of
	// its bytes, is skipped by structure alone.
	if err := w.pick.Decode(body, func(b []byte) error { return jsonv2.Unmarshal(b, &p, parseOptions) }); err != nil {
		return nil, fmt.Errorf("github: parse %s payload: %w", kind, err)
	}
	ev := &event.Event{
		Forge:          event.GitHub,
		DeliveryID:     DeliveryID(headers, body),
		Action:         p.Action,
		Repo:           p.Repository.event(),
		Sender:         p.Sender.Login,
		InstallationID: p.Installation.ID,
	}
	switch kind {
	case "ping":
		ev.Kind = event.KindPing
	case "push":
		return parsePush(ev, &p)
	case "pull_request":
		return parsePullRequest(ev, &p)
	case "issue_comment":
		return parseIssueComment(ev, &p)
	case "check_run":
		return parseCheckRun(ev, &p)
	case "check_suite":
		return parseCheckSuite(ev, &p)
	}
	return ev, nil
}

// parseOptions make the single-pass JSON decoder (json v2, about three
// times faster than encoding/json on a 25 KB push, which matters at
// thousands of deliveries a second) read what encoding/json reads: names
// matched case-insensitively, duplicate names and invalid UTF-8 accepted.
var parseOptions = jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true),
	jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// payload holds the fields cccp reads from any of the handled events.
type payload struct {
	Action       string     `json:"action"`
	Repository   repository `json:"repository"`
	Sender       user       `json:"sender"`
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`

	// push
	Ref     string `json:"ref"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Deleted bool   `json:"deleted"`

	PullRequest *pullRequestPayload `json:"pull_request"`
	Changes     *struct {
		Base *struct{} `json:"base"`
	} `json:"changes"`

	// issue_comment
	Issue *struct {
		Number      int            `json:"number"`
		Title       string         `json:"title"`
		User        user           `json:"user"`
		PullRequest jsontext.Value `json:"pull_request"`
	} `json:"issue"`
	Comment *struct {
		ID        int64  `json:"id"`
		Body      string `json:"body"`
		User      user   `json:"user"`
		CreatedAt string `json:"created_at"`
	} `json:"comment"`

	CheckRun *struct {
		ID           int64                 `json:"id"`
		Name         string                `json:"name"`
		HeadSHA      string                `json:"head_sha"`
		PullRequests []*pullRequestPayload `json:"pull_requests"`
	} `json:"check_run"`
	CheckSuite *struct {
		HeadSHA      string                `json:"head_sha"`
		PullRequests []*pullRequestPayload `json:"pull_requests"`
	} `json:"check_suite"`
}

type user struct {
	Login string `json:"login"`
}

type repository struct {
	ID            int64  `json:"id"`
	FullName      string `json:"full_name"`
	CloneURL      string `json:"clone_url"`
	HTMLURL       string `json:"html_url"`
	DefaultBranch string `json:"default_branch"`
	MasterBranch  string `json:"master_branch"` // push payloads
}

func (r repository) event() event.Repo {
	out := event.Repo{
		Forge: event.GitHub, FullName: r.FullName, CloneURL: r.CloneURL, HTMLURL: r.HTMLURL,
		DefaultBranch: r.DefaultBranch, ID: r.ID,
	}
	if out.DefaultBranch == "" {
		out.DefaultBranch = r.MasterBranch
	}
	return out
}

type branchRef struct {
	Ref  string      `json:"ref"`
	SHA  string      `json:"sha"`
	Repo *repository `json:"repo"`
}

type pullRequestPayload struct {
	Draft  bool      `json:"draft"`
	Number int       `json:"number"`
	Title  string    `json:"title"`
	User   user      `json:"user"`
	Head   branchRef `json:"head"`
	Base   branchRef `json:"base"`
	// UpdatedAt is a string: the published examples use more than one
	// format (timestamp).
	UpdatedAt string `json:"updated_at"`
}

// timestamp reads GitHub's timestamps: RFC 3339, or "2006-01-02 15:04:05"
// (UTC) in some published examples; anything else is zero.
func timestamp(s string) time.Time {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

func (pr *pullRequestPayload) event() *event.PullRequest {
	out := &event.PullRequest{
		Number: pr.Number, HeadSHA: pr.Head.SHA, HeadRef: pr.Head.Ref, BaseRef: pr.Base.Ref,
		Author: pr.User.Login, Title: pr.Title, Updated: timestamp(pr.UpdatedAt), Draft: pr.Draft,
		// A deleted head repository counts as a fork: it is not the base.
		Fork: pr.Head.Repo == nil || pr.Base.Repo == nil || pr.Head.Repo.ID != pr.Base.Repo.ID,
	}
	if pr.Head.Repo != nil {
		out.HeadCloneURL = pr.Head.Repo.CloneURL
	}
	return out
}

func parsePush(ev *event.Event, p *payload) (*event.Event, error) {
	ev.Kind = event.KindPush
	ev.Ref = p.Ref
	branch, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	if !ok {
		return nil, event.Ignored("github push to %q: not a branch", p.Ref)
	}
	ev.Branch = branch
	ev.Before, ev.After, ev.Deleted = p.Before, p.After, p.Deleted
	return ev, nil
}

func parsePullRequest(ev *event.Event, p *payload) (*event.Event, error) {
	switch p.Action {
	case "opened", "synchronize", "reopened", "closed", "ready_for_review", "converted_to_draft":
	case "edited":
		if p.Changes == nil || p.Changes.Base == nil {
			return nil, event.Ignored("github pull_request edited without a change of base")
		}
	default:
		return nil, event.Ignored("github pull_request action %q is not handled", p.Action)
	}
	if p.PullRequest == nil {
		return nil, fmt.Errorf("github: pull_request payload without pull_request")
	}
	ev.Kind = event.KindPullRequest
	ev.PR = p.PullRequest.event()
	ev.PR.Closed = p.Action == "closed"
	return ev, nil
}

func parseIssueComment(ev *event.Event, p *payload) (*event.Event, error) {
	if p.Action != "created" {
		return nil, event.Ignored("github issue_comment action %q is not handled", p.Action)
	}
	if p.Issue == nil || p.Comment == nil {
		return nil, fmt.Errorf("github: issue_comment payload without issue or comment")
	}
	if len(p.Issue.PullRequest) == 0 || string(p.Issue.PullRequest) == "null" {
		return nil, event.Ignored("github issue_comment on issue #%d, not a pull request", p.Issue.Number)
	}
	ev.Kind = event.KindComment
	// The head commit is not in the payload: the caller looks it up
	// (Client.PullRequest) when the comment is a command.
	ev.PR = &event.PullRequest{Number: p.Issue.Number, Author: p.Issue.User.Login, Title: p.Issue.Title}
	ev.Comment = &event.Comment{ID: p.Comment.ID, Body: p.Comment.Body, Author: p.Comment.User.Login,
		Created: timestamp(p.Comment.CreatedAt)}
	return ev, nil
}

func parseCheckRun(ev *event.Event, p *payload) (*event.Event, error) {
	if p.Action != "rerequested" {
		return nil, event.Ignored("github check_run action %q is not handled", p.Action)
	}
	if p.CheckRun == nil {
		return nil, fmt.Errorf("github: check_run payload without check_run")
	}
	ev.Kind = event.KindCheckRerun
	ev.CheckName, ev.CheckSHA, ev.CheckRunID = p.CheckRun.Name, p.CheckRun.HeadSHA, p.CheckRun.ID
	if prs := p.CheckRun.PullRequests; len(prs) > 0 {
		ev.PR = prs[0].event()
	}
	return ev, nil
}

func parseCheckSuite(ev *event.Event, p *payload) (*event.Event, error) {
	if p.Action != "rerequested" {
		return nil, event.Ignored("github check_suite action %q is not handled", p.Action)
	}
	if p.CheckSuite == nil {
		return nil, fmt.Errorf("github: check_suite payload without check_suite")
	}
	ev.Kind = event.KindCheckRerun
	ev.CheckSHA = p.CheckSuite.HeadSHA // no CheckName: every check of the suite
	if prs := p.CheckSuite.PullRequests; len(prs) > 0 {
		ev.PR = prs[0].event()
	}
	return ev, nil
}
