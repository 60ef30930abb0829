package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v92/github"

	"github.com/cccp-project/cccp/bot/event"
)

// Webhook verifies and parses GitHub webhook deliveries.
type Webhook struct {
	secret []byte
}

// NewWebhook returns a Webhook checking X-Hub-Signature-256 with secret.
// An empty secret is refused (event.ErrNoSecret).
func NewWebhook(secret []byte) (*Webhook, error) {
	if len(secret) == 0 {
		return nil, fmt.Errorf("github webhook: %w", event.ErrNoSecret)
	}
	return &Webhook{secret: append([]byte(nil), secret...)}, nil
}

// Verify checks the X-Hub-Signature-256 header ("sha256=<hex HMAC-SHA256 of
// body>") in constant time. It returns an error wrapping
// event.ErrBadSignature when the header is missing or wrong.
func (w *Webhook) Verify(headers http.Header, body []byte) error {
	sig := headers.Get("X-Hub-Signature-256")
	hexSum, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return fmt.Errorf("github: X-Hub-Signature-256 missing or not sha256: %w", event.ErrBadSignature)
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return fmt.Errorf("github: X-Hub-Signature-256 not hex: %w", event.ErrBadSignature)
	}
	mac := hmac.New(sha256.New, w.secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return fmt.Errorf("github: X-Hub-Signature-256 does not match: %w", event.ErrBadSignature)
	}
	return nil
}

// Sign returns the X-Hub-Signature-256 value for body, as GitHub computes it.
// Tests and the benchmark client use it.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
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
	payload, err := gh.ParseWebHook(kind, body)
	if err != nil {
		return nil, fmt.Errorf("github: parse %s payload: %w", kind, err)
	}
	ev := &event.Event{Forge: event.GitHub, DeliveryID: DeliveryID(headers, body)}
	switch p := payload.(type) {
	case *gh.PingEvent:
		ev.Kind = event.KindPing
		ev.Repo = repo(p.GetRepo())
		ev.Sender = p.GetSender().GetLogin()
		ev.InstallationID = p.GetInstallation().GetID()
		return ev, nil
	case *gh.PushEvent:
		return parsePush(ev, p)
	case *gh.PullRequestEvent:
		return parsePullRequest(ev, p)
	case *gh.IssueCommentEvent:
		return parseIssueComment(ev, p)
	case *gh.CheckRunEvent:
		return parseCheckRun(ev, p)
	case *gh.CheckSuiteEvent:
		return parseCheckSuite(ev, p)
	}
	return nil, event.Ignored("github event %q: unexpected payload type %T", kind, payload)
}

func parsePush(ev *event.Event, p *gh.PushEvent) (*event.Event, error) {
	ev.Kind = event.KindPush
	ev.Ref = p.GetRef()
	branch, ok := strings.CutPrefix(ev.Ref, "refs/heads/")
	if !ok {
		return nil, event.Ignored("github push to %q: not a branch", ev.Ref)
	}
	r := p.GetRepo()
	ev.Repo = event.Repo{
		Forge:         event.GitHub,
		FullName:      r.GetFullName(),
		CloneURL:      r.GetCloneURL(),
		HTMLURL:       r.GetHTMLURL(),
		DefaultBranch: r.GetDefaultBranch(),
		ID:            r.GetID(),
	}
	if ev.Repo.DefaultBranch == "" {
		ev.Repo.DefaultBranch = r.GetMasterBranch()
	}
	ev.Sender = p.GetSender().GetLogin()
	ev.InstallationID = p.GetInstallation().GetID()
	ev.Branch = branch
	ev.Before, ev.After = p.GetBefore(), p.GetAfter()
	ev.Deleted = p.GetDeleted()
	var files [][]string
	for _, c := range p.Commits {
		files = append(files, c.Added, c.Modified, c.Removed)
	}
	ev.ChangedFiles = event.ChangedFiles(files...)
	return ev, nil
}

func parsePullRequest(ev *event.Event, p *gh.PullRequestEvent) (*event.Event, error) {
	ev.Action = p.GetAction()
	switch ev.Action {
	case "opened", "synchronize", "reopened":
	default:
		return nil, event.Ignored("github pull_request action %q is not handled", ev.Action)
	}
	ev.Kind = event.KindPullRequest
	ev.Repo = repo(p.GetRepo())
	ev.Sender = p.GetSender().GetLogin()
	ev.InstallationID = p.GetInstallation().GetID()
	ev.PR = pullRequest(p.GetPullRequest())
	return ev, nil
}

