package bot

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/textcut"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
)

// waitingTitle is the title of the statuses of a pull request waiting for
// approval: the checks a branch protection requires show why nothing runs.
const waitingTitle = "waiting for /ok-to-test"

// waitingReports are a pending status for each pipeline a waiting pull
// request would run, saying what it waits for.
func waitingReports(rec *prRecord) ([]store.Report, error) {
	if !rec.Waiting || rec.Index {
		return nil, nil // an index pull request's one check says it itself (indexStatus)
	}
	var out []store.Report
	for _, project := range rec.WaitingFor {
		st := event.Status{Name: checkName(project), SHA: rec.HeadSHA, State: event.StateQueued, Title: waitingTitle,
			Summary: waitingSummary(rec)}
		rep, err := report.Make(report.KindStatus, report.StatusKey(rec.Forge, rec.Repo, st), report.Payload{Forge: rec.Forge, Repo: rec.Repo, Status: &st})
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

func waitingSummary(rec *prRecord) string {
	return fmt.Sprintf("%s does not have write access here. Someone with write access can comment `/ok-to-test %s` "+
		"after reviewing this commit to run the pipelines.", mdText("@"+rec.Author), rec.HeadSHA)
}

// codeSpan renders s, which a stranger may control (an entry key of an
// index pull request, a finding), as one inline code span that stays on its
// line and in its table cell: backticks, line breaks, table pipes and
// control characters cannot end it.
func codeSpan(s string) string {
	return "`" + strings.ReplaceAll(oneLine(strings.ReplaceAll(s, "`", "'"), 200), "|", `\|`) + "`"
}

// mdText renders s as plain text in markdown: every character markdown or
// HTML could read as markup is escaped.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range oneLine(s, 200) {
		if strings.ContainsRune("\\`*_{}[]()<>#!|~&@", r) && !(r == '@' && b.Len() == 0) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// oneLine drops control characters and line breaks (a space instead) and
// cuts s at max bytes.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > max {
		s = textcut.Bytes(s, max) + "…"
	}
	return s
}
