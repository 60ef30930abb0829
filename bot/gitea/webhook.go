package gitea

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/internal/hmacsig"
	"github.com/cccp-project/cccp/bot/internal/jsonpick"
)

// Webhook verifies and parses Gitea and Forgejo webhook deliveries.
type Webhook struct {
	secret []byte
	pick   *jsonpick.Picker // the members of payload
}

// NewWebhook returns a Webhook checking X-Gitea-Signature (or Forgejo's
// X-Forgejo-Signature) with secret. An empty secret is refused
// (event.ErrNoSecret).
func NewWebhook(secret []byte) (*Webhook, error) {
	if len(secret) == 0 {
		return nil, fmt.Errorf("gitea webhook: %w", event.ErrNoSecret)
	}
	return &Webhook{secret: append([]byte(nil), secret...), pick: jsonpick.ForStruct(payload{})}, nil
}

// Verify checks the hex HMAC-SHA256 of body in X-Gitea-Signature, or in
// X-Forgejo-Signature when the former is absent, in constant time.
// Headers are Gitea's webhook header rules; Forgejo sends X-Forgejo-* as
// well as (or instead of) X-Gitea-*.
func (w *Webhook) Headers() event.Headers {
	return event.Headers{
		Delivery: []string{"X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery"},
		Event:    "X-Gitea-Event",
		Keep: []string{"X-Gitea-Event", "X-Gitea-Event-Type", "X-Gitea-Delivery", "X-Forgejo-Event", "X-Forgejo-Event-Type",
			"X-Forgejo-Delivery", "X-Gogs-Event", "X-Gogs-Delivery", "Content-Type"},
	}
}

func (w *Webhook) Verify(headers http.Header, body []byte) error {
	sig := headers.Get("X-Gitea-Signature")
	if sig == "" {
		sig = headers.Get("X-Forgejo-Signature")
	}
	if sig == "" {
		return fmt.Errorf("gitea: X-Gitea-Signature missing: %w", event.ErrBadSignature)
	}
	switch err := hmacsig.Check(w.secret, body, sig); {
	case errors.Is(err, hmacsig.ErrNotHex):
		return fmt.Errorf("gitea: X-Gitea-Signature not hex: %w", event.ErrBadSignature)
	case err != nil:
		return fmt.Errorf("gitea: X-Gitea-Signature does not match: %w", event.ErrBadSignature)
	}
	return nil
}

// Sign returns the X-Gitea-Signature value for body.
func Sign(secret, body []byte) string {
	return hmacsig.Sum(secret, body)
}

// DeliveryID returns X-Gitea-Delivery (or X-Forgejo-Delivery), or a hash of
// the body when both are absent.
func DeliveryID(headers http.Header, body []byte) string {
	for _, h := range []string{"X-Gitea-Delivery", "X-Forgejo-Delivery"} {
		if id := headers.Get(h); id != "" {
			return id
		}
	}
	return event.BodyID(body)
}

// Parse turns a delivery (already verified) into an event.Event. Events cccp
// does not act on return an error wrapping event.ErrIgnored with the reason.
func (w *Webhook) Parse(headers http.Header, body []byte) (*event.Event, error) {
	kind := headers.Get("X-Gitea-Event")
	if kind == "" {
		kind = headers.Get("X-Forgejo-Event")
	}
	if kind == "" {
		return nil, fmt.Errorf("gitea: X-Gitea-Event header missing")
	}
	switch kind {
	case "push", "pull_request", "issue_comment", "pull_request_comment":
	default:
		return nil, event.Ignored("gitea event %q is not handled", kind)
	}
	var p payload
	// Only payload's members are decoded: a push's commits list, most of
	// its bytes, is skipped by structure alone.
	if err := w.pick.Decode(body, func(b []byte) error { return json.Unmarshal(b, &p) }); err != nil {
		return nil, fmt.Errorf("gitea: parse %s payload: %w", kind, err)
	}
	ev := &event.Event{
		Forge:      event.Gitea,
		DeliveryID: DeliveryID(headers, body),
		Action:     p.Action,
		Repo:       p.Repository.event(),
		Sender:     p.Sender.Login,
	}
	switch kind {
	case "push":
		return parsePush(ev, &p)
	case "pull_request":
		return parsePullRequest(ev, &p)
	default:
		return parseComment(ev, &p)
	}
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
}

