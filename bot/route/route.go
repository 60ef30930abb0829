// Package route holds the bot's pure routing decisions: which runs an
// event asks for against the index's entries, whether a repository URL
// names the event's repository, and the list of approved commits of a pull
// request. Nothing here calls a forge, the store or the pipeline; bot
// acts on what these decide.
package route

import (
	"net/url"
	"strings"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// PushRequests returns the branch runs a push asks for: one per entry
// whose repository and branch the push updated. Branch deletions ask for
// nothing.
func PushRequests(ev *event.Event, entries []*index.Entry) []pipeline.Request {
	if ev.Kind != event.KindPush || ev.Deleted || ev.Branch == "" || IsZeroSHA(ev.After) {
		return nil
	}
	var out []pipeline.Request
	for _, e := range entries {
		if e.GitBranch != ev.Branch || !SameRepo(e.GitURL, ev.Repo) {
			continue
		}
		out = append(out, pipeline.Request{
			Project: e.Key(),
			Kind:    types.KindBranch,
			Cause: store.Cause{Kind: "push", Commit: ev.After, Ref: ev.Ref, Actor: ev.Sender,
				Forge: ev.Forge, Repo: ev.Repo.FullName, DeliveryID: ev.DeliveryID},
			Branch: ev.Branch,
			Commit: ev.After,
		})
	}
	return out
}

// PRRequests returns the PR runs a pull request asks for: one per entry
// tracking the pull request's base branch in its repository. A fork's head
// is built from the fork.
func PRRequests(ev *event.Event, entries []*index.Entry) []pipeline.Request {
	pr := ev.PR
	if pr == nil || pr.HeadSHA == "" || pr.Closed {
		return nil
	}
	var out []pipeline.Request
	for _, e := range entries {
		if e.GitBranch != pr.BaseRef || !SameRepo(e.GitURL, ev.Repo) {
			continue
		}
		req := pipeline.Request{
			Project: e.Key(),
			Kind:    types.KindPR,
			Cause: store.Cause{Kind: "pull_request", Commit: pr.HeadSHA, Ref: pr.HeadRef, PR: pr.Number,
				Actor: ev.Sender, Forge: ev.Forge, Repo: ev.Repo.FullName, DeliveryID: ev.DeliveryID},
			Branch: pr.HeadRef,
			Commit: pr.HeadSHA,
		}
		if pr.Fork && pr.HeadCloneURL != "" {
			req.GitURL = pr.HeadCloneURL
		}
		out = append(out, req)
	}
	return out
}

func IsZeroSHA(s string) bool { return s != "" && strings.Trim(s, "0") == "" }

// SameRepo reports whether an index entry's git-url names the event's
// repository.
func SameRepo(gitURL string, r event.Repo) bool {
	n := NormalizeRepoURL(gitURL)
	if n == "" {
		return false
	}
	for _, u := range []string{r.CloneURL, r.HTMLURL} {
		if u != "" && NormalizeRepoURL(u) == n {
			return true
		}
	}
	return false
}

// NormalizeRepoURL reduces a repository URL to "host/path" for comparison:
// scheme, userinfo, default ports, a trailing "/" or ".git" are dropped and
// everything is lower-cased (GitHub, GitLab and Gitea names are
// case-insensitive). scp-like "git@host:org/app.git",
// "ssh://git@host/org/app" and "https://host/org/app" are equal.
// Unparseable input gives "".
func NormalizeRepoURL(u string) string {
	u = strings.TrimSpace(u)
	if u == "" {
		return ""
	}
	var host, path string
	if i := strings.Index(u, "://"); i >= 0 {
		p, err := url.Parse(u)
		if err != nil || p.Host == "" {
			return ""
		}
		host = p.Hostname()
		if port := p.Port(); port != "" && port != "22" && port != "80" && port != "443" && port != "9418" {
			host += ":" + port
		}
		path = p.Path
	} else {
		// scp-like: [user@]host:path
		at := strings.LastIndex(u[:max(strings.IndexByte(u, ':'), 0)], "@")
		rest := u[at+1:]
		h, p, ok := strings.Cut(rest, ":")
		if !ok || h == "" || strings.Contains(h, "/") {
			return ""
		}
		host, path = h, p
	}
	path = strings.Trim(path, "/")
	path = strings.TrimSuffix(path, ".git")
	path = strings.Trim(path, "/")
	if host == "" || path == "" {
		return ""
	}
	return strings.ToLower(host + "/" + path)
}

// maxApprovals is how many approved commits a pull request keeps: approving
// an older commit by name does not withdraw the approval of the head.
const maxApprovals = 5

// AddApproval puts sha first in a stored list of approved commits (one per
// line; before lists, the value was one SHA, which reads the same).
func AddApproval(stored []byte, sha string) []byte {
	list := []string{sha}
	for _, s := range strings.Split(string(stored), "\n") {
		if s != "" && !strings.EqualFold(s, sha) && len(list) < maxApprovals {
			list = append(list, s)
		}
	}
	return []byte(strings.Join(list, "\n"))
}

// Approved reports whether head is among the stored approved commits.
func Approved(stored []byte, head string) bool {
	for _, s := range strings.Split(string(stored), "\n") {
		if s != "" && strings.EqualFold(s, head) {
			return true
		}
	}
	return false
}
