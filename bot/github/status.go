package github

import (
	"context"
	"fmt"
	"time"

	gh "github.com/google/go-github/v92/github"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/textcut"
)

// outputLimit is the size limit of a check run's output summary and text.
const outputLimit = 65535

// descriptionLimit is the length limit of a commit status description.
const descriptionLimit = 140

// SetStatus reports st on the commit st.SHA of repo ("owner/name"). App
// installations use one check run per st.Name: created when first reported
// (or found, if it already exists for that commit), then updated in place
// and completed with a conclusion. Token clients set a commit status.
func (c *Client) SetStatus(ctx context.Context, repo string, st event.Status) error {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return err
	}
	if !c.checkRuns {
		return c.setCommitStatus(ctx, owner, name, st)
	}
	return c.setCheckRun(ctx, owner, name, st)
}

func (c *Client) setCheckRun(ctx context.Context, owner, name string, st event.Status) error {
	key := owner + "/" + name + "@" + st.SHA + "@" + st.Name
	id, err := c.findCheckRun(ctx, owner, name, key, st)
	if err != nil {
		return err
	}
	status, conclusion := checkState(st.State)
	output := checkOutput(st)
	var detailsURL *string
	if st.DetailsURL != "" {
		detailsURL = gh.Ptr(st.DetailsURL)
	}
	if id == 0 {
		opts := gh.CreateCheckRunOptions{
			Name: st.Name, HeadSHA: st.SHA, Status: gh.Ptr(status), DetailsURL: detailsURL,
			ExternalID: gh.Ptr(st.Name), Output: output,
		}
		if !st.StartedAt.IsZero() {
			opts.StartedAt = &gh.Timestamp{Time: st.StartedAt}
		}
		if conclusion != "" {
			opts.Conclusion = gh.Ptr(conclusion)
			opts.CompletedAt = &gh.Timestamp{Time: completedAt(st)}
		}
		run, _, err := c.api.Checks.CreateCheckRun(ctx, owner, name, opts)
		if err != nil {
			return apiError(fmt.Sprintf("create check run %q on %s", st.Name, st.SHA), err)
		}
		c.remember(key, run.GetID(), st.State)
		return nil
	}
	opts := gh.UpdateCheckRunOptions{
		Name: st.Name, Status: gh.Ptr(status), DetailsURL: detailsURL, Output: output,
	}
	if conclusion != "" {
		opts.Conclusion = gh.Ptr(conclusion)
		opts.CompletedAt = &gh.Timestamp{Time: completedAt(st)}
	}
	if _, _, err := c.api.Checks.UpdateCheckRun(ctx, owner, name, id, opts); err != nil {
		return apiError(fmt.Sprintf("update check run %d %q", id, st.Name), err)
	}
	c.remember(key, id, st.State)
	return nil
}

// findCheckRun returns the ID of the check run for key: remembered from an
// earlier call, or listed from GitHub (after a restart), or 0.
func (c *Client) findCheckRun(ctx context.Context, owner, name, key string, st event.Status) (int64, error) {
	c.mu.Lock()
	id, ok := c.runIDs[key]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	opts := &gh.ListCheckRunsOptions{CheckName: gh.Ptr(st.Name), Filter: gh.Ptr("latest"), ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		res, resp, err := c.api.Checks.ListCheckRunsForRef(ctx, owner, name, st.SHA, opts)
		if err != nil {
			return 0, apiError(fmt.Sprintf("list check runs %q on %s", st.Name, st.SHA), err)
		}
		for _, run := range res.CheckRuns {
			if run.GetName() == st.Name && run.GetHeadSHA() == st.SHA {
				return run.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opts.Page = resp.NextPage
	}
}

// remember keeps a check run's ID until the run is complete.
func (c *Client) remember(key string, id int64, s event.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.Done() {
		delete(c.runIDs, key)
		return
	}
	c.runIDs[key] = id
}

// checkState maps a state to a check run's status and conclusion.
func checkState(s event.State) (status, conclusion string) {
	switch s {
	case event.StateQueued:
		return "queued", ""
	case event.StateRunning:
		return "in_progress", ""
	case event.StateSuccess:
		return "completed", "success"
	case event.StateCancelled:
		return "completed", "cancelled"
	case event.StateFailure, event.StateError:
		return "completed", "failure"
	}
	return "queued", ""
}

func checkOutput(st event.Status) *gh.CheckRunOutput {
	title := st.Title
	if title == "" {
		title = st.Name + ": " + string(st.State)
	}
	summary := st.Summary
	if summary == "" {
		summary = title
	}
	out := &gh.CheckRunOutput{Title: gh.Ptr(title), Summary: gh.Ptr(textcut.Bytes(summary, outputLimit))}
	if st.Text != "" {
		out.Text = gh.Ptr(textcut.Bytes(st.Text, outputLimit))
	}
	return out
}

func completedAt(st event.Status) time.Time {
	if st.CompletedAt.IsZero() {
		return time.Now()
	}
	return st.CompletedAt
}

// commitState maps a state to a commit status state.
func commitState(s event.State) string {
	switch s {
	case event.StateSuccess:
		return "success"
	case event.StateFailure:
		return "failure"
	case event.StateCancelled, event.StateError:
		return "error"
	}
	return "pending"
}

func (c *Client) setCommitStatus(ctx context.Context, owner, name string, st event.Status) error {
	desc := st.Title
	if desc == "" {
		desc = string(st.State)
	}
	rs := gh.RepoStatus{
		State:       gh.Ptr(commitState(st.State)),
		Context:     gh.Ptr(st.Name),
		Description: gh.Ptr(textcut.Runes(desc, descriptionLimit)),
	}
	if st.DetailsURL != "" {
		rs.TargetURL = gh.Ptr(st.DetailsURL)
	}
	if _, _, err := c.api.Repositories.CreateStatus(ctx, owner, name, st.SHA, rs); err != nil {
		return apiError(fmt.Sprintf("set status %q on %s", st.Name, st.SHA), err)
	}
	return nil
}
