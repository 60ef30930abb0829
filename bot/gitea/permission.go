package gitea

import (
	"context"
	"fmt"
	"net/http"

	sdk "code.gitea.io/sdk/gitea"
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
