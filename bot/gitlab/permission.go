package gitlab

import (
	"context"
	"fmt"
	"net/http"

	gl "gitlab.com/gitlab-org/api/client-go"
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
