package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/textcut"
)

// descriptionLimit is the length cccp keeps of a commit status description.
const descriptionLimit = 140

// SetStatus sets the commit status st.Name on st.SHA of project repo
// ("group/sub/app"). GitLab refuses to set a status to the state it already
// has ("Cannot transition status"); that answer counts as success, so a
// repeated report is harmless.
func (c *Client) SetStatus(ctx context.Context, repo string, st event.Status) error {
	desc := st.Title
	if desc == "" {
		desc = string(st.State)
	}
	opts := &gl.SetCommitStatusOptions{
		State:       commitState(st.State),
		Name:        gl.Ptr(st.Name),
		Description: gl.Ptr(textcut.Runes(desc, descriptionLimit)),
	}
	if st.DetailsURL != "" {
		opts.TargetURL = gl.Ptr(st.DetailsURL)
	}
	_, _, err := c.api.Commits.SetCommitStatus(repo, st.SHA, opts, gl.WithContext(ctx))
	if err != nil && isStatus(err, http.StatusBadRequest) && alreadyInState(err) {
		return nil
	}
	if err != nil {
		return apiError(fmt.Sprintf("set status %q on %s of %s", st.Name, st.SHA, repo), err)
	}
	return nil
}

func alreadyInState(err error) bool {
	var er *gl.ErrorResponse
	return errors.As(err, &er) && strings.Contains(string(er.Body)+er.Message, "Cannot transition status")
}

func commitState(s event.State) gl.BuildStateValue {
	switch s {
	case event.StateRunning:
		return gl.Running
	case event.StateSuccess:
		return gl.Success
	case event.StateFailure, event.StateError:
		return gl.Failed
	case event.StateCancelled:
		return gl.Canceled
	}
	return gl.Pending
}
