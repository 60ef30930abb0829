package bot

import (
	"github.com/cccp-project/cccp/internal/store"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
)

// waitingTitle is the title of the statuses of a pull request waiting for
// approval: the checks a branch protection requires show why nothing runs.
const waitingTitle = "waiting for /ok-to-test"

// waitingReports are a pending status for each pipeline a waiting pull
// request would run, saying what it waits for.
func (b *Bot) waitingReports(rec *prRecord) ([]store.Report, error) {
	if !rec.Waiting || rec.Index {
		return nil, nil // an index pull request's one check says it itself (indexStatus)
	}
	var out []store.Report
	for _, project := range rec.WaitingFor {
		st := event.Status{Name: checkName(project), SHA: rec.HeadSHA, State: event.StateQueued, Title: waitingTitle,
			Summary: b.waitingSummary(rec)}
		rep, err := report.Make(report.KindStatus, report.StatusKey(rec.Forge, rec.Repo, st), report.Payload{Forge: rec.Forge, Repo: rec.Repo, Status: &st})
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

func (b *Bot) waitingSummary(rec *prRecord) string {
	return b.tmpl.Render("waiting-summary", map[string]string{"Author": rec.Author, "SHA": rec.HeadSHA})
}
