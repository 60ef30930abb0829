package forgetest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
)

// Webhook is a forge adapter's webhook side, as the bot's intake and
// dispatcher use it.
type Webhook interface {
	Verify(headers http.Header, body []byte) error
	Parse(headers http.Header, body []byte) (*event.Event, error)
	Headers() event.Headers
}

// Client is a forge adapter's API side, every method the bot calls.
type Client interface {
	SetStatus(ctx context.Context, repo string, st event.Status) error
	UpsertComment(ctx context.Context, repo string, number int, marker, body string) (int64, error)
	CanWrite(ctx context.Context, repo, user string) (bool, error)
	PullRequest(ctx context.Context, repo string, number int) (*event.PullRequest, error)
	Limit() int
}

// Adapter is one forge adapter under Conformance, wired to its recording
// double.
type Adapter struct {
	Name string // event.GitHub, ...
	// NewWebhook builds the adapter's webhook with secret.
	NewWebhook func(secret []byte) (Webhook, error)
	// Sign returns the headers that authenticate body with secret.
	Sign func(secret, body []byte) http.Header
	// PushFile is a recorded push delivery; PushHeaders its event headers.
	PushFile    string
	PushHeaders http.Header
	// Repo is the repository the double serves.
	Repo string
	// WantFailed is the forge's rendering of a failed status; WantLimit its
	// comment size limit.
	WantFailed string
	WantLimit  int
	// Start starts a fresh double and the adapter's client pointed at it.
	Start func(t *testing.T) Double
}

// Double is an adapter's client wired to its double, with the probes the
// checks read and the seeds they plant.
type Double struct {
	Client Client
	// Final is the last reported state of check name at sha, and how many
	// writes reporting it took.
	Final func(name, sha string) (state string, writes int)
	// Bodies are the bodies of the comments on pull request number.
	Bodies func(number int) []string
	// Grant gives user write access, or only read access.
	Grant func(user string, write bool)
	// AddPullRequest stores a pull request on the double, from recorded
	// data, with its head in another repository when fork is set; it
	// returns its number and what the look-up must answer.
	AddPullRequest func(fork bool) (number int, want event.PullRequest)
}

