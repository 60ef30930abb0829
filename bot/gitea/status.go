package gitea

import (
	"context"
	"fmt"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/textcut"
)

// descriptionLimit is the length cccp keeps of a commit status description.
const descriptionLimit = 140

// SetStatus sets the commit status st.Name (its "context") on st.SHA of
// repo ("owner/name").
func (c *Client) SetStatus(ctx context.Context, repo string, st event.Status) error {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return err
	}
	api, err := c.api(ctx)
	if err != nil {
		return err
	}
	desc := st.Title
	if desc == "" {
		desc = string(st.State)
	}
	_, resp, err := api.CreateStatus(owner, name, st.SHA, sdk.CreateStatusOption{
		State: commitState(st.State), TargetURL: st.DetailsURL,
		Description: textcut.Runes(desc, descriptionLimit), Context: st.Name,
	})
	if err != nil {
		return apiError(fmt.Sprintf("set status %q on %s of %s", st.Name, st.SHA, repo), resp, err)
	}
	return nil
}

func commitState(s event.State) sdk.StatusState {
	switch s {
	case event.StateSuccess:
		return sdk.StatusSuccess
	case event.StateFailure:
		return sdk.StatusFailure
	case event.StateCancelled, event.StateError:
		return sdk.StatusError
	}
	return sdk.StatusPending
}