func parseIssueComment(ev *event.Event, p *gh.IssueCommentEvent) (*event.Event, error) {
	ev.Action = p.GetAction()
	if ev.Action != "created" {
		return nil, event.Ignored("github issue_comment action %q is not handled", ev.Action)
	}
	issue := p.GetIssue()
	if issue.GetPullRequestLinks() == nil {
		return nil, event.Ignored("github issue_comment on issue #%d, not a pull request", issue.GetNumber())
	}
	ev.Kind = event.KindComment
	ev.Repo = repo(p.GetRepo())
	ev.Sender = p.GetSender().GetLogin()
	ev.InstallationID = p.GetInstallation().GetID()
	// The head commit is not in the payload: the caller looks it up
	// (Client.PullRequest) when the comment is a command.
	ev.PR = &event.PullRequest{
		Number: issue.GetNumber(),
		Author: issue.GetUser().GetLogin(),
		Title:  issue.GetTitle(),
	}
	c := p.GetComment()
	ev.Comment = &event.Comment{ID: c.GetID(), Body: c.GetBody(), Author: c.GetUser().GetLogin()}
	return ev, nil
}

func parseCheckRun(ev *event.Event, p *gh.CheckRunEvent) (*event.Event, error) {
	ev.Action = p.GetAction()
	if ev.Action != "rerequested" {
		return nil, event.Ignored("github check_run action %q is not handled", ev.Action)
	}
	cr := p.GetCheckRun()
	ev.Kind = event.KindCheckRerun
	ev.Repo = repo(p.GetRepo())
	ev.Sender = p.GetSender().GetLogin()
	ev.InstallationID = p.GetInstallation().GetID()
	ev.CheckName, ev.CheckSHA, ev.CheckRunID = cr.GetName(), cr.GetHeadSHA(), cr.GetID()
	if prs := cr.PullRequests; len(prs) > 0 {
		ev.PR = checkPR(prs[0])
	}
	return ev, nil
}

func parseCheckSuite(ev *event.Event, p *gh.CheckSuiteEvent) (*event.Event, error) {
	ev.Action = p.GetAction()
	if ev.Action != "rerequested" {
		return nil, event.Ignored("github check_suite action %q is not handled", ev.Action)
	}
	cs := p.GetCheckSuite()
	ev.Kind = event.KindCheckRerun
	ev.Repo = repo(p.GetRepo())
	ev.Sender = p.GetSender().GetLogin()
	ev.InstallationID = p.GetInstallation().GetID()
	ev.CheckSHA = cs.GetHeadSHA() // no CheckName: every check of the suite
	if prs := cs.PullRequests; len(prs) > 0 {
		ev.PR = checkPR(prs[0])
	}
	return ev, nil
}

func repo(r *gh.Repository) event.Repo {
	if r == nil {
		return event.Repo{Forge: event.GitHub}
	}
	return event.Repo{
		Forge:         event.GitHub,
		FullName:      r.GetFullName(),
		CloneURL:      r.GetCloneURL(),
		HTMLURL:       r.GetHTMLURL(),
		DefaultBranch: r.GetDefaultBranch(),
		ID:            r.GetID(),
	}
}

func pullRequest(pr *gh.PullRequest) *event.PullRequest {
	head, base := pr.GetHead(), pr.GetBase()
	return &event.PullRequest{
		Number:       pr.GetNumber(),
		HeadSHA:      head.GetSHA(),
		HeadRef:      head.GetRef(),
		BaseRef:      base.GetRef(),
		HeadCloneURL: head.GetRepo().GetCloneURL(),
		Author:       pr.GetUser().GetLogin(),
		// A deleted head repository counts as a fork: it is not the base.
		Fork:  head.GetRepo().GetFullName() != base.GetRepo().GetFullName(),
		Title: pr.GetTitle(),
	}
}

// checkPR maps the short pull-request objects inside check_run and
// check_suite payloads.
func checkPR(pr *gh.PullRequest) *event.PullRequest {
	head, base := pr.GetHead(), pr.GetBase()
	return &event.PullRequest{
		Number:  pr.GetNumber(),
		HeadSHA: head.GetSHA(),
		HeadRef: head.GetRef(),
		BaseRef: base.GetRef(),
		Fork:    head.GetRepo().GetID() != base.GetRepo().GetID(),
	}
}
