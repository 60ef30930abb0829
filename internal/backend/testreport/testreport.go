// Package testreport is the one JSON form of a test stage's check results
// that crosses a machine boundary: `cccp test --results FILE` writes it
// where the checks ran (a Jenkins agent), and the backend that started that
// work (internal/backend/jenkins) reads it back into backend.CheckResults,
// so the checks table looks the same whichever backend ran.
//
// The format is versioned. A reader accepts exactly the versions it knows
// and says so otherwise; a new field that old readers may ignore does not
// need a new version, a changed meaning does.
//
//	{
//	  "version": 1,
//	  "image": "registry.example.com/app/job@sha256:...",
//	  "entry": "app/job:latest",
//	  "run_id": "42",
//	  "checks": [
//	    {"name": "smoke", "state": "passed", "summary": "still running after 5s"},
//	    {"name": "user-script", "state": "failed", "summary": "test script exited 1",
//	     "findings": ["..."], "explain": ["..."]}
//	  ]
//	}
//
// A report is read from another machine, where a repository's own test
// script ran next to it: Read treats it as hostile input (size limits,
// known check names and states only).
package testreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/types"
)

// Version is the format version Write produces and Read accepts.
const Version = 1

// MaxSize bounds a report Read accepts.
const MaxSize = 4 << 20

// Limits on one check, so that a report cannot flood the run page.
const (
	maxLines    = 200     // findings or explain lines per check
	maxLineSize = 4 << 10 // bytes per line or summary
	maxChecks   = 64      // checks per report
	maxField    = 1 << 10 // bytes of the image, the entry, the run ID
)

// Report is one test stage's results.
type Report struct {
	Version int     `json:"version"`
	Image   string  `json:"image"`            // the image tested, by digest
	Entry   string  `json:"entry,omitempty"`  // the entry's key, app-id/job-id:desired-tag
	RunID   string  `json:"run_id,omitempty"` // cccp's run the test belongs to
	Checks  []Check `json:"checks"`
}

// Check is one check's outcome (backend.CheckResult in JSON).
type Check struct {
	Name     types.CheckName    `json:"name"`
	State    backend.CheckState `json:"state"`
	Summary  string             `json:"summary,omitempty"`
	Findings []string           `json:"findings,omitempty"`
	Explain  []string           `json:"explain,omitempty"`
}

// Write writes r as indented JSON, with Version set.
func Write(w io.Writer, r Report) error {
	r.Version = Version
	if r.Checks == nil {
		r.Checks = []Check{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write test report: %w", err)
	}
	return nil
}

// ErrVersion is returned by Read for a report of a version it does not know.
var ErrVersion = errors.New("unknown test report version")

// Read reads and validates a report of at most MaxSize bytes.
func Read(rd io.Reader) (*Report, error) {
	data, err := io.ReadAll(io.LimitReader(rd, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read test report: %w", err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("test report: larger than %d bytes", MaxSize)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("test report: %w", err)
	}
	if r.Version != Version {
		return nil, fmt.Errorf("test report: %w %d (this cccp reads version %d)", ErrVersion, r.Version, Version)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("test report: %w", err)
	}
	return &r, nil
}

func (r *Report) validate() error {
	for what, s := range map[string]string{"image": r.Image, "entry": r.Entry, "run_id": r.RunID} {
		if len(s) > maxField || !utf8.ValidString(s) {
			return fmt.Errorf("%s: not a short UTF-8 string", what)
		}
	}
	if len(r.Checks) > maxChecks {
		return fmt.Errorf("%d checks, at most %d", len(r.Checks), maxChecks)
	}
	seen := map[types.CheckName]bool{}
	for i, c := range r.Checks {
		if !types.KnownCheck(c.Name) {
			return fmt.Errorf("checks[%d]: unknown check %q", i, c.Name)
		}
		if seen[c.Name] {
			return fmt.Errorf("checks[%d]: check %q reported twice", i, c.Name)
		}
		seen[c.Name] = true
		switch c.State {
		case backend.CheckPassed, backend.CheckFailed, backend.CheckSkipped:
		default:
			return fmt.Errorf("checks[%d] (%s): unknown state %q", i, c.Name, c.State)
		}
		if err := lines(c.Summary); err != nil {
			return fmt.Errorf("checks[%d] (%s): summary: %w", i, c.Name, err)
		}
		for field, ls := range map[string][]string{"findings": c.Findings, "explain": c.Explain} {
			if len(ls) > maxLines {
				return fmt.Errorf("checks[%d] (%s): %d %s lines, at most %d", i, c.Name, len(ls), field, maxLines)
			}
			for _, l := range ls {
				if err := lines(l); err != nil {
					return fmt.Errorf("checks[%d] (%s): %s: %w", i, c.Name, field, err)
				}
			}
		}
	}
	return nil
}

func lines(s string) error {
	if len(s) > maxLineSize {
		return fmt.Errorf("longer than %d bytes", maxLineSize)
	}
	if !utf8.ValidString(s) {
		return errors.New("not UTF-8")
	}
	return nil
}

// CheckResults returns the report's checks as the backend seam's values.
func (r *Report) CheckResults() []backend.CheckResult {
	out := make([]backend.CheckResult, 0, len(r.Checks))
	for _, c := range r.Checks {
		out = append(out, backend.CheckResult{
			Name: c.Name, State: c.State, Summary: c.Summary,
			Findings: c.Findings, Explain: c.Explain,
		})
	}
	return out
}

// FromCheckResults is the inverse of CheckResults.
func FromCheckResults(rs []backend.CheckResult) []Check {
	out := make([]Check, 0, len(rs))
	for _, c := range rs {
		out = append(out, Check{Name: c.Name, State: c.State, Summary: c.Summary, Findings: c.Findings, Explain: c.Explain})
	}
	return out
}
