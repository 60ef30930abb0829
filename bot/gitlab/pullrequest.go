package gitlab

import (
	"context"
	"fmt"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/cccp-project/cccp/bot/event"
)

// PullRequest fetches merge request number of project repo.
func (c *Client) PullRequest(ctx context.Context, repo string, number int) (*event.PullRequest, error) {
	mr, _, err := c.api.MergeRequests.GetMergeRequest(repo, int64(number), nil, gl.WithContext(ctx))
	if err != nil {
		return nil, apiError(fmt.Sprintf("get merge request %s!%d", repo, number), err)
	}
	pr := &event.PullRequest{
		Number: int(mr.IID), HeadSHA: mr.SHA, HeadRef: mr.SourceBranch, BaseRef: mr.TargetBranch,
		Title: mr.Title, Fork: mr.SourceProjectID != mr.TargetProjectID,
	}
	if mr.Author != nil {
		pr.Author, pr.AuthorID = mr.Author.Username, mr.Author.ID
	}
	if pr.Fork {
		// The head lives in the fork: fetch it from there, not from the
		// target project at the fork's SHA.
		src, _, err := c.api.Projects.GetProject(mr.SourceProjectID, nil, gl.WithContext(ctx))
		if err != nil {
			return nil, apiError(fmt.Sprintf("get source project %d of %s!%d", mr.SourceProjectID, repo, number), err)
		}
		pr.HeadCloneURL = src.HTTPURLToRepo
	}
	return pr, nil
}
