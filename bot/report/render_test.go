package report

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cccp-project/cccp/bot/report/reporttest"
)

func FuzzAssemble(f *testing.F) {
	f.Add("head\n", "row\n", "line 1\nline ```2```\nünï\n", 200, 2)
	f.Add("", "", strings.Repeat("é", 300), 50, 1)
	f.Add("h", "r", "```\n````\n", 10, 3)
	f.Fuzz(func(t *testing.T, head, row, log string, limit, n int) {
		if limit < 0 || limit > 1<<16 || n < 0 || n > 5 {
			return
		}
		// head and rows are the bot's own markdown: no fences in them.
		head = "<!-- cccp:pr -->" + "\n" + strings.ReplaceAll(strings.ToValidUTF8(head, ""), "`", "'")
		row = strings.ReplaceAll(strings.ToValidUTF8(row, ""), "`", "'")
		log = strings.ToValidUTF8(log, "")
		var secs []LogSection
		for i := range n {
			l := log + strings.Repeat("x", i)
			secs = append(secs, LogSection{Head: "\n#### h\n\n", Log: l, Fence: FenceFor(l), Tail: "\n[Full log](u)\n"})
		}
		out := Assemble(limit, head, []string{row, row}, "\nfoot\n", secs)
		if len(out) > limit {
			t.Fatalf("%d bytes over limit %d", len(out), limit)
		}
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8: %q", out)
		}
		if len(head)+2*len(row)+len("\nfoot\n") <= limit && !strings.Contains(out, "\nfoot\n") {
			t.Fatalf("the fixed parts fit but were cut: %q", out)
		}
		if open := reporttest.OpenFence(out); open != "" {
			t.Fatalf("fence %q left open: %q", open, out)
		}
	})
}
