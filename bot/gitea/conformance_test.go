package gitea

import (
	"net/http"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/forgetest"
	"github.com/cccp-project/cccp/bot/gitea/giteatest"
)

// TestConformance runs bot/forgetest's suite against the Gitea client and
// its double.
func TestConformance(t *testing.T) {
	forgetest.Conformance(t, forgetest.Adapter{
		Name:       event.Gitea,
		NewWebhook: func(s []byte) (forgetest.Webhook, error) { return NewWebhook(s) },
		Sign: func(secret, body []byte) http.Header {
			return http.Header{"X-Gitea-Signature": {Sign(secret, body)}}
		},
		PushFile: "../../testdata/gitea/push-branch.json", PushHeaders: http.Header{"X-Gitea-Event": {"push"}},
		Repo: "org/app", WantFailed: "failure", WantLimit: 65535,
		Start: func(t *testing.T) forgetest.Double {
			srv := giteatest.New(t)
			c, err := NewClient(Config{Token: "t", BaseURL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			return forgetest.Double{
				Client: c,
				Final: func(name, sha string) (string, int) {
					sts := srv.Statuses()
					if len(sts) == 0 {
						return "", 0
					}
					return sts[len(sts)-1].State, len(sts)
				},
				Bodies: func(n int) []string {
					var out []string
					for _, c := range srv.Comments(n) {
						out = append(out, c.Body)
					}
					return out
				},
				Grant: func(user string, write bool) {
					srv.Permissions[user] = map[bool]string{true: "write", false: "read"}[write]
				},
				AddPullRequest: func(fork bool) (int, event.PullRequest) {
					pr := forgetest.RecordedObject(t, "../../testdata/gitea/pull_request-opened.json", "pull_request")
					// Edited: the recorded head and base name no repository;
					// they get one each, the same unless fork.
					head, base := pr["head"].(map[string]any), pr["base"].(map[string]any)
					base["repo_id"], head["repo_id"] = 1.0, 1.0
					head["repo"] = map[string]any{"id": 1.0, "full_name": "gordon/hello-world",
						"clone_url": "http://gitea.golang.org/gordon/hello-world.git"}
					want := event.PullRequest{HeadSHA: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", HeadRef: "feature/changes",
						BaseRef: "main", HeadCloneURL: "http://gitea.golang.org/gordon/hello-world.git",
						Author: "gordon", Title: "Update the README with new information"}
					if fork {
						head["repo_id"] = 2.0
						head["repo"] = map[string]any{"id": 2.0, "full_name": "forker/hello-world",
							"clone_url": "http://gitea.golang.org/forker/hello-world.git"}
						want.HeadCloneURL, want.Fork = "http://gitea.golang.org/forker/hello-world.git", true
					}
					return srv.AddPull(pr), want
				},
			}
		},
	})
}
