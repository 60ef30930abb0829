package report

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/textcut"
)

// CutNote starts a log cut at its head to fit the forge's limit.
const CutNote = "[… earlier lines cut to fit]\n"

// LogSection is the failure log of one pipeline in a comment: head, then
// the log inside a code fence, then tail. Only the log shrinks.
type LogSection struct {
	Head, Log, Tail string
	Fence           string
}

func (s LogSection) fixedLen() int { return len(s.Head) + 2*len(s.Fence) + len("\n\n") + len(s.Tail) }

func (s LogSection) render(log string) string {
	var b strings.Builder
	b.WriteString(s.Head)
	b.WriteString(s.Fence)
	b.WriteString("\n")
	b.WriteString(log)
	if log != "" && !strings.HasSuffix(log, "\n") {
		b.WriteString("\n")
	}
	b.WriteString(s.Fence)
	b.WriteString("\n")
	b.WriteString(s.Tail)
	return b.String()
}

// FenceFor returns a backtick fence longer than any backtick run in s.
func FenceFor(s string) string {
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
// boundary and preferably at a line start, with CutNote in front.
func cutHead(log string, budget int) string {
	if len(log) <= budget {
		return log
	}
	keep := budget - len(CutNote)
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
	return CutNote + log[start:]
}

// Assemble joins fixed blocks and log sections into at most limit bytes:
// log sections shrink first (their head is cut, the fence stays closed),
// then whole sections are dropped, then table rows.
func Assemble(limit int, head string, rows []string, foot string, sections []LogSection) string {
	fixed := func(rows []string, secs []LogSection) int {
		n := len(head) + len(foot)
		for _, r := range rows {
			n += len(r)
		}
		for _, s := range secs {
			n += s.fixedLen() + len(CutNote) + 1
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
	budget += len(sections) * (len(CutNote) + 1) // reserved above; cutHead counts the note itself
	// Share the log budget: short logs first, their leftover goes on.
	order := make([]int, len(sections))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(sections[order[a]].Log) < len(sections[order[b]].Log) })
	logs := make([]string, len(sections))
	for n, i := range order {
		share := budget / (len(sections) - n)
		l := sections[i].Log
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
		out = textcut.Bytes(out, limit)
	}
	return out
}

// ---- run presentation

func StateIcon(s store.State) string {
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

func EventState(s store.State) event.State {
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

// FailedStage is the first failed stage of a run, or "".
func FailedStage(r *store.Run) string {
	for _, st := range r.Stages {
		if st.State == store.Failed {
			return string(st.Name)
		}
	}
	return ""
}

func RunTitle(r *store.Run) string {
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
		if st := FailedStage(r); st != "" {
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

// StageTable is the markdown table of a run's stages and durations.
func StageTable(r *store.Run) string {
	var b strings.Builder
	b.WriteString("| stage | result | duration |\n| --- | --- | --- |\n")
	for _, st := range r.Stages {
		fmt.Fprintf(&b, "| %s | %s %s | %s |\n", st.Name, StateIcon(st.State), st.State, duration(st))
	}
	return b.String()
}

func StageLine(r *store.Run) string {
	parts := make([]string, 0, len(r.Stages))
	for _, st := range r.Stages {
		p := string(st.Name) + " " + StateIcon(st.State)
		if d := duration(st); d != "" && d != "…" {
			p += " " + d
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " · ")
}

// CleanLog turns log lines into reportable text: timestamps of runlog
// dropped, ANSI stripped, secrets masked, invalid UTF-8 replaced.
func CleanLog(lines []string, m *redact.Masker) string {
	var b strings.Builder
	for _, l := range lines {
		_, l, _ = runlog.SplitLine(l)
		l = strings.TrimRight(l, "\r")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return strings.ToValidUTF8(m.String(redact.StripANSI(b.String())), "\uFFFD")
}
