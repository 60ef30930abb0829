package gitea

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"

	sdk "code.gitea.io/sdk/gitea"
)

// OpenPullRequest creates branch from base in repo, commits files (path to
// content) on it, one commit per file, and opens a pull request into base.
// It returns the pull request's web URL. An open pull request from branch is
// returned as is; an existing branch is reused without new commits.
func (c *Client) OpenPullRequest(ctx context.Context, repo, base, branch, title, body string, files map[string][]byte) (string, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return "", err
	}
	api, err := c.api(ctx)
	if err != nil {
		return "", err
	}
	prs, resp, err := api.ListRepoPullRequests(owner, name, sdk.ListPullRequestsOptions{State: sdk.StateOpen})
	if err != nil {
		return "", apiError(fmt.Sprintf("list pull requests of %s", repo), resp, err)
	}
	for _, pr := range prs {
		if pr.Head != nil && pr.Head.Ref == branch && pr.Base != nil && pr.Base.Ref == base {
			return pr.HTMLURL, nil
		}
	}
	_, resp, err = api.GetRepoBranch(owner, name, branch)
	switch {
	case statusIs(resp, http.StatusNotFound):
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		for i, p := range paths {
			opt := sdk.CreateFileOptions{
				FileOptions: sdk.FileOptions{Message: "Add " + p, BranchName: branch},
				Content:     base64.StdEncoding.EncodeToString(files[p]),
			}
			if i == 0 { // the first commit creates the branch from base
				opt.BranchName, opt.NewBranchName = base, branch
			}
			if _, resp, err := api.CreateFile(owner, name, p, opt); err != nil {
				return "", apiError(fmt.Sprintf("write %s on %s of %s", p, branch, repo), resp, err)
			}
		}
	case err != nil:
		return "", apiError(fmt.Sprintf("get branch %s of %s", branch, repo), resp, err)
	}
	pr, resp, err := api.CreatePullRequest(owner, name, sdk.CreatePullRequestOption{Head: branch, Base: base, Title: title, Body: body})
	if err != nil {
		return "", apiError(fmt.Sprintf("open pull request %s -> %s on %s", branch, base, repo), resp, err)
	}
	return pr.HTMLURL, nil
}
