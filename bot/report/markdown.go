package report

import (
	"strings"
	"unicode"

	"github.com/cccp-project/cccp/internal/textcut"
)

// CodeSpan renders s, which a stranger may control (an entry key of an
// index pull request, a finding), as one inline code span that stays on its
// line and in its table cell: backticks, line breaks, table pipes and
// control characters cannot end it.
func CodeSpan(s string) string {
	return "`" + strings.ReplaceAll(oneLine(strings.ReplaceAll(s, "`", "'"), 200), "|", `\|`) + "`"
}

// MDText renders s as plain text in markdown: every character markdown or
// HTML could read as markup is escaped.
func MDText(s string) string {
	var b strings.Builder
	for _, r := range oneLine(s, 200) {
		if strings.ContainsRune("\\`*_{}[]()<>#!|~&@", r) && !(r == '@' && b.Len() == 0) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// oneLine drops control characters and line breaks (a space instead) and
// cuts s at max bytes.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > max {
		s = textcut.Bytes(s, max) + "…"
	}
	return s
}
