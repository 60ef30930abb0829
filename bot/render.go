package bot

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/internal/explain"
	"github.com/cccp-project/cccp/internal/store"
)

// prMarker finds the bot's one comment on a pull request.
const prMarker = "<!-- cccp:pr -->"

// checkPrefix starts the name of every check and status cccp reports:
// checkName(project) for a run, checkName(indexCheck) for an index pull
// request.
const checkPrefix = "cccp/"

// indexCheck is the project part of the one check of an index pull
// request. No entry key can equal it: keys hold a "/" and a ":".
const indexCheck = "index"

// checkName names the check (status) of a project, keyed as runs are:
// "cccp/" + app-id/job-id:desired-tag, so the entries of one name with
// different desired-tags get a check each.
func checkName(project string) string { return checkPrefix + project }

// checkProject maps a check name back to its project key (or indexCheck);
// ok is false for another app's check.
func checkProject(name string) (project string, ok bool) {
	return strings.CutPrefix(name, checkPrefix)
}

// newestRuns returns the newest run of each project (entry key).
func newestRuns(runs []*store.Run) map[string]*store.Run {
	byKey := map[string]*store.Run{}
	for _, r := range runs {
		if old := byKey[r.Project]; old == nil || runSeq(r.ID) > runSeq(old.ID) {
			byKey[r.Project] = r
		}
	}
	return byKey
}

func (b *Bot) runURL(id string) string {
	return strings.TrimRight(b.cfg.BaseURL, "/") + "/runs/" + id
}

// failureSection is the section of a failed run that explains the
// failure, if any: the failed checks' own output, then the lines of the
// failed stage's log that the run page highlights (explain.Lines), at most
// LogLines of them, then the stage's error.
func (b *Bot) failureSection(r *store.Run) (report.LogSection, bool) {
	st := report.FailedStage(r)
	if r.State != store.Failed || st == "" {
		return report.LogSection{}, false
	}
	var lines []string
	var stageErr string
	for _, s := range r.Stages {
		if string(s.Name) != st {
			continue
		}
		stageErr = s.Error
		if s.Reason != "" && s.Error != "" {
			stageErr = s.Reason + ": " + s.Error // e.g. DeadlineExceeded: the test stage ran longer than ...
		}
		for _, c := range s.Checks {
			if c.State != store.Failed {
				continue
			}
			out := c.Explain
			if len(out) == 0 {
				out = c.Findings
			}
			if len(out) == 0 && c.Summary != "" {
				out = []string{c.Summary}
			}
			for _, l := range out {
				lines = append(lines, string(c.Name)+": "+l)
			}
		}
	}
	if b.cfg.LogTail != nil {
		tail, err := b.cfg.LogTail(r.ID, st, explain.Window)
		if err != nil {
			b.log.Warn("tail failed stage log", "run", r.ID, "stage", st, "err", err)
		}
		idx := explain.Lines(tail, true)
		if len(idx) > b.cfg.LogLines {
			idx = idx[len(idx)-b.cfg.LogLines:]
		}
		for _, i := range idx {
			lines = append(lines, tail[i])
		}
	}
	if stageErr != "" {
		lines = append(lines, "cccp: "+stageErr)
	}
	log := report.CleanLog(lines, b.cfg.Masker)
	return report.LogSection{
		Head:  fmt.Sprintf("\n#### ❌ %s failed at %s: what explains it\n\n", codeSpan(r.Project), codeSpan(st)),
		Log:   log,
		Fence: report.FenceFor(log),
		Tail:  fmt.Sprintf("\n[Full log](%s)\n", b.runURL(r.ID)),
	}, true
}

// runStatus derives the forge status of a run.
func (b *Bot) runStatus(r *store.Run, limit int) event.Status {
	st := event.Status{
		Name:        checkName(r.Project),
		SHA:         firstNonEmpty(r.Cause.Commit, r.Commit),
		State:       report.EventState(r.State),
		Title:       report.RunTitle(r),
		DetailsURL:  b.runURL(r.ID),
		StartedAt:   r.Started,
		CompletedAt: r.Finished,
	}
	summary := fmt.Sprintf("%s run [%s](%s) of %s", r.Kind, r.ID, st.DetailsURL, codeSpan(r.Project))
	if r.Error != "" {
		summary += ": " + b.cfg.Masker.String(r.Error)
	}
	st.Summary = summary + "\n\n" + report.StageTable(r)
	if sec, ok := b.failureSection(r); ok {
		st.Text = report.Assemble(limit, "", nil, "", []report.LogSection{sec})
	}
	return st
}

