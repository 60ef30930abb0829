package github

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cccp-project/cccp/bot/event"
)

// CanWrite reports whether user may push to repo: collaborator permission
// admin, maintain or write. Someone GitHub does not know as a collaborator
// (404) cannot.
func (c *Client) CanWrite(ctx context.Context, repo, user string) (bool, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return false, err
	}
	lvl, _, err := c.api.Repositories.GetPermissionLevel(ctx, owner, name, user)
	if isStatus(err, http.StatusNotFound) {
		return false, nil
	}
	if err != nil {
		return false, apiError(fmt.Sprintf("permission of %s on %s", user, repo), err)
	}
	switch lvl.GetPermission() {
	case "admin", "maintain", "write":
		return true, nil
	}
	switch lvl.GetRoleName() {
	case "admin", "maintain", "write":
		return true, nil
	}
	return false, nil
}

// PullRequest fetches pull request number of repo, for comments whose
// payload lacks the head commit.
func (c *Client) PullRequest(ctx context.Context, repo string, number int) (*event.PullRequest, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	pr, _, err := c.api.PullRequests.Get(ctx, owner, name, number)
	if err != nil {
		return nil, apiError(fmt.Sprintf("get pull request %s#%d", repo, number), err)
	}
	head, base := pr.GetHead(), pr.GetBase()
	return &event.PullRequest{
		Number: pr.GetNumber(), HeadSHA: head.GetSHA(), HeadRef: head.GetRef(), BaseRef: base.GetRef(),
		HeadCloneURL: head.GetRepo().GetCloneURL(), Author: pr.GetUser().GetLogin(), Title: pr.GetTitle(),
		Fork: head.GetRepo() == nil || head.GetRepo().GetID() != base.GetRepo().GetID(),
	}, nil
}
