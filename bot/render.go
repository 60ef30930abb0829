package bot

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/explain"
	"github.com/cccp-project/cccp/internal/redact"
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

// cutNote starts a log cut at its head to fit the forge's limit.
const cutNote = "[… earlier lines cut to fit]\n"

// logSection is the failure log of one pipeline in a comment: head, then
// the log inside a code fence, then tail. Only the log shrinks.
type logSection struct {
	head, log, tail string
	fence           string
}

func (s logSection) fixedLen() int { return len(s.head) + 2*len(s.fence) + len("\n\n") + len(s.tail) }

func (s logSection) render(log string) string {
	var b strings.Builder
	b.WriteString(s.head)
	b.WriteString(s.fence)
	b.WriteString("\n")
	b.WriteString(log)
	if log != "" && !strings.HasSuffix(log, "\n") {
		b.WriteString("\n")
	}
	b.WriteString(s.fence)
	b.WriteString("\n")
	b.WriteString(s.tail)
	return b.String()
}

// fenceFor returns a backtick fence longer than any backtick run in s.
func fenceFor(s string) string {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// cutHead keeps the end of log in at most budget bytes, at a UTF-8
// boundary and preferably at a line start, with cutNote in front.
func cutHead(log string, budget int) string {
	if len(log) <= budget {
		return log
	}
	keep := budget - len(cutNote)
	if keep <= 0 {
		return ""
	}
	start := len(log) - keep
	for start < len(log) && !utf8.RuneStart(log[start]) {
		start++
	}
	if nl := strings.IndexByte(log[start:], '\n'); nl >= 0 && start+nl+1 < len(log) {
		start += nl + 1
	}
	return cutNote + log[start:]
}

// assemble joins fixed blocks and log sections into at most limit bytes:
// log sections shrink first (their head is cut, the fence stays closed),
// then whole sections are dropped, then table rows.
func assemble(limit int, head string, rows []string, foot string, sections []logSection) string {
	fixed := func(rows []string, secs []logSection) int {
		n := len(head) + len(foot)
		for _, r := range rows {
			n += len(r)
		}
		for _, s := range secs {
			n += s.fixedLen() + len(cutNote) + 1
		}
		return n
	}
	for len(sections) > 0 && fixed(rows, sections) > limit {
		sections = sections[:len(sections)-1]
	}
	dropped := 0
	more := func() string {
		if dropped == 0 {
			return ""
		}
		return fmt.Sprintf("\n_… and %d more pipelines; see cccp's web UI._\n", dropped)
	}
	for len(rows) > 0 && fixed(rows, nil)+len(more()) > limit {
		rows = rows[:len(rows)-1]
		dropped++
	}
	budget := limit - fixed(rows, sections) - len(more())
	budget += len(sections) * (len(cutNote) + 1) // reserved above; cutHead counts the note itself
	// Share the log budget: short logs first, their leftover goes on.
	order := make([]int, len(sections))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(sections[order[a]].log) < len(sections[order[b]].log) })
	logs := make([]string, len(sections))
	for n, i := range order {
		share := budget / (len(sections) - n)
		l := sections[i].log
		if l != "" && !strings.HasSuffix(l, "\n") {
			l += "\n"
		}
		logs[i] = cutHead(l, share)
		budget -= len(logs[i])
	}
	var b strings.Builder
	b.WriteString(head)
	for _, r := range rows {
		b.WriteString(r)
	}
	b.WriteString(more())
	for i, s := range sections {
		b.WriteString(s.render(logs[i]))
	}
	b.WriteString(foot)
	out := b.String()
	if len(out) > limit { // only when head and foot alone do not fit
		out = redact.TruncateUTF8(out, limit)
	}
	return out
}

// ---- run presentation

func stateIcon(s store.State) string {
	switch s {
	case store.Passed:
		return "✅"
	case store.Failed:
		return "❌"
	case store.Cancelled:
		return "🚫"
	case store.Running:
		return "⏳"
	case store.Skipped:
		return "⏭️"
	}
	return "🕒"
}

func eventState(s store.State) event.State {
	switch s {
	case store.Running:
		return event.StateRunning
	case store.Passed:
		return event.StateSuccess
	case store.Failed:
		return event.StateFailure
	case store.Cancelled, store.Skipped:
		return event.StateCancelled
	}
	return event.StateQueued
}

func duration(st store.Stage) string {
	if st.Started.IsZero() {
		return ""
	}
	end := st.Finished
	if end.IsZero() {
		return "…"
	}
	return end.Sub(st.Started).Round(time.Second).String()
}

// failedStage is the first failed stage of a run, or "".
func failedStage(r *store.Run) string {
	for _, st := range r.Stages {
		if st.State == store.Failed {
			return string(st.Name)
		}
	}
	return ""
}

