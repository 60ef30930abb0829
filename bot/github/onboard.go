package github

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	gh "github.com/google/go-github/v92/github"
)

// OpenPullRequest creates branch from base in repo, commits files (path to
// content) on it, one commit per file, and opens a pull request into base.
// It returns the pull request's web URL. When the branch or the pull
// request already exist (a retried onboarding), they are reused.
func (c *Client) OpenPullRequest(ctx context.Context, repo, base, branch, title, body string, files map[string][]byte) (string, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return "", err
	}
	ref, _, err := c.api.Git.GetRef(ctx, owner, name, "heads/"+base)
	if err != nil {
		return "", apiError(fmt.Sprintf("get branch %s of %s", base, repo), err)
	}
	_, _, err = c.api.Git.CreateRef(ctx, owner, name, gh.CreateRef{Ref: "refs/heads/" + branch, SHA: ref.GetObject().GetSHA()})
	if err != nil && !isStatus(err, http.StatusUnprocessableEntity) { // 422: it exists
		return "", apiError(fmt.Sprintf("create branch %s of %s", branch, repo), err)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		opts := &gh.RepositoryContentFileOptions{
			Message: gh.Ptr(fmt.Sprintf("Add %s", p)),
			Content: files[p],
			Branch:  gh.Ptr(branch),
		}
		// An existing file (retry) needs its blob SHA to be replaced.
		existing, _, _, err := c.api.Repositories.GetContents(ctx, owner, name, p, &gh.RepositoryContentGetOptions{Ref: branch})
		if err == nil && existing != nil {
			opts.SHA = existing.SHA
			opts.Message = gh.Ptr(fmt.Sprintf("Update %s", p))
			_, _, err = c.api.Repositories.UpdateFile(ctx, owner, name, p, opts)
		} else if isStatus(err, http.StatusNotFound) {
			_, _, err = c.api.Repositories.CreateFile(ctx, owner, name, p, opts)
		}
		if err != nil {
			return "", apiError(fmt.Sprintf("write %s on %s of %s", p, branch, repo), err)
		}
	}
	pr, _, err := c.api.PullRequests.Create(ctx, owner, name, gh.CreatePullRequest{
		Title: gh.Ptr(title), Head: branch, Base: base, Body: gh.Ptr(body),
	})
	if isStatus(err, http.StatusUnprocessableEntity) {
		open, _, lerr := c.api.PullRequests.List(ctx, owner, name, &gh.PullRequestListOptions{Head: owner + ":" + branch, Base: base, State: "open"})
		if lerr == nil && len(open) > 0 {
			return open[0].GetHTMLURL(), nil
		}
	}
	if err != nil {
		return "", apiError(fmt.Sprintf("open pull request %s -> %s on %s", branch, base, repo), err)
	}
	return pr.GetHTMLURL(), nil
}
