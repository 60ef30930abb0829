package gitlab

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// OpenPullRequest creates branch from base in project repo with one commit
// adding files (path to content), and opens a merge request into base. It
// returns the merge request's web URL. An open merge request from branch is
// returned as is; an existing branch is reused without a new commit.
func (c *Client) OpenPullRequest(ctx context.Context, repo, base, branch, title, body string, files map[string][]byte) (string, error) {
	open, _, err := c.api.MergeRequests.ListProjectMergeRequests(repo, &gl.ListProjectMergeRequestsOptions{
		SourceBranch: gl.Ptr(branch), TargetBranch: gl.Ptr(base), State: gl.Ptr("opened"),
	}, gl.WithContext(ctx))
	if err != nil {
		return "", apiError(fmt.Sprintf("list merge requests of %s", repo), err)
	}
	if len(open) > 0 {
		return open[0].WebURL, nil
	}
	_, _, err = c.api.Branches.GetBranch(repo, branch, gl.WithContext(ctx))
	switch {
	case isStatus(err, http.StatusNotFound):
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		actions := make([]*gl.CommitActionOptions, 0, len(paths))
		for _, p := range paths {
			actions = append(actions, &gl.CommitActionOptions{
				Action: gl.Ptr(gl.FileCreate), FilePath: gl.Ptr(p), Content: gl.Ptr(string(files[p])),
			})
		}
		_, _, err = c.api.Commits.CreateCommit(repo, &gl.CreateCommitOptions{
			Branch: gl.Ptr(branch), StartBranch: gl.Ptr(base), CommitMessage: gl.Ptr(title), Actions: actions,
		}, gl.WithContext(ctx))
		if err != nil {
			return "", apiError(fmt.Sprintf("commit to %s of %s", branch, repo), err)
		}
	case err != nil:
		return "", apiError(fmt.Sprintf("get branch %s of %s", branch, repo), err)
	}
	mr, _, err := c.api.MergeRequests.CreateMergeRequest(repo, &gl.CreateMergeRequestOptions{
		Title: gl.Ptr(title), Description: gl.Ptr(body), SourceBranch: gl.Ptr(branch), TargetBranch: gl.Ptr(base),
		RemoveSourceBranch: gl.Ptr(true),
	}, gl.WithContext(ctx))
	if err != nil {
		return "", apiError(fmt.Sprintf("open merge request %s -> %s on %s", branch, base, repo), err)
	}
	return mr.WebURL, nil
}
