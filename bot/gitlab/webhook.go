package gitlab

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/internal/jsonpick"
)

// Webhook verifies and parses GitLab webhook deliveries.
type Webhook struct {
	token []byte
	pick  *jsonpick.Picker // the members of payload
}

// NewWebhook returns a Webhook checking X-Gitlab-Token against token (the
// "secret token" of the GitLab webhook). An empty token is refused
// (event.ErrNoSecret).
func NewWebhook(token []byte) (*Webhook, error) {
	if len(token) == 0 {
		return nil, fmt.Errorf("gitlab webhook: %w", event.ErrNoSecret)
	}
	return &Webhook{token: append([]byte(nil), token...), pick: jsonpick.ForStruct(payload{})}, nil
}

// Verify compares X-Gitlab-Token with the configured token in constant time.
// GitLab sends the token itself, not a signature of the body.
// Headers are GitLab's webhook header rules. GitLab 17.4+ sends the same
// Idempotency-Key on every retry of one event, while the event and webhook
// UUIDs change; the key wins when present.
func (w *Webhook) Headers() event.Headers {
	return event.Headers{
		Retry:    []string{"Idempotency-Key"},
		Delivery: []string{"X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID"},
		Event:    "X-Gitlab-Event",
		Keep:     []string{"X-Gitlab-Event", "X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID", "Idempotency-Key", "X-Gitlab-Instance", "Content-Type"},
	}
}

// VerifyHeaders checks the token, which is a header: the body need not be
// read first.
func (w *Webhook) VerifyHeaders(headers http.Header) error { return w.Verify(headers, nil) }

func (w *Webhook) Verify(headers http.Header, _ []byte) error {
	got := headers.Get("X-Gitlab-Token")
	if got == "" {
		return fmt.Errorf("gitlab: X-Gitlab-Token missing: %w", event.ErrBadSignature)
	}
	if subtle.ConstantTimeCompare([]byte(got), w.token) != 1 {
		return fmt.Errorf("gitlab: X-Gitlab-Token does not match: %w", event.ErrBadSignature)
	}
	return nil
}

// DeliveryID returns X-Gitlab-Event-UUID, or a hash of the body when it is
// absent (GitLab before 15.x, proxies).
func DeliveryID(headers http.Header, body []byte) string {
	if id := headers.Get("X-Gitlab-Event-UUID"); id != "" {
		return id
	}
	return event.BodyID(body)
}

const zeroSHA = "0000000000000000000000000000000000000000"

// Parse turns a delivery (already verified) into an event.Event. The event
// type is read from the payload's object_kind, which project, group and
// system hooks all carry. Events cccp does not act on return an error
// wrapping event.ErrIgnored with the reason.
func (w *Webhook) Parse(headers http.Header, body []byte) (*event.Event, error) {
	var p payload
	// Only payload's members are decoded: a push's commits list, most of
	// its bytes, is skipped by structure alone.
	if err := w.pick.Decode(body, func(b []byte) error { return json.Unmarshal(b, &p) }); err != nil {
		return nil, fmt.Errorf("gitlab: parse payload: %w", err)
	}
	kind := p.ObjectKind
	if kind == "" {
		return nil, fmt.Errorf("gitlab: payload without object_kind (X-Gitlab-Event %q)", headers.Get("X-Gitlab-Event"))
	}
	ev := &event.Event{
		Forge:      event.GitLab,
		DeliveryID: DeliveryID(headers, body),
		Repo:       p.Project.event(),
	}
	switch kind {
	case "push":
		return parsePush(ev, &p)
	case "merge_request":
		return parseMergeRequest(ev, &p)
	case "note":
		return parseNote(ev, &p)
	}
	return nil, event.Ignored("gitlab event %q is not handled", kind)
}

type payload struct {
	ObjectKind string  `json:"object_kind"`
	Project    project `json:"project"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`

	// push
	Ref          string `json:"ref"`
	Before       string `json:"before"`
	After        string `json:"after"`
	UserUsername string `json:"user_username"`

	// merge_request: the MR; note: the comment.
	ObjectAttributes json.RawMessage `json:"object_attributes"`
	// note on a merge request: the MR.
	MergeRequest *mergeRequest `json:"merge_request"`
	// merge_request updates: what changed.
	Changes changes `json:"changes"`
}

