// Package commands parses the slash commands people write in pull-request
// comments (/retest, /retest all, /cancel, /ok-to-test).
//
// Parse is a pure function with three outcomes, as in Atlantis' comment
// parser: a command to run, a reply to post at once (a known command used
// wrongly), or nothing to do.
package commands

import (
	"fmt"
	"strings"

	"github.com/cccp-project/cccp/internal/types"
)

// Command is a recognised comment command.
type Command string

// The commands cccp understands.
const (
	None      Command = ""
	Retest    Command = "retest"     // re-run the failed pipelines of the head commit
	RetestAll Command = "retest all" // re-run every pipeline of the head commit
	Cancel    Command = "cancel"     // cancel the running pipelines of the pull request
	OkToTest  Command = "ok-to-test" // approve an outside contributor's head commit (or the commit named)
)

// Result is the outcome of parsing one comment. Exactly one of these holds:
// Command != None; Reply != ""; Ignore.
type Result struct {
	Command Command
	// SHA is the commit /ok-to-test names, lower-case, full length; "" when
	// none is named (the approval is then for the head commented on).
	SHA    string
	Reply  string // markdown to post back, e.g. a usage message
	Ignore bool
}

// Usage is the help text used in replies.
const Usage = "cccp understands these commands, each on its own line:\n\n" +
	"- `/retest`: re-run the failed pipelines of the head commit\n" +
	"- `/retest all`: re-run every pipeline of the head commit\n" +
	"- `/cancel`: cancel the running pipelines of this pull request\n" +
	"- `/ok-to-test`: allow pipelines to run for this head commit (needs write access)\n" +
	"- `/ok-to-test SHA`: allow them for that commit only, given in full (needs write access)\n"

// Parse reads a comment body. A command is a line starting with '/', outside
// fenced or indented code blocks and quotes; the command word is
// case-insensitive. The first known command decides. Unknown words
// (/lgtm, /assign ...) belong to other bots and are ignored.
func Parse(body string) Result {
	body = strings.ReplaceAll(body, "\r\n", "\n")
	fence := "" // the opening fence while inside a fenced code block
	for line := range strings.SplitSeq(body, "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				fence = ""
			}
			continue
		}
		if indent < 4 {
			if f := fenceOf(trimmed); f != "" {
				fence = f
				continue
			}
		}
		if indent >= 4 || strings.HasPrefix(line, "\t") {
			continue // indented code block
		}
		if !strings.HasPrefix(trimmed, "/") {
			continue // prose, quotes ("> /retest"), list items
		}
		if r, ok := parseLine(trimmed); ok {
			return r
		}
	}
	return Result{Ignore: true}
}

// fenceOf returns the fence (``` or ~~~, possibly longer) that opens a code
// block on this line, or "".
func fenceOf(trimmed string) string {
	for _, c := range []string{"`", "~"} {
		n := len(trimmed) - len(strings.TrimLeft(trimmed, c))
		if n >= 3 {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

func parseLine(line string) (Result, bool) {
	fields := strings.Fields(line)
	word := strings.ToLower(fields[0])
	args := fields[1:]
	switch word {
	case "/retest":
		switch {
		case len(args) == 0:
			return Result{Command: Retest}, true
		case len(args) == 1 && strings.EqualFold(args[0], "all"):
			return Result{Command: RetestAll}, true
		}
		return usage(word, args), true
	case "/cancel":
		if len(args) == 0 {
			return Result{Command: Cancel}, true
		}
		return usage(word, args), true
	case "/ok-to-test":
		switch {
		case len(args) == 0:
			return Result{Command: OkToTest}, true
		case len(args) == 1 && types.IsCommitID(strings.ToLower(args[0])):
			return Result{Command: OkToTest, SHA: strings.ToLower(args[0])}, true
		}
		return usage(word, args), true
	}
	return Result{}, false
}

func usage(word string, args []string) Result {
	arg := strings.Join(args, " ")
	const max = 60
	if len(arg) > max {
		arg = strings.ToValidUTF8(arg[:max], "") + "…"
	}
	arg = strings.ReplaceAll(arg, "`", "'")
	return Result{Reply: fmt.Sprintf("`%s` does not take `%s`.\n\n%s", word, arg, Usage)}
}
