package github

import (
	"context"
	"fmt"
	"net/http"
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
