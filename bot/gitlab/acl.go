package gitlab

import (
	"context"
	"fmt"
	"net/http"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/cccp-project/cccp/bot/event"
)

// CanWrite reports whether user has at least Developer access (30) to
// project repo, directly or through a group. Unknown users and
// non-members cannot.
func (c *Client) CanWrite(ctx context.Context, repo, user string) (bool, error) {
	users, _, err := c.api.Users.ListUsers(&gl.ListUsersOptions{Username: gl.Ptr(user)}, gl.WithContext(ctx))
	if err != nil {
		return false, apiError("look up user "+user, err)
	}
	var id int64
	for _, u := range users {
		if u.Username == user {
			id = u.ID
		}
	}
	if id == 0 {
		return false, nil
	}
	m, _, err := c.api.ProjectMembers.GetInheritedProjectMember(repo, id, gl.WithContext(ctx))
	if isStatus(err, http.StatusNotFound) {
		return false, nil
	}
	if err != nil {
		return false, apiError(fmt.Sprintf("membership of %s in %s", user, repo), err)
	}
	return m.AccessLevel >= gl.DeveloperPermissions, nil
}

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
