package checks

import (
	"fmt"
	"io"

	"github.com/cccp-project/cccp/internal/dockerlint"
)

// Lint checks a Dockerfile with BuildKit's linter. Warnings are findings
// of a passing check; a Dockerfile that does not parse fails it.
func Lint(name string, dockerfile []byte, log io.Writer) Result {
	findings, err := dockerlint.Lint(name, dockerfile)
	if err != nil {
		fmt.Fprintln(log, err)
		return Result{Name: "lint", Summary: err.Error(), Findings: []string{err.Error()}}
	}
	res := Result{Name: "lint", Passed: true, Summary: "no lint warnings"}
	for _, f := range findings {
		s := fmt.Sprintf("%s:%d: %s: %s (%s)", name, f.Line, f.Rule, f.Message, f.URL)
		fmt.Fprintln(log, s)
		res.Findings = append(res.Findings, s)
	}
	if len(findings) > 0 {
		res.Summary = fmt.Sprintf("%d lint warnings", len(findings))
	}
	return res
}
