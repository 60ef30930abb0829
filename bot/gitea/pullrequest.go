package gitea

import (
	"context"
	"fmt"

	"github.com/cccp-project/cccp/bot/event"
)

// PullRequest fetches pull request number of repo.
func (c *Client) PullRequest(ctx context.Context, repo string, number int) (*event.PullRequest, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	api, err := c.api(ctx)
	if err != nil {
		return nil, err
	}
	pr, resp, err := api.GetPullRequest(owner, name, int64(number))
	if err != nil {
		return nil, apiError(fmt.Sprintf("get pull request %s#%d", repo, number), resp, err)
	}
	out := &event.PullRequest{Number: int(pr.Index), Title: pr.Title}
	if pr.Poster != nil {
		out.Author = pr.Poster.UserName
	}
	if pr.Head != nil {
		out.HeadSHA, out.HeadRef = pr.Head.Sha, pr.Head.Ref
		if pr.Head.Repository != nil {
			out.HeadCloneURL = pr.Head.Repository.CloneURL
		}
	}
	if pr.Base != nil {
		out.BaseRef = pr.Base.Ref
		out.Fork = pr.Head != nil && pr.Head.RepoID != pr.Base.RepoID
	}
	return out, nil
}
