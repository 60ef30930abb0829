package web

import (
	"fmt"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// stageNames are the columns of the dashboard, in pipeline order.
var stageNames = types.Stages

// causeText says in a few words why a run started.
func causeText(c store.Cause) string {
	by := ""
	if c.Actor != "" {
		by = " by " + c.Actor
	}
	switch c.Kind {
	case types.CausePush:
		s := "push"
		if c.Ref != "" {
			s += " to " + strings.TrimPrefix(c.Ref, "refs/heads/")
		}
		if c.Commit != "" {
			s += " at " + shortCommit(c.Commit)
		}
		return s + by
	case types.CausePullRequest:
		s := fmt.Sprintf("PR #%d", c.PR)
		if c.Repo != "" {
			s = c.Repo + " " + s
		}
		if c.Commit != "" {
			s += " at " + shortCommit(c.Commit)
		}
		return s + by
	case types.CauseParent:
		return "parent " + c.Parent + " rebuilt"
	case types.CauseIndex:
		return "index change" + by
	case types.CauseRescan:
		return "periodic rescan"
	case types.CauseManual:
		return "manual" + by
	case types.CauseRetest:
		return "retest" + by
	case types.CausePoll:
		s := "branch moved (polled)"
		if c.Commit != "" {
			s += " to " + shortCommit(c.Commit)
		}
		return s
	case types.CauseBaseImage:
		return "base image changed"
	case "":
		return "unknown"
	}
	return string(c.Kind) + by
}

func shortCommit(c string) string {
	if len(c) > 10 {
		return c[:10]
	}
	return c
}

// shortDigest keeps the algorithm and 12 hex digits.
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}

// human formats a duration briefly: 850ms, 42s, 3m12s, 2h05m, 3d4h.
func human(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// ago says how long before now t was ("" for a zero time).
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < time.Minute {
		return "just now"
	}
	return human(d.Truncate(time.Minute)) + " ago"
}

// stageDuration is how long a stage took, or has taken so far.
func stageDuration(now time.Time, st store.Stage) string {
	switch {
	case st.Started.IsZero():
		return ""
	case st.Finished.IsZero():
		return human(now.Sub(st.Started))
	}
	return human(st.Finished.Sub(st.Started))
}

func runDuration(now time.Time, r *store.Run) string {
	switch {
	case r.Started.IsZero():
		return ""
	case r.Finished.IsZero():
		return human(now.Sub(r.Started))
	}
	return human(r.Finished.Sub(r.Started))
}

// lastTime is when a run last changed.
func lastTime(r *store.Run) time.Time {
	for _, t := range []time.Time{r.Finished, r.Started, r.Created} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// stageCell is one stage's state in a table.
type stageCell struct {
	Name  types.StageName
	State string // "" when the run has no such stage
}

func stageCells(r *store.Run) []stageCell {
	cells := make([]stageCell, len(stageNames))
	for i, n := range stageNames {
		cells[i].Name = n
		if r == nil {
			continue
		}
		for _, st := range r.Stages {
			if st.Name == n {
				cells[i].State = string(st.State)
			}
		}
	}
	return cells
}

// runRow is a run in a list.
type runRow struct {
	Kind                                      types.RunKind
	ID, Project, State, Cause, Commit, Branch string
	When, Duration, Error                     string
	Stages                                    []stageCell
	// UpToDate: the run found its inputs unchanged and built nothing.
	UpToDate bool
	// Waiting says which parents of its cascade a queued run waits on.
	Waiting string
}

// waitingText is "waiting on X, Y" for a run that waits on cascade parents.
func waitingText(r *store.Run) string {
	if r.State != store.Queued || len(r.WaitsOn) == 0 {
		return ""
	}
	return "waiting on " + strings.Join(r.WaitsOn, ", ")
}

func (s *Server) runRow(now time.Time, r *store.Run) runRow {
	return runRow{
		ID: r.ID, Project: r.Project, Kind: r.Kind, State: string(r.State),
		Cause: s.mask.String(causeText(r.Cause)), Commit: shortCommit(r.Commit), Branch: r.Branch,
		When: ago(now, lastTime(r)), Duration: runDuration(now, r), Error: s.mask.String(r.Error),
		Stages: stageCells(r), UpToDate: r.UpToDate, Waiting: waitingText(r),
	}
}

// imageTag is the tag of an image reference ("" for a digest reference).
func imageTag(ref string) string {
	if strings.Contains(ref, "@") {
		return ""
	}
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ""
	}
	return ref[i+1:]
}