func (r repository) event() event.Repo {
	return event.Repo{Forge: event.Gitea, FullName: r.FullName, CloneURL: r.CloneURL, HTMLURL: r.HTMLURL,
		DefaultBranch: r.DefaultBranch, ID: r.ID}
}

type branchRef struct {
	Ref    string      `json:"ref"`
	SHA    string      `json:"sha"`
	RepoID int64       `json:"repo_id"`
	Repo   *repository `json:"repo"`
}

type pullRequest struct {
	Number int       `json:"number"`
	Title  string    `json:"title"`
	User   user      `json:"user"`
	Head   branchRef `json:"head"`
	Base   branchRef `json:"base"`
	// UpdatedAt is RFC 3339; anything else reads as zero.
	UpdatedAt string `json:"updated_at"`
}

func rfc3339(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func (pr *pullRequest) event(base repository) *event.PullRequest {
	out := &event.PullRequest{
		Number: pr.Number, HeadSHA: pr.Head.SHA, HeadRef: pr.Head.Ref, BaseRef: pr.Base.Ref,
		Author: pr.User.Login, Title: pr.Title, Updated: rfc3339(pr.UpdatedAt),
	}
	if pr.Head.Repo != nil {
		out.HeadCloneURL = pr.Head.Repo.CloneURL
	}
	switch {
	case pr.Head.RepoID != 0 && pr.Base.RepoID != 0:
		out.Fork = pr.Head.RepoID != pr.Base.RepoID
	case pr.Head.Repo != nil:
		out.Fork = pr.Head.Repo.FullName != base.FullName
	}
	if out.HeadCloneURL == "" && !out.Fork {
		out.HeadCloneURL = base.CloneURL // same repository
	}
	return out
}

type payload struct {
	Action     string     `json:"action"`
	Repository repository `json:"repository"`
	Sender     user       `json:"sender"`

	Ref    string `json:"ref"`
	Before string `json:"before"`
	After  string `json:"after"`

	PullRequest *pullRequest `json:"pull_request"`

	IsPull bool `json:"is_pull"`
	Issue  *struct {
		Number      int             `json:"number"`
		Title       string          `json:"title"`
		User        user            `json:"user"`
		PullRequest json.RawMessage `json:"pull_request"`
	} `json:"issue"`
	Comment *struct {
		ID        int64  `json:"id"`
		Body      string `json:"body"`
		User      user   `json:"user"`
		CreatedAt string `json:"created_at"`
	} `json:"comment"`
}

const zeroSHA = "0000000000000000000000000000000000000000"

func parsePush(ev *event.Event, p *payload) (*event.Event, error) {
	ev.Kind = event.KindPush
	ev.Ref = p.Ref
	branch, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	if !ok {
		return nil, event.Ignored("gitea push to %q: not a branch", p.Ref)
	}
	ev.Branch = branch
	ev.Before, ev.After = p.Before, p.After
	ev.Deleted = p.After == zeroSHA
	return ev, nil
}

func parsePullRequest(ev *event.Event, p *payload) (*event.Event, error) {
	switch p.Action {
	case "opened", "synchronized", "reopened", "closed":
	default:
		return nil, event.Ignored("gitea pull_request action %q is not handled", p.Action)
	}
	if p.PullRequest == nil {
		return nil, fmt.Errorf("gitea: pull_request payload without pull_request")
	}
	ev.Kind = event.KindPullRequest
	ev.PR = p.PullRequest.event(p.Repository)
	ev.PR.Closed = p.Action == "closed"
	return ev, nil
}

func parseComment(ev *event.Event, p *payload) (*event.Event, error) {
	if p.Action != "created" {
		return nil, event.Ignored("gitea issue_comment action %q is not handled", p.Action)
	}
	if p.Issue == nil || p.Comment == nil {
		return nil, fmt.Errorf("gitea: issue_comment payload without issue or comment")
	}
	isPull := p.IsPull || (len(p.Issue.PullRequest) > 0 && string(p.Issue.PullRequest) != "null")
	if !isPull {
		return nil, event.Ignored("gitea issue_comment on issue #%d, not a pull request", p.Issue.Number)
	}
	ev.Kind = event.KindComment
	ev.PR = &event.PullRequest{Number: p.Issue.Number, Author: p.Issue.User.Login, Title: p.Issue.Title}
	ev.Comment = &event.Comment{ID: p.Comment.ID, Body: p.Comment.Body, Author: p.Comment.User.Login,
		Created: rfc3339(p.Comment.CreatedAt)}
	return ev, nil
}
