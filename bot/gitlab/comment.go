package gitlab

import (
	"context"
	"fmt"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/cccp-project/cccp/internal/textcut"
)

// UpsertComment keeps one bot note on merge request number of project repo:
// the first non-system note of the token's user containing marker is
// edited in place (anyone can write the marker), else one
// is created. body gets the marker prepended when it lacks it. Every page
// of notes is read before deciding to create; a failed listing is an error,
// never a second note.
func (c *Client) UpsertComment(ctx context.Context, repo string, number int, marker, body string) (int64, error) {
	if marker == "" {
		return 0, fmt.Errorf("gitlab: comment on %s!%d: empty marker", repo, number)
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	body = textcut.Bytes(body, CommentLimit)
	mr := int64(number)
	id, err := c.findNote(ctx, repo, mr, marker)
	if err != nil {
		return 0, err
	}
	if id != 0 {
		if _, _, err := c.api.Notes.UpdateMergeRequestNote(repo, mr, id, &gl.UpdateMergeRequestNoteOptions{Body: gl.Ptr(body)}, gl.WithContext(ctx)); err != nil {
			return 0, apiError(fmt.Sprintf("edit note %d on %s!%d", id, repo, number), err)
		}
		return id, nil
	}
	n, _, err := c.api.Notes.CreateMergeRequestNote(repo, mr, &gl.CreateMergeRequestNoteOptions{Body: gl.Ptr(body)}, gl.WithContext(ctx))
	if err != nil {
		return 0, apiError(fmt.Sprintf("comment on %s!%d", repo, number), err)
	}
	return n.ID, nil
}

func (c *Client) findNote(ctx context.Context, repo string, mr int64, marker string) (int64, error) {
	self, err := c.self.Get(ctx, c.currentUser)
	if err != nil {
		return 0, err
	}
	opts := &gl.ListMergeRequestNotesOptions{ListOptions: gl.ListOptions{PerPage: 100}, OrderBy: gl.Ptr("created_at"), Sort: gl.Ptr("asc")}
	for {
		notes, resp, err := c.api.Notes.ListMergeRequestNotes(repo, mr, opts, gl.WithContext(ctx))
		if err != nil {
			return 0, apiError(fmt.Sprintf("list notes of %s!%d", repo, mr), err)
		}
		for _, n := range notes {
			if !n.System && n.Author.Username == self && strings.Contains(n.Body, marker) {
				return n.ID, nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opts.Page = resp.NextPage
	}
}

// currentUser is the username of the token's user.
func (c *Client) currentUser(ctx context.Context) (string, error) {
	u, _, err := c.api.Users.CurrentUser(gl.WithContext(ctx))
	if err != nil {
		return "", apiError("look up the token's user", err)
	}
	return u.Username, nil
}
