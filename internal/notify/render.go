package notify

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"fmt"
	"strings"
	"text/template"
	"time"
	"unicode"

	"github.com/cccp-project/cccp/internal/explain"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/textcut"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	// row is one line of a table, without trailing blanks.
	"row": func(format string, args ...any) string { return strings.TrimRight(fmt.Sprintf(format, args...), " ") },
}).ParseFS(templateFS, "templates/*.tmpl"))

// maxLine bounds one quoted line: a log line can be megabytes long.
const maxLine = 400

// runView is what the run template sees. Every string in it is already
// cleaned: no control characters, secrets masked.
type runView struct {
	Project, ID, Title, URL string
	Cause, Commit, Branch   string
	FailedStage, Reason     string
	Lines                   []string
	Stages                  []stageView
	Images                  []string
}

type stageView struct{ Name, State, Duration string }

// render makes the mail of finished run r (without recipients).
func (n *Notifier) render(ctx context.Context, r *store.Run) (store.Mail, error) {
	v := runView{
		Project: headerText(r.Project),
		ID:      r.ID,
		Title:   title(r),
		URL:     n.cfg.BaseURL + "/runs/" + r.ID,
		Cause:   n.clean(causeText(r.Cause)),
		Commit:  n.clean(cmp.Or(r.Commit, r.Cause.Commit)),
		Branch:  n.clean(r.Branch),
	}
	for _, st := range r.Stages {
		v.Stages = append(v.Stages, stageView{Name: string(st.Name), State: string(st.State), Duration: duration(st)})
	}
	if r.State == store.Passed {
		for _, im := range r.Images {
			v.Images = append(v.Images, n.clean(im.Ref+"@"+im.Digest))
		}
	}
	if r.State == store.Failed {
		v.FailedStage, v.Reason, v.Lines = n.failure(ctx, r)
		if v.FailedStage == "" && r.Error != "" {
			v.Lines = []string{n.clean("cccp: " + r.Error)}
		}
	}
	var subj, body bytes.Buffer
	if err := templates.ExecuteTemplate(&subj, "subject", v); err != nil {
		return store.Mail{}, fmt.Errorf("render subject of run %s: %w", r.ID, err)
	}
	if err := templates.ExecuteTemplate(&body, "body", v); err != nil {
		return store.Mail{}, fmt.Errorf("render mail of run %s: %w", r.ID, err)
	}
	return store.Mail{RunID: r.ID, Subject: headerText(subj.String()), Text: body.String()}, nil
}

// failure is the failed stage, its reason and the lines that explain it,
// cleaned for a mail: the lines explain.Failure picks, the same the
// pull-request comment quotes.
func (n *Notifier) failure(ctx context.Context, r *store.Run) (stage, reason string, lines []string) {
	var tail func(string) []string
	if n.cfg.LogTail != nil && ctx.Err() == nil {
		tail = func(stage string) []string {
			lines, err := n.cfg.LogTail(r.ID, stage, explain.Window)
			if err != nil {
				n.log.Warn("tail failed stage log", "run", r.ID, "stage", stage, "err", err)
			}
			return lines
		}
	}
	st, lines := explain.Failure(r, tail, n.cfg.LogLines)
	if st == nil {
		return "", "", nil
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		_, l, _ = runlog.SplitLine(l) // log lines carry runlog's timestamp
		if l = n.clean(l); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return string(st.Name), n.clean(st.Reason), out
}

// clean makes one line of hostile text fit for the mail: ANSI stripped,
// secrets masked, invalid UTF-8 replaced, control characters dropped,
// at most maxLine bytes.
func (n *Notifier) clean(s string) string {
	return textcut.Bytes(bodyLine(n.cfg.Masker.String(redact.StripANSI(s))), maxLine)
}

// bodyLine drops control characters (tabs become spaces) and replaces
// invalid UTF-8.
func bodyLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
}

// bodyText cleans a whole text body line by line.
func bodyText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = bodyLine(l)
	}
	return strings.Join(lines, "\n")
}

// headerText is s on one line, fit for a Subject header.
func headerText(s string) string {
	return textcut.Bytes(strings.Join(strings.Fields(bodyLine(strings.ReplaceAll(s, "\n", " "))), " "), 200)
}

func title(r *store.Run) string {
	switch r.State {
	case store.Passed:
		if !r.Started.IsZero() && !r.Finished.IsZero() {
			return "passed in " + r.Finished.Sub(r.Started).Round(time.Second).String()
		}
		return "passed"
	case store.Failed:
		for _, st := range r.Stages {
			if st.State == store.Failed {
				return "FAILED at " + string(st.Name)
			}
		}
		return "FAILED"
	}
	return string(r.State)
}

// causeText says why the run started, in a few words.
func causeText(c store.Cause) string {
	s := string(c.Kind)
	if s == "" {
		s = "unknown"
	}
	if c.Parent != "" {
		s += " " + c.Parent
	}
	if c.Actor != "" {
		s += " by " + c.Actor
	}
	if c.Detail != "" {
		s += " (" + c.Detail + ")"
	}
	return s
}

func duration(st store.Stage) string {
	if st.Started.IsZero() || st.Finished.IsZero() {
		return ""
	}
	return st.Finished.Sub(st.Started).Round(time.Second).String()
}