type project struct {
	ID                int64  `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
	GitHTTPURL        string `json:"git_http_url"`
	WebURL            string `json:"web_url"`
	DefaultBranch     string `json:"default_branch"`
}

func (p project) event() event.Repo {
	return event.Repo{
		Forge: event.GitLab, FullName: p.PathWithNamespace, CloneURL: p.GitHTTPURL,
		HTMLURL: p.WebURL, DefaultBranch: p.DefaultBranch, ID: p.ID,
	}
}

// changes are a merge_request update's changed attributes, by name.
type changes map[string]json.RawMessage

func (c changes) has(name string) bool { _, ok := c[name]; return ok }

type mergeRequest struct {
	IID             int    `json:"iid"`
	Title           string `json:"title"`
	SourceBranch    string `json:"source_branch"`
	TargetBranch    string `json:"target_branch"`
	SourceProjectID int64  `json:"source_project_id"`
	TargetProjectID int64  `json:"target_project_id"`
	AuthorID        int64  `json:"author_id"`
	Action          string `json:"action"`
	OldRev          string `json:"oldrev"`
	Draft           bool   `json:"draft"`
	WorkInProgress  bool   `json:"work_in_progress"`
	Source          struct {
		GitHTTPURL string `json:"git_http_url"`
	} `json:"source"`
	LastCommit struct {
		ID string `json:"id"`
	} `json:"last_commit"`
}

// event maps a merge request. GitLab payloads name the MR's author only by
// ID (author_id); the event's user is whoever triggered the hook (a
// maintainer who reopens or rebases an outsider's MR), so Author stays
// empty and the bot looks the author up through the API.
func (mr *mergeRequest) event() *event.PullRequest {
	return &event.PullRequest{
		Number: mr.IID, HeadSHA: mr.LastCommit.ID, HeadRef: mr.SourceBranch, BaseRef: mr.TargetBranch,
		HeadCloneURL: mr.Source.GitHTTPURL, AuthorID: mr.AuthorID, Title: mr.Title,
		Fork: mr.SourceProjectID != mr.TargetProjectID,
	}
}

func parsePush(ev *event.Event, p *payload) (*event.Event, error) {
	ev.Kind = event.KindPush
	ev.Ref = p.Ref
	branch, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	if !ok {
		return nil, event.Ignored("gitlab push to %q: not a branch", p.Ref)
	}
	ev.Branch = branch
	ev.Sender = p.UserUsername
	ev.Before, ev.After = p.Before, p.After
	ev.Deleted = p.After == zeroSHA
	return ev, nil
}

func parseMergeRequest(ev *event.Event, p *payload) (*event.Event, error) {
	var mr mergeRequest
	if err := json.Unmarshal(p.ObjectAttributes, &mr); err != nil {
		return nil, fmt.Errorf("gitlab: parse merge_request attributes: %w", err)
	}
	ev.Action = mr.Action
	switch mr.Action {
	case "open", "reopen", "close", "merge":
	case "update":
		if mr.OldRev == "" && !p.Changes.has("target_branch") && !p.Changes.has("draft") {
			return nil, event.Ignored("gitlab merge_request update without new commits, base or draft change")
		}
	default:
		return nil, event.Ignored("gitlab merge_request action %q is not handled", mr.Action)
	}
	ev.Kind = event.KindPullRequest
	ev.Sender = p.User.Username
	ev.PR = mr.event()
	ev.PR.Draft = mr.Draft || mr.WorkInProgress
	ev.PR.Closed = mr.Action == "close" || mr.Action == "merge"
	return ev, nil
}

func parseNote(ev *event.Event, p *payload) (*event.Event, error) {
	var note struct {
		ID           int64  `json:"id"`
		Note         string `json:"note"`
		NoteableType string `json:"noteable_type"`
		Action       string `json:"action"`
	}
	if err := json.Unmarshal(p.ObjectAttributes, &note); err != nil {
		return nil, fmt.Errorf("gitlab: parse note attributes: %w", err)
	}
	if note.NoteableType != "MergeRequest" || p.MergeRequest == nil {
		return nil, event.Ignored("gitlab note on %s, not a merge request", note.NoteableType)
	}
	if note.Action != "" && note.Action != "create" { // "action" arrived in GitLab 16.11
		return nil, event.Ignored("gitlab note action %q is not handled", note.Action)
	}
	ev.Kind = event.KindComment
	ev.Action = note.Action
	ev.Sender = p.User.Username
	// Head SHA and branches come with the note; the MR author does not.
	ev.PR = p.MergeRequest.event()
	ev.Comment = &event.Comment{ID: note.ID, Body: note.Note, Author: p.User.Username}
	return ev, nil
}