// Conformance runs the same checks against a forge adapter: webhook
// secret, verification, header rules and parsing of a recorded push;
// status lifecycle; the one comment edited in place; write access; and the
// pull-request look-up, of a fork too (whose head must be fetched from the
// fork). Each forge package runs it against its double.
func Conformance(t *testing.T, a Adapter) {
	ctx := context.Background()
	secret := []byte("conformance-secret")
	body, err := os.ReadFile(a.PushFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("empty secret refused", func(t *testing.T) {
		if _, err := a.NewWebhook(nil); !errors.Is(err, event.ErrNoSecret) {
			t.Errorf("NewWebhook(nil) = %v, want ErrNoSecret", err)
		}
	})
	hook, err := a.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("verify good", func(t *testing.T) {
		if err := hook.Verify(a.Sign(secret, body), body); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
	t.Run("verify bad", func(t *testing.T) {
		for _, h := range []http.Header{a.Sign([]byte("wrong"), body), {}} {
			if err := hook.Verify(h, body); !errors.Is(err, event.ErrBadSignature) {
				t.Errorf("Verify(%v) = %v, want ErrBadSignature", h, err)
			}
		}
	})
	t.Run("header rules", func(t *testing.T) {
		r := hook.Headers()
		if r.Event == "" || len(r.Delivery) == 0 {
			t.Errorf("Headers() = %+v, want an event header and a delivery-ID header", r)
		}
		if a.PushHeaders.Get(r.Event) == "" {
			t.Errorf("event header %q is not the one the forge sends (%v)", r.Event, a.PushHeaders)
		}
		if !slices.ContainsFunc(r.Keep, func(k string) bool { return strings.EqualFold(k, r.Event) }) {
			t.Errorf("Keep %q lacks the event header %q that Parse reads", r.Keep, r.Event)
		}
		for k := range a.Sign(secret, body) {
			if slices.ContainsFunc(r.Keep, func(kept string) bool { return strings.EqualFold(kept, k) }) {
				t.Errorf("Keep %q stores the credential header %q", r.Keep, k)
			}
		}
	})
	t.Run("parse push", func(t *testing.T) {
		h := a.PushHeaders.Clone()
		for k, v := range a.Sign(secret, body) {
			h[k] = v
		}
		ev, err := hook.Parse(h, body)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Forge != a.Name || ev.Kind != event.KindPush || ev.Branch == "" || ev.After == "" ||
			ev.Repo.FullName == "" || ev.Repo.CloneURL == "" || ev.DeliveryID == "" || ev.Sender == "" {
			t.Errorf("push event = %+v", ev)
		}
		if ev.Ref != "refs/heads/"+ev.Branch {
			t.Errorf("ref %q and branch %q disagree", ev.Ref, ev.Branch)
		}
	})
	t.Run("status lifecycle", func(t *testing.T) {
		d := a.Start(t)
		st := event.Status{Name: "cccp/app/job-1", SHA: "f00d", DetailsURL: "https://cccp.example/runs/1"}
		for _, s := range []event.State{event.StateQueued, event.StateRunning, event.StateFailure} {
			st.State, st.Title = s, "build "+string(s)
			if err := d.Client.SetStatus(ctx, a.Repo, st); err != nil {
				t.Fatalf("SetStatus(%s): %v", s, err)
			}
		}
		state, writes := d.Final(st.Name, st.SHA)
		if state != a.WantFailed || writes != 3 {
			t.Errorf("final = %q after %d writes, want %q after 3", state, writes, a.WantFailed)
		}
	})
	t.Run("comment idempotent", func(t *testing.T) {
		d := a.Start(t)
		const marker = "<!-- cccp:summary -->"
		var ids []int64
		for _, body := range []string{"run 1 failed", "run 2 passed", "run 3 passed"} {
			id, err := d.Client.UpsertComment(ctx, a.Repo, 1, marker, body)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if ids[0] == 0 || ids[0] != ids[1] || ids[1] != ids[2] {
			t.Errorf("comment ids = %v, want one id", ids)
		}
		var marked []string
		for _, b := range d.Bodies(1) {
			if strings.Contains(b, marker) {
				marked = append(marked, b)
			}
		}
		if len(marked) != 1 || !strings.Contains(marked[0], "run 3 passed") {
			t.Errorf("marked comments = %q, want one, the last body", marked)
		}
		if d.Client.Limit() != a.WantLimit {
			t.Errorf("Limit = %d, want %d", d.Client.Limit(), a.WantLimit)
		}
	})
	t.Run("can write", func(t *testing.T) {
		d := a.Start(t)
		d.Grant("writer", true)
		d.Grant("reader", false)
		for user, want := range map[string]bool{"writer": true, "reader": false, "stranger": false} {
			got, err := d.Client.CanWrite(ctx, a.Repo, user)
			if err != nil || got != want {
				t.Errorf("CanWrite(%s) = %v, %v; want %v", user, got, err, want)
			}
		}
	})
	for _, fork := range []bool{false, true} {
		name := map[bool]string{false: "pull request", true: "pull request from a fork"}[fork]
		t.Run(name, func(t *testing.T) {
			d := a.Start(t)
			n, want := d.AddPullRequest(fork)
			got, err := d.Client.PullRequest(ctx, a.Repo, n)
			if err != nil {
				t.Fatal(err)
			}
			if got.Number != n || got.HeadSHA == "" || got.HeadRef == "" || got.BaseRef == "" || got.Author == "" {
				t.Errorf("PullRequest = %+v: number, head, base and author are required", got)
			}
			if got.Fork != fork {
				t.Errorf("Fork = %v, want %v", got.Fork, fork)
			}
			if fork && got.HeadCloneURL == "" {
				t.Errorf("a fork's head has no clone URL: it would be fetched from the target repository")
			}
			want.Number = n
			g := *got
			g.Title, g.Updated, g.AuthorID = want.Title, want.Updated, want.AuthorID // forge-specific extras
			if g != want {
				t.Errorf("PullRequest:\n got %+v\nwant %+v", g, want)
			}
		})
	}
	t.Run("unknown pull request", func(t *testing.T) {
		d := a.Start(t)
		_, err := d.Client.PullRequest(ctx, a.Repo, 404)
		if err == nil || !event.IsPermanent(err) {
			t.Errorf("PullRequest(404) = %v, want a permanent error", err)
		}
	})
}
