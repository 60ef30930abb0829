// Package explain picks the lines of a failed stage's log that explain the
// failure: the run page highlights them and the pull-request comment shows
// them.
package explain

import "regexp"

// Window is how far from the end of a failed stage's log Explain
// looks: a failing step stops the stage, so what explains it is near the
// end, and an "error" printed early by a step that went on is noise.
const Window = 200

// explainTail is how many last non-empty lines of a failed stage are
// always highlighted: the stage's own last words say why it stopped.
const explainTail = 3

var (
	failureLine = regexp.MustCompile(`(?i)\b(errors?|failed|failure|fatal|panic|denied|traceback|exception|segmentation fault|killed)\b|\bERR!|exit (status|code):? *[1-9]|non-zero (exit )?code|no such file or directory|command not found|\bE: `)
	benignLine  = regexp.MustCompile(`(?i)\b(0|no|zero) (errors?|failures?|failed)\b|\b(errors?|failures?|failed):? *0\b|-W(no-)?error|\berror\.(c|h|go|o|py|rb|js)\b|\bignor(e|ed|ing) errors?\b`)
)

// Lines returns the indexes of the lines that explain why a stage
// failed, in order: within the last Window lines, those that look
// like an error (error, failed, fatal, panic, a non-zero exit status, ...)
// and are not a count of zero errors; plus the last explainTail non-empty
// lines. A stage that did not fail has nothing to explain.
func Lines(lines []string, failed bool) []int {
	if !failed || len(lines) == 0 {
		return nil
	}
	start := max(0, len(lines)-Window)
	mark := make([]bool, len(lines))
	for i := start; i < len(lines); i++ {
		if failureLine.MatchString(lines[i]) && !benignLine.MatchString(lines[i]) {
			mark[i] = true
		}
	}
	for i, n := len(lines)-1, 0; i >= start && n < explainTail; i-- {
		if blank(lines[i]) {
			continue
		}
		mark[i] = true
		n++
	}
	var out []int
	for i, m := range mark {
		if m {
			out = append(out, i)
		}
	}
	return out
}

func blank(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' && s[i] != '\r' {
			return false
		}
	}
	return true
}
