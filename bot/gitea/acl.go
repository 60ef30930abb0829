package gitea

import (
	"context"
	"fmt"
	"net/http"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/cccp-project/cccp/bot/event"
)

// CanWrite reports whether user has write, admin or owner permission on
// repo. Gitea answers 403 or 404 for users who are not collaborators: they
// cannot write.
func (c *Client) CanWrite(ctx context.Context, repo, user string) (bool, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return false, err
	}
	api, err := c.api(ctx)
	if err != nil {
		return false, err
	}
	perm, resp, err := api.CollaboratorPermission(owner, name, user)
	if statusIs(resp, http.StatusForbidden, http.StatusNotFound) {
		return false, nil
	}
	if err != nil {
		return false, apiError(fmt.Sprintf("permission of %s on %s", user, repo), resp, err)
	}
	if perm == nil {
		return false, nil
	}
	switch perm.Permission {
	case sdk.AccessModeWrite, sdk.AccessModeAdmin, sdk.AccessModeOwner:
		return true, nil
	}
	return false, nil
}

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
