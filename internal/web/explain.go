package web

import "github.com/cccp-project/cccp/internal/explain"

// Explain returns the indexes of the lines that explain why a stage
// failed (explain.Lines; the pull-request comment shows the same lines).
func Explain(lines []string, failed bool) []int { return explain.Lines(lines, failed) }
