package index

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// Severity says whether a finding fails the lint (error) or is advice
// (warning).
type Severity int

const (
	Error Severity = iota + 1
	Warning
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText writes the severity as "error" or "warning".
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is one problem found while loading or linting, at a place in a
// file. Rule is a short stable name (e.g. "git-url") that tools can match.
type Finding struct {
	Pos      Pos      `json:"pos"`
	Severity Severity `json:"severity"`
	Rule     string   `json:"rule"`
	Message  string   `json:"message"`
}

// String formats the finding as `FILE:LINE:COL: error: MESSAGE (RULE)`.
func (f Finding) String() string {
	return fmt.Sprintf("%s: %s: %s (%s)", f.Pos, f.Severity, f.Message, f.Rule)
}

// MarshalJSON flattens the position into file/line/col.
func (f Finding) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		File     string `json:"file"`
		Line     int    `json:"line"`
		Col      int    `json:"col"`
		Severity string `json:"severity"`
		Rule     string `json:"rule"`
		Message  string `json:"message"`
	}{f.Pos.File, f.Pos.Line, f.Pos.Col, f.Severity.String(), f.Rule, f.Message})
}

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == Error {
			return true
		}
	}
	return false
}

// SortFindings orders findings by file, line, column, then rule.
func SortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Rule, b.Rule),
		)
	})
}

func errorf(p Pos, rule, format string, args ...any) Finding {
	return Finding{Pos: p, Severity: Error, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

func warnf(p Pos, rule, format string, args ...any) Finding {
	return Finding{Pos: p, Severity: Warning, Rule: rule, Message: fmt.Sprintf(format, args...)}
}
