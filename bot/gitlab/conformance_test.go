package gitlab

import (
	"net/http"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/forgetest"
	"github.com/cccp-project/cccp/bot/gitlab/gitlabtest"
)

// TestConformance runs bot/forgetest's suite against the GitLab client and
// its double.
func TestConformance(t *testing.T) {
	forgetest.Conformance(t, forgetest.Adapter{
		Name:       event.GitLab,
		NewWebhook: func(s []byte) (forgetest.Webhook, error) { return NewWebhook(s) },
		Sign: func(secret, _ []byte) http.Header {
			return http.Header{"X-Gitlab-Token": {string(secret)}}
		},
		PushFile: "../../testdata/gitlab/push-branch.json", PushHeaders: http.Header{"X-Gitlab-Event": {"Push Hook"}},
		Repo: "group/sub/app", WantFailed: "failed", WantLimit: 1_000_000,
		Start: func(t *testing.T) forgetest.Double {
			srv := gitlabtest.New(t)
			c, err := NewClient(Config{Token: "glpat-x", BaseURL: srv.APIURL()})
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
					for _, note := range srv.Notes(n) {
						out = append(out, note.Body)
					}
					return out
				},
				Grant: func(user string, write bool) {
					srv.Access[user] = map[bool]int{true: 30, false: 20}[write]
				},
				AddPullRequest: func(fork bool) (int, event.PullRequest) {
					mr := recordedMR(t)
					srv.Projects[14] = "awesome_space/awesome_project"
					want := event.PullRequest{HeadSHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", HeadRef: "ms-viewport",
						BaseRef: "master", Author: "outsider", Title: "MS-Viewport"}
					if fork { // edited: the source project is a fork
						srv.Projects[77] = "outsider/awesome_project"
						mr["source_project_id"] = 77
						want.HeadCloneURL, want.Fork = "https://gitlab.example/outsider/awesome_project.git", true
					}
					return srv.AddMergeRequest(mr), want
				},
			}
		},
	})
}

// recordedMR is the merge request of the recorded merge_request-open.json
// delivery in the shape GitLab's API answers with: the webhook's
// object_attributes, with sha from last_commit and the author object the
// API adds (the webhook names only author_id; the username is ours).
func recordedMR(t *testing.T) map[string]any {
	a := forgetest.RecordedObject(t, "../../testdata/gitlab/merge_request-open.json", "object_attributes")
	mr := map[string]any{}
	for _, k := range []string{"title", "source_branch", "target_branch", "source_project_id", "target_project_id", "state"} {
		mr[k] = a[k]
	}
	mr["sha"] = a["last_commit"].(map[string]any)["id"]
	mr["author"] = map[string]any{"id": a["author_id"], "username": "outsider"}
	return mr
}
