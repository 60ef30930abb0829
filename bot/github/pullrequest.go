package github

import (
	"context"
	"fmt"

	"github.com/cccp-project/cccp/bot/event"
)

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