// renderComment renders the one pull-request comment, at most limit bytes.
func (b *Bot) renderComment(rec *prRecord, runs []*store.Run, limit int) string {
	var head strings.Builder
	head.WriteString(prMarker + "\n")
	if rec.Index {
		fmt.Fprintf(&head, "### cccp: index check of `%s`\n\n", short(rec.HeadSHA))
	} else {
		fmt.Fprintf(&head, "### cccp: pipelines of `%s`\n\n", short(rec.HeadSHA))
	}
	if rec.Draft {
		fmt.Fprintf(&head, "⏸️ This pull request is a draft: its pipelines run once it is marked ready for review.\n")
		return report.Assemble(limit, head.String(), nil, "", nil)
	}
	if rec.Waiting {
		fmt.Fprintf(&head, "⏸️ Pipelines wait for approval: %s does not have write access here. "+
			"Someone with write access can comment `/ok-to-test` to run them for `%s` "+
			"(or `/ok-to-test %s`, which approves that commit only).\n", mdText("@"+rec.Author), short(rec.HeadSHA), rec.HeadSHA)
		return report.Assemble(limit, head.String(), nil, "", nil)
	}
	byKey := newestRuns(runs)
	var rows []string
	var sections []report.LogSection
	if l := rec.Lint; rec.Index && l != nil {
		switch {
		case l.Error != "":
			fmt.Fprintf(&head, "❌ The index could not be checked: %s\n", codeSpan(l.Error))
		case l.StructErr:
			head.WriteString("❌ Index structure:\n")
		case len(l.Structure) > 0:
			head.WriteString("⚠️ Index structure:\n")
		default:
			head.WriteString("✅ Index structure: no duplicates, no cycles.\n")
		}
		for _, f := range l.Structure {
			fmt.Fprintf(&head, "- %s\n", codeSpan(f))
		}
		if len(l.Removed) > 0 {
			removed := make([]string, len(l.Removed))
			for i, k := range l.Removed {
				removed[i] = codeSpan(k)
			}
			fmt.Fprintf(&head, "\nRemoved entries: %s\n", strings.Join(removed, ", "))
		}
		head.WriteString("\n| entry | lint | trial build | stages |\n| --- | --- | --- | --- |\n")
		for _, e := range l.Entries {
			lint := "✅ ok"
			if e.Failed {
				lint = "❌ errors"
			} else if len(e.Findings) > 0 {
				lint = "⚠️ warnings"
			}
			trial, stages := "not run", ""
			if r := byKey[e.Key]; r != nil {
				trial = fmt.Sprintf("%s [%s](%s)", report.StateIcon(r.State), report.RunTitle(r), b.runURL(r.ID))
				stages = report.StageLine(r)
				if sec, ok := b.failureSection(r); ok {
					sections = append(sections, sec)
				}
			}
			row := fmt.Sprintf("| %s | %s | %s | %s |\n", codeSpan(e.Key), lint, trial, stages)
			for _, f := range e.Findings {
				row += fmt.Sprintf("| | %s | | |\n", codeSpan(f))
			}
			rows = append(rows, row)
		}
	} else if len(byKey) > 0 {
		head.WriteString("| pipeline | result | stages | run |\n| --- | --- | --- | --- |\n")
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			r := byKey[k]
			rows = append(rows, fmt.Sprintf("| %s | %s %s | %s | [%s](%s) |\n",
				codeSpan(k), report.StateIcon(r.State), report.RunTitle(r), report.StageLine(r), r.ID, b.runURL(r.ID)))
			if sec, ok := b.failureSection(r); ok {
				sections = append(sections, sec)
			}
		}
	}
	foot := "\n<sub>Comment `/retest` to re-run failed pipelines, `/retest all` to re-run all, `/cancel` to stop them.</sub>\n"
	return report.Assemble(limit, head.String(), rows, foot, sections)
}

// indexStatus is the one check of an index pull request.
func (b *Bot) indexStatus(rec *prRecord, runs []*store.Run) event.Status {
	st := event.Status{Name: checkName(indexCheck), SHA: rec.HeadSHA, Title: "index check"}
	l := rec.Lint
	byKey := newestRuns(runs)
	running, failed := false, false
	if rec.Waiting {
		st.State, st.Title, st.Summary = event.StateQueued, waitingTitle, waitingSummary(rec)
		return st
	}
	if l == nil {
		st.State, st.Title = event.StateQueued, "waiting"
		return st
	}
	if l.Error != "" {
		st.State, st.Title = event.StateError, "the index could not be checked"
		return st
	}
	failed = l.StructErr
	var summary strings.Builder
	summary.WriteString("| entry | lint | trial build |\n| --- | --- | --- |\n")
	for _, e := range l.Entries {
		failed = failed || e.Failed
		res := "not run"
		if r := byKey[e.Key]; r != nil {
			res = report.StateIcon(r.State) + " " + report.RunTitle(r)
			switch {
			case !r.State.Done():
				running = true
			case r.State != store.Passed:
				failed = true
			}
		}
		lint := "✅"
		if e.Failed {
			lint = "❌"
		}
		fmt.Fprintf(&summary, "| %s | %s | %s |\n", codeSpan(e.Key), lint, res)
	}
	st.Summary = summary.String()
	switch {
	case running:
		st.State, st.Title = event.StateRunning, "trial builds running"
	case failed:
		st.State, st.Title = event.StateFailure, "index check failed"
	default:
		st.State, st.Title = event.StateSuccess, fmt.Sprintf("%d entries checked", len(l.Entries))
	}
	return st
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
