package gitea

import (
	"context"
	"fmt"
	"strings"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/cccp-project/cccp/internal/textcut"
)

// UpsertComment keeps one bot comment on pull request number of repo: the
// first comment of the token's user containing marker is edited in place
// (anyone can write the marker), else one is created.
// body gets the marker prepended when it lacks it. Every page is read
// before deciding to create; a failed listing is an error, never a second
// comment.
func (c *Client) UpsertComment(ctx context.Context, repo string, number int, marker, body string) (int64, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return 0, err
	}
	if marker == "" {
		return 0, fmt.Errorf("gitea: comment on %s#%d: empty marker", repo, number)
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	body = textcut.Bytes(body, CommentLimit)
	api, err := c.api(ctx)
	if err != nil {
		return 0, err
	}
	self, err := c.self.Get(ctx, func(context.Context) (string, error) {
		u, resp, err := api.GetMyUserInfo()
		if err != nil {
			return "", apiError("look up the token's user", resp, err)
		}
		return u.UserName, nil
	})
	if err != nil {
		return 0, err
	}
	id, err := findComment(api, owner, name, int64(number), self, marker)
	if err != nil {
		return 0, err
	}
	if id != 0 {
		if _, resp, err := api.EditIssueComment(owner, name, id, sdk.EditIssueCommentOption{Body: body}); err != nil {
			return 0, apiError(fmt.Sprintf("edit comment %d on %s#%d", id, repo, number), resp, err)
		}
		return id, nil
	}
	cm, resp, err := api.CreateIssueComment(owner, name, int64(number), sdk.CreateIssueCommentOption{Body: body})
	if err != nil {
		return 0, apiError(fmt.Sprintf("comment on %s#%d", repo, number), resp, err)
	}
	return cm.ID, nil
}

func findComment(api *sdk.Client, owner, name string, number int64, self, marker string) (int64, error) {
	opts := sdk.ListIssueCommentOptions{ListOptions: sdk.ListOptions{Page: 1, PageSize: 50}}
	for {
		comments, resp, err := api.ListIssueComments(owner, name, number, opts)
		if err != nil {
			return 0, apiError(fmt.Sprintf("list comments of %s/%s#%d", owner, name, number), resp, err)
		}
		for _, cm := range comments {
			if cm.Poster != nil && cm.Poster.UserName == self && strings.Contains(cm.Body, marker) {
				return cm.ID, nil
			}
		}
		if resp == nil || resp.NextPage == 0 || len(comments) == 0 {
			return 0, nil
		}
		opts.Page = resp.NextPage
	}
}
