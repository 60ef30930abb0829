package github

import (
	"context"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v92/github"

	"github.com/cccp-project/cccp/internal/textcut"
)

// UpsertComment keeps one bot comment on pull request number of repo: the
// first comment of the bot's own login containing marker (a hidden
// "<!-- cccp:... -->" line, which anyone can write) is edited in place; if there is none, one is created. body gets the marker
// prepended when it lacks it, so the next call finds it. Every page of
// comments is read before deciding to create, and a failed listing is an
// error rather than a second comment.
func (c *Client) UpsertComment(ctx context.Context, repo string, number int, marker, body string) (int64, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return 0, err
	}
	if marker == "" {
		return 0, fmt.Errorf("github: comment on %s#%d: empty marker", repo, number)
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	body = textcut.Bytes(body, CommentLimit)
	self, err := c.self.Get(ctx, c.whoami)
	if err != nil {
		return 0, err
	}
	id, err := c.findComment(ctx, owner, name, number, self, marker)
	if err != nil {
		return 0, err
	}
	req := gh.IssueCommentRequest{Body: body}
	if id != 0 {
		if _, _, err := c.api.Issues.UpdateComment(ctx, owner, name, id, req); err != nil {
			return 0, apiError(fmt.Sprintf("edit comment %d on %s#%d", id, repo, number), err)
		}
		return id, nil
	}
	created, _, err := c.api.Issues.CreateComment(ctx, owner, name, number, req)
	if err != nil {
		return 0, apiError(fmt.Sprintf("comment on %s#%d", repo, number), err)
	}
	return created.GetID(), nil
}

func (c *Client) findComment(ctx context.Context, owner, name string, number int, self, marker string) (int64, error) {
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		comments, resp, err := c.api.Issues.ListComments(ctx, owner, name, number, opts)
		if err != nil {
			return 0, apiError(fmt.Sprintf("list comments of %s/%s#%d", owner, name, number), err)
		}
		for _, cm := range comments {
			if strings.EqualFold(cm.GetUser().GetLogin(), self) && strings.Contains(cm.GetBody(), marker) {
				return cm.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opts.Page = resp.NextPage
	}
}

// tokenUser is the login of a token client's user.
func (c *Client) tokenUser(ctx context.Context) (string, error) {
	u, _, err := c.api.Users.Get(ctx, "")
	if err != nil {
		return "", apiError("look up the token's user", err)
	}
	return u.GetLogin(), nil
}

// botLogin is the App's bot account, slug + "[bot]", the author of the
// comments its installations write.
func (a *App) botLogin(ctx context.Context) (string, error) {
	return a.login.Get(ctx, func(ctx context.Context) (string, error) {
		app, _, err := a.appAPI.Apps.Get(ctx, "")
		if err != nil {
			return "", apiError("look up the App", err)
		}
		if app.GetSlug() == "" {
			return "", nil
		}
		return app.GetSlug() + "[bot]", nil
	})
}
