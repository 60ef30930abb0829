package explain

import "github.com/cccp-project/cccp/internal/store"

// Failure picks what explains a failed run, the same wherever it is quoted
// (the pull-request comment and commit status, the mail): the first failed
// stage, then its lines: each failed check's own output as "check: line"
// (its Explain lines, else its Findings, else its Summary), then at most max
// of the stage log's lines that Lines picks, then "cccp: Reason: Error".
// tail returns the last Window lines of a stage's log (nil when there are
// none). Lines are returned as they are stored, log lines with their
// timestamps: every caller cleans them for where they go. A run without a
// failed stage gives nil.
func Failure(r *store.Run, tail func(stage string) []string, max int) (*store.Stage, []string) {
	var st *store.Stage
	for i := range r.Stages {
		if r.Stages[i].State == store.Failed {
			st = &r.Stages[i]
			break
		}
	}
	if st == nil {
		return nil, nil
	}
	var lines []string
	for _, c := range st.Checks {
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
	if tail != nil {
		log := tail(string(st.Name))
		idx := Lines(log, true)
		if len(idx) > max {
			idx = idx[len(idx)-max:]
		}
		for _, i := range idx {
			lines = append(lines, log[i])
		}
	}
	if st.Error != "" {
		msg := st.Error
		if st.Reason != "" {
			msg = st.Reason + ": " + msg // e.g. DeadlineExceeded: the test stage ran longer than ...
		}
		lines = append(lines, "cccp: "+msg)
	}
	return st, lines
}
