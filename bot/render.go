package bot

import (
	"cmp"
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
// failure, if any: the lines explain.Failure picks (the failed checks' own
// output, at most LogLines of the log lines the run page highlights, the
// stage's error).
func (b *Bot) failureSection(r *store.Run) (report.LogSection, bool) {
	if r.State != store.Failed {
		return report.LogSection{}, false
	}
	var tail func(string) []string
	if b.cfg.LogTail != nil {
		tail = func(stage string) []string {
			lines, err := b.cfg.LogTail(r.ID, stage, explain.Window)
			if err != nil {
				b.log.Warn("tail failed stage log", "run", r.ID, "stage", stage, "err", err)
			}
			return lines
		}
	}
	stage, lines := explain.Failure(r, tail, b.cfg.LogLines)
	if stage == nil {
		return report.LogSection{}, false
	}
	st := string(stage.Name)
	log := report.CleanLog(lines, b.cfg.Masker)
	return report.LogSection{
		Head:  b.tmpl.Render("failure-head", map[string]string{"Project": r.Project, "Stage": st}),
		Log:   log,
		Fence: report.FenceFor(log),
		Tail:  b.tmpl.Render("failure-tail", map[string]string{"URL": b.runURL(r.ID)}),
	}, true
}

// runStatus derives the forge status of a run.
func (b *Bot) runStatus(r *store.Run, limit int) event.Status {
	st := event.Status{
		Name:        checkName(r.Project),
		SHA:         cmp.Or(r.Cause.Commit, r.Commit),
		State:       report.EventState(r.State),
		Title:       report.RunTitle(r),
		DetailsURL:  b.runURL(r.ID),
		StartedAt:   r.Started,
		CompletedAt: r.Finished,
	}
	st.Summary = b.tmpl.Render("run-summary", map[string]any{"Run": r, "URL": st.DetailsURL, "Error": b.cfg.Masker.String(r.Error)})
	if sec, ok := b.failureSection(r); ok {
		st.Text = report.Assemble(limit, "", nil, "", []report.LogSection{sec})
	}
	return st
}

// renderComment renders the one pull-request comment, at most limit bytes:
// what is shown is decided here, the words are the templates'
// (bot/report/templates).
func (b *Bot) renderComment(rec *prRecord, runs []*store.Run, limit int) string {
	head := b.tmpl.Render("head", map[string]any{"Marker": prMarker, "Index": rec.Index, "SHA": rec.HeadSHA})
	if rec.Draft {
		return report.Assemble(limit, head+b.tmpl.Render("draft", nil), nil, "", nil)
	}
	if rec.Waiting {
		return report.Assemble(limit, head+b.tmpl.Render("waiting", map[string]string{"Author": rec.Author, "SHA": rec.HeadSHA}), nil, "", nil)
	}
	byKey := newestRuns(runs)
	var rows []string
	var sections []report.LogSection
	if l := rec.Lint; rec.Index && l != nil {
		head += b.tmpl.Render("index-structure", l)
		for _, e := range l.Entries {
			lint := "✅ ok"
			if e.Failed {
				lint = "❌ errors"
			} else if len(e.Findings) > 0 {
				lint = "⚠️ warnings"
			}
			row := map[string]any{"Key": e.Key, "Lint": lint, "Findings": e.Findings, "Run": (*store.Run)(nil), "URL": ""}
			if r := byKey[e.Key]; r != nil {
				row["Run"], row["URL"] = r, b.runURL(r.ID)
				if sec, ok := b.failureSection(r); ok {
					sections = append(sections, sec)
				}
			}
			rows = append(rows, b.tmpl.Render("index-row", row))
		}
	} else if len(byKey) > 0 {
		head += b.tmpl.Render("pipelines-header", nil)
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			r := byKey[k]
			rows = append(rows, b.tmpl.Render("pipeline-row", report.RunLink{Run: r, URL: b.runURL(r.ID)}))
			if sec, ok := b.failureSection(r); ok {
				sections = append(sections, sec)
			}
		}
	}
	return report.Assemble(limit, head, rows, b.tmpl.Render("foot", nil), sections)
}

// indexStatus is the one check of an index pull request.
func (b *Bot) indexStatus(rec *prRecord, runs []*store.Run) event.Status {
	st := event.Status{Name: checkName(indexCheck), SHA: rec.HeadSHA, Title: "index check"}
	l := rec.Lint
	byKey := newestRuns(runs)
	running, failed := false, false
	if rec.Waiting {
		st.State, st.Title, st.Summary = event.StateQueued, waitingTitle, b.waitingSummary(rec)
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
	type row struct {
		entryLint
		Run *store.Run
	}
	rows := make([]row, 0, len(l.Entries))
	for _, e := range l.Entries {
		failed = failed || e.Failed
		r := byKey[e.Key]
		if r != nil {
			switch {
			case !r.State.Done():
				running = true
			case r.State != store.Passed:
				failed = true
			}
		}
		rows = append(rows, row{e, r})
	}
	st.Summary = b.tmpl.Render("index-summary", rows)
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
