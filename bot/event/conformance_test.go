package event_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/forgetest"
	"github.com/cccp-project/cccp/bot/gitea"
	"github.com/cccp-project/cccp/bot/gitea/giteatest"
	"github.com/cccp-project/cccp/bot/github"
	"github.com/cccp-project/cccp/bot/github/githubtest"
	"github.com/cccp-project/cccp/bot/gitlab"
	"github.com/cccp-project/cccp/bot/gitlab/gitlabtest"
)

// webhook is what the bot's ingest needs from each forge.
type webhook interface {
	Verify(http.Header, []byte) error
	Parse(http.Header, []byte) (*event.Event, error)
}

// reporter is what the bot's reporting needs from each forge.
type reporter interface {
	SetStatus(ctx context.Context, repo string, st event.Status) error
	UpsertComment(ctx context.Context, repo string, number int, marker, body string) (int64, error)
	CanWrite(ctx context.Context, repo, user string) (bool, error)
	Limit() int
}

// double is an adapter's reporter wired to its recording API double, with
// the probes the conformance checks read.
type double struct {
	reporter
	final  func(name, sha string) (state string, writes int) // last reported state, number of writes for name
	bodies func(number int) []string                         // of the comments (notes) on a pull request
	grant  func(user string, write bool)
}

type adapter struct {
	name        string
	hook        func(secret []byte) (webhook, error)
	sign        func(secret, body []byte) http.Header // signed delivery headers
	pushFile    string                                // a documented push payload
	pushHeaders http.Header
	repo        string
	start       func(t *testing.T) double
	wantFailed  string // the forge's rendering of a failed pipeline
	wantLimit   int
}

func adapters() []adapter {
	return []adapter{
		{
			name: "github",
			hook: func(s []byte) (webhook, error) { return github.NewWebhook(s) },
			sign: func(secret, body []byte) http.Header {
				return http.Header{"X-Hub-Signature-256": {github.Sign(secret, body)}}
			},
			pushFile: "../../testdata/github/push-event-5.json", pushHeaders: http.Header{"X-Github-Event": {"push"}},
			repo: "org/app", wantFailed: "completed/failure", wantLimit: 65535,
			start: func(t *testing.T) double {
				srv := githubtest.New(t)
				app, err := github.NewAppClient(github.AppConfig{AppID: 7, PrivateKeyPEM: githubtest.AppKey(t), BaseURL: srv.APIURL()})
				if err != nil {
					t.Fatal(err)
				}
				return double{
					reporter: app,
					final: func(name, sha string) (string, int) {
						runs := srv.CheckRuns()
						if len(runs) != 1 {
							t.Errorf("%d check runs, want 1", len(runs))
							return "", 0
						}
						writes := 0
						for _, c := range srv.Calls() {
							if strings.Contains(c.Path, "/check-runs") && c.Method != http.MethodGet {
								writes++
							}
						}
						return runs[0].Status + "/" + runs[0].Conclusion, writes
					},
					bodies: func(n int) []string { return commentBodies(srv.Comments(n)) },
					grant: func(user string, write bool) {
						srv.Permissions[user] = map[bool]string{true: "write", false: "read"}[write]
					},
				}
			},
		},
		{
			name: "gitlab",
			hook: func(s []byte) (webhook, error) { return gitlab.NewWebhook(s) },
			sign: func(secret, _ []byte) http.Header {
				return http.Header{"X-Gitlab-Token": {string(secret)}}
			},
			pushFile: "../../testdata/gitlab/push-branch.json", pushHeaders: http.Header{"X-Gitlab-Event": {"Push Hook"}},
			repo: "group/sub/app", wantFailed: "failed", wantLimit: 1_000_000,
			start: func(t *testing.T) double {
				srv := gitlabtest.New(t)
				c, err := gitlab.NewClient(gitlab.Config{Token: "glpat-x", BaseURL: srv.APIURL()})
				if err != nil {
					t.Fatal(err)
				}
				return double{
					reporter: c,
					final: func(name, sha string) (string, int) {
						sts := srv.Statuses()
						if len(sts) == 0 {
							return "", 0
						}
						return sts[len(sts)-1].State, len(sts)
					},
					bodies: func(n int) []string {
						var out []string
						for _, note := range srv.Notes(n) {
							out = append(out, note.Body)
						}
						return out
					},
					grant: func(user string, write bool) {
						srv.Access[user] = map[bool]int{true: 30, false: 20}[write]
					},
				}
			},
		},
		{
			name: "gitea",
			hook: func(s []byte) (webhook, error) { return gitea.NewWebhook(s) },
			sign: func(secret, body []byte) http.Header {
				return http.Header{"X-Gitea-Signature": {gitea.Sign(secret, body)}}
			},
			pushFile: "../../testdata/gitea/push-branch.json", pushHeaders: http.Header{"X-Gitea-Event": {"push"}},
			repo: "org/app", wantFailed: "failure", wantLimit: 65535,
			start: func(t *testing.T) double {
				srv := giteatest.New(t)
				c, err := gitea.NewClient(gitea.Config{Token: "t", BaseURL: srv.URL})
				if err != nil {
					t.Fatal(err)
				}
				return double{
					reporter: c,
					final: func(name, sha string) (string, int) {
						sts := srv.Statuses()
						if len(sts) == 0 {
							return "", 0
						}
						return sts[len(sts)-1].State, len(sts)
					},
					bodies: func(n int) []string { return commentBodies(srv.Comments(n)) },
					grant: func(user string, write bool) {
						srv.Permissions[user] = map[bool]string{true: "write", false: "read"}[write]
					},
				}
			},
		},
	}
}

