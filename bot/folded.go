package bot

import (
	"cmp"
	"fmt"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/internal/store"
)

// foldedStatuses are the final statuses of the commits folded into run: a
// newer push of the same branch or pull request replaced each one while
// the run waited in the queue, so each is reported cancelled, saying by
// which run and commit, instead of staying "queued" on the forge forever.
// A folded commit that is the run's own commit again gets none.
func (b *Bot) foldedStatuses(r *store.Run) []event.Status {
	var out []event.Status
	own := cmp.Or(r.Cause.Commit, r.Commit)
	seen := map[string]bool{own: true}
	for i := len(r.Folded) - 1; i >= 0; i-- { // the newest fold of a commit says it best
		f := r.Folded[i]
		sha := cmp.Or(f.Cause.Commit, f.Commit)
		if sha == "" || seen[sha] || f.Cause.Forge != r.Cause.Forge || f.Cause.Repo != r.Cause.Repo {
			continue
		}
		seen[sha] = true
		reason := "superseded by run " + r.ID
		if f.By != "" {
			reason += fmt.Sprintf(" (commit %s)", shortSHA(f.By))
		}
		url := b.runURL(r.ID)
		out = append(out, event.Status{
			Name:        checkName(r.Project),
			SHA:         sha,
			State:       event.StateCancelled,
			Title:       "cancelled: " + reason,
			Summary:     fmt.Sprintf("%s run [%s](%s) of %s: %s, before it started.", r.Kind, r.ID, url, report.CodeSpan(r.Project), reason),
			DetailsURL:  url,
			CompletedAt: f.At,
		})
	}
	return out
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
