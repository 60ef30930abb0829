package github

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/forgetest"
	"github.com/cccp-project/cccp/bot/github/githubtest"
)

// TestConformance runs bot/forgetest's suite against the GitHub App client
// and its double.
func TestConformance(t *testing.T) {
	forgetest.Conformance(t, forgetest.Adapter{
		Name:       event.GitHub,
		NewWebhook: func(s []byte) (forgetest.Webhook, error) { return NewWebhook(s) },
		Sign: func(secret, body []byte) http.Header {
			return http.Header{"X-Hub-Signature-256": {Sign(secret, body)}}
		},
		PushFile: "../../testdata/github/push-event-5.json", PushHeaders: http.Header{"X-Github-Event": {"push"}},
		Repo: "org/app", WantFailed: "completed/failure", WantLimit: 65535,
		Start: func(t *testing.T) forgetest.Double {
			srv := githubtest.New(t)
			app, err := NewAppClient(AppConfig{AppID: 7, PrivateKeyPEM: githubtest.AppKey(t), BaseURL: srv.APIURL()})
			if err != nil {
				t.Fatal(err)
			}
			return forgetest.Double{
				Client: app,
				Final: func(name, sha string) (string, int) {
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
				Bodies: func(n int) []string { return commentBodies(srv.Comments(n)) },
				Grant: func(user string, write bool) {
					srv.Permissions[user] = map[bool]string{true: "write", false: "read"}[write]
				},
				AddPullRequest: func(fork bool) (int, event.PullRequest) {
					pr := forgetest.RecordedObject(t, "../../testdata/github/pull_request-opened-1.json", "pull_request")
					want := event.PullRequest{HeadSHA: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", HeadRef: "changes",
						BaseRef: "master", HeadCloneURL: "https://github.com/Codertocat/Hello-World.git",
						Author: "Codertocat", Title: "Update the README with new information."}
					if fork { // edited: the head repository is a fork
						repo := pr["head"].(map[string]any)["repo"].(map[string]any)
						repo["id"], repo["full_name"] = 1.0, "forker/Hello-World"
						repo["clone_url"] = "https://github.com/forker/Hello-World.git"
						want.HeadCloneURL, want.Fork = "https://github.com/forker/Hello-World.git", true
					}
					return srv.AddPull(pr), want
				},
			}
		},
	})
}

func commentBodies(cs []forgetest.Comment) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Body)
	}
	return out
}