// TestConformance runs the same checks against every forge adapter.
func TestConformance(t *testing.T) {
	ctx := context.Background()
	secret := []byte("conformance-secret")
	for _, a := range adapters() {
		t.Run(a.name, func(t *testing.T) {
			body, err := os.ReadFile(a.pushFile)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("empty secret refused", func(t *testing.T) {
				if _, err := a.hook(nil); !errors.Is(err, event.ErrNoSecret) {
					t.Errorf("hook(nil) = %v, want ErrNoSecret", err)
				}
			})
			hook, err := a.hook(secret)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("verify good", func(t *testing.T) {
				if err := hook.Verify(a.sign(secret, body), body); err != nil {
					t.Errorf("Verify: %v", err)
				}
			})
			t.Run("verify bad", func(t *testing.T) {
				for _, h := range []http.Header{a.sign([]byte("wrong"), body), {}} {
					if err := hook.Verify(h, body); !errors.Is(err, event.ErrBadSignature) {
						t.Errorf("Verify(%v) = %v, want ErrBadSignature", h, err)
					}
				}
			})
			t.Run("parse push", func(t *testing.T) {
				h := a.pushHeaders.Clone()
				for k, v := range a.sign(secret, body) {
					h[k] = v
				}
				ev, err := hook.Parse(h, body)
				if err != nil {
					t.Fatal(err)
				}
				if ev.Forge != a.name || ev.Kind != event.KindPush || ev.Branch == "" || ev.After == "" ||
					ev.Repo.FullName == "" || ev.Repo.CloneURL == "" || ev.DeliveryID == "" || ev.Sender == "" {
					t.Errorf("push event = %+v", ev)
				}
				if ev.Ref != "refs/heads/"+ev.Branch {
					t.Errorf("ref %q and branch %q disagree", ev.Ref, ev.Branch)
				}
			})
			t.Run("status lifecycle", func(t *testing.T) {
				d := a.start(t)
				st := event.Status{Name: "cccp/app/job-1", SHA: "f00d", DetailsURL: "https://cccp.example/runs/1"}
				for _, s := range []event.State{event.StateQueued, event.StateRunning, event.StateFailure} {
					st.State, st.Title = s, "build "+string(s)
					if err := d.SetStatus(ctx, a.repo, st); err != nil {
						t.Fatalf("SetStatus(%s): %v", s, err)
					}
				}
				state, writes := d.final(st.Name, st.SHA)
				if state != a.wantFailed || writes != 3 {
					t.Errorf("final = %q after %d writes, want %q after 3", state, writes, a.wantFailed)
				}
			})
			t.Run("comment idempotent", func(t *testing.T) {
				d := a.start(t)
				const marker = "<!-- cccp:summary -->"
				var ids []int64
				for _, body := range []string{"run 1 failed", "run 2 passed", "run 3 passed"} {
					id, err := d.UpsertComment(ctx, a.repo, 1, marker, body)
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, id)
				}
				if ids[0] == 0 || ids[0] != ids[1] || ids[1] != ids[2] {
					t.Errorf("comment ids = %v, want one id", ids)
				}
				marked := 0
				for _, b := range d.bodies(1) {
					if strings.Contains(b, marker) {
						marked++
					}
				}
				if marked != 1 {
					t.Errorf("%d marked comments, want 1", marked)
				}
				if d.Limit() != a.wantLimit {
					t.Errorf("Limit = %d, want %d", d.Limit(), a.wantLimit)
				}
			})
			t.Run("can write", func(t *testing.T) {
				d := a.start(t)
				d.grant("writer", true)
				d.grant("reader", false)
				for user, want := range map[string]bool{"writer": true, "reader": false, "stranger": false} {
					got, err := d.CanWrite(ctx, a.repo, user)
					if err != nil || got != want {
						t.Errorf("CanWrite(%s) = %v, %v; want %v", user, got, err, want)
					}
				}
			})
		})
	}
}

// commentBodies returns the bodies of GitHub's or Gitea's issue comments.
func commentBodies(cs []forgetest.Comment) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Body)
	}
	return out
}