func runTitle(r *store.Run) string {
	switch r.State {
	case store.Passed:
		if r.UpToDate {
			return "up to date, nothing to build"
		}
		if !r.Started.IsZero() && !r.Finished.IsZero() {
			return "passed in " + r.Finished.Sub(r.Started).Round(time.Second).String()
		}
		return "passed"
	case store.Failed:
		if st := failedStage(r); st != "" {
			return "failed at " + st
		}
		return "failed"
	case store.Cancelled:
		return "cancelled"
	case store.Running:
		for _, st := range r.Stages {
			if st.State == store.Running {
				return "running " + string(st.Name)
			}
		}
		return "running"
	}
	return "queued"
}

// stageTable is the markdown table of a run's stages and durations.
func stageTable(r *store.Run) string {
	var b strings.Builder
	b.WriteString("| stage | result | duration |\n| --- | --- | --- |\n")
	for _, st := range r.Stages {
		fmt.Fprintf(&b, "| %s | %s %s | %s |\n", st.Name, stateIcon(st.State), st.State, duration(st))
	}
	return b.String()
}

func stageLine(r *store.Run) string {
	parts := make([]string, 0, len(r.Stages))
	for _, st := range r.Stages {
		p := string(st.Name) + " " + stateIcon(st.State)
		if d := duration(st); d != "" && d != "…" {
			p += " " + d
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " · ")
}

// cleanLog turns log lines into reportable text: timestamps of runlog
// dropped, ANSI stripped, secrets masked, invalid UTF-8 replaced.
func cleanLog(lines []string, m *redact.Masker) string {
	var b strings.Builder
	for _, l := range lines {
		if ts, rest, ok := strings.Cut(l, " "); ok {
			if _, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				l = rest
			}
		}
		l = strings.TrimRight(l, "\r")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return strings.ToValidUTF8(m.String(redact.StripANSI(b.String())), "\uFFFD")
}

func (b *Bot) runURL(id string) string {
	return strings.TrimRight(b.cfg.BaseURL, "/") + "/runs/" + id
}

// failureSection is the section of a failed run that explains the
// failure, if any: the failed checks' own output, then the lines of the
// failed stage's log that the run page highlights (explain.Lines), at most
// LogLines of them, then the stage's error.
func (b *Bot) failureSection(r *store.Run) (logSection, bool) {
	st := failedStage(r)
	if r.State != store.Failed || st == "" {
		return logSection{}, false
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
	log := cleanLog(lines, b.cfg.Masker)
	return logSection{
		head:  fmt.Sprintf("\n#### ❌ %s failed at %s: what explains it\n\n", codeSpan(r.Project), codeSpan(st)),
		log:   log,
		fence: fenceFor(log),
		tail:  fmt.Sprintf("\n[Full log](%s)\n", b.runURL(r.ID)),
	}, true
}

// runStatus derives the forge status of a run.
func (b *Bot) runStatus(r *store.Run, limit int) event.Status {
	st := event.Status{
		Name:        checkName(r.Project),
		SHA:         firstNonEmpty(r.Cause.Commit, r.Commit),
		State:       eventState(r.State),
		Title:       runTitle(r),
		DetailsURL:  b.runURL(r.ID),
		StartedAt:   r.Started,
		CompletedAt: r.Finished,
	}
	summary := fmt.Sprintf("%s run [%s](%s) of %s", r.Kind, r.ID, st.DetailsURL, codeSpan(r.Project))
	if r.Error != "" {
		summary += ": " + b.cfg.Masker.String(r.Error)
	}
	st.Summary = summary + "\n\n" + stageTable(r)
	if sec, ok := b.failureSection(r); ok {
		st.Text = assemble(limit, "", nil, "", []logSection{sec})
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
		return assemble(limit, head.String(), nil, "", nil)
	}
	if rec.Waiting {
		fmt.Fprintf(&head, "⏸️ Pipelines wait for approval: %s does not have write access here. "+
			"Someone with write access can comment `/ok-to-test` to run them for `%s` "+
			"(or `/ok-to-test %s`, which approves that commit only).\n", mdText("@"+rec.Author), short(rec.HeadSHA), rec.HeadSHA)
		return assemble(limit, head.String(), nil, "", nil)
	}
	byKey := newestRuns(runs)
	var rows []string
	var sections []logSection
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
				trial = fmt.Sprintf("%s [%s](%s)", stateIcon(r.State), runTitle(r), b.runURL(r.ID))
				stages = stageLine(r)
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
				codeSpan(k), stateIcon(r.State), runTitle(r), stageLine(r), r.ID, b.runURL(r.ID)))
			if sec, ok := b.failureSection(r); ok {
				sections = append(sections, sec)
			}
		}
	}
	foot := "\n<sub>Comment `/retest` to re-run failed pipelines, `/retest all` to re-run all, `/cancel` to stop them.</sub>\n"
	return assemble(limit, head.String(), rows, foot, sections)
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
			res = stateIcon(r.State) + " " + runTitle(r)
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
