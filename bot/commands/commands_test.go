package commands

import (
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/types"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		want  Command
		sha   string
		reply bool // a usage reply is expected
	}{
		{name: "retest", body: "/retest", want: Retest},
		{name: "retest upper case", body: "/ReTest", want: Retest},
		{name: "retest trailing space and CRLF", body: "/retest  \r\n", want: Retest},
		{name: "retest all", body: "/retest all", want: RetestAll},
		{name: "retest ALL", body: "/retest ALL", want: RetestAll},
		{name: "cancel", body: "/cancel", want: Cancel},
		{name: "ok-to-test", body: "/ok-to-test", want: OkToTest},
		{name: "inside prose", body: "Looks flaky.\n\n/retest\n\nthanks", want: Retest},
		{name: "leading spaces", body: "   /retest", want: Retest},
		{name: "first command wins", body: "/cancel\n/retest", want: Cancel},
		{name: "other bot first", body: "/lgtm\n/retest", want: Retest},
		{name: "quoted", body: "> /retest\nno", want: None},
		{name: "quoted then real", body: "> /cancel\n/retest all", want: RetestAll},
		{name: "fenced code", body: "```\n/retest\n```", want: None},
		{name: "fenced tilde with info", body: "~~~sh\n/retest\n~~~\n", want: None},
		{name: "after fenced code", body: "```\n/cancel\n```\n/retest", want: Retest},
		{name: "unclosed fence", body: "```\n/retest", want: None},
		{name: "indented code", body: "text\n\n    /retest\n", want: None},
		{name: "tab code", body: "\t/retest", want: None},
		{name: "inline code", body: "type `/retest` to rerun", want: None},
		{name: "mid line", body: "please /retest", want: None},
		{name: "unknown command", body: "/lgtm", want: None},
		{name: "prefix of known", body: "/retesting", want: None},
		{name: "empty", body: "", want: None},
		{name: "slash alone", body: "/", want: None},
		{name: "retest unknown arg", body: "/retest foo", reply: true},
		{name: "retest all extra", body: "/retest all now", reply: true},
		{name: "cancel arg", body: "/cancel everything", reply: true},
		{name: "ok-to-test abbreviated sha", body: "/ok-to-test abc123", reply: true},
		{name: "ok-to-test sha", body: "/ok-to-test 2222222222222222222222222222222222222222", want: OkToTest, sha: "2222222222222222222222222222222222222222"},
		{name: "ok-to-test upper-case sha", body: "/OK-TO-TEST DA1560886D4F094C3E6C9EF40349F7D38B5D27D7\n", want: OkToTest, sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
		{name: "ok-to-test sha256", body: "/ok-to-test " + strings.Repeat("ab", 32), want: OkToTest, sha: strings.Repeat("ab", 32)},
		{name: "ok-to-test not hex", body: "/ok-to-test " + strings.Repeat("g", 40), reply: true},
		{name: "ok-to-test two shas", body: "/ok-to-test " + strings.Repeat("a", 40) + " " + strings.Repeat("b", 40), reply: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse(tt.body)
			if tt.reply {
				if got.Reply == "" || got.Command != None || got.Ignore {
					t.Fatalf("Parse(%q) = %+v, want a usage reply", tt.body, got)
				}
				if !strings.Contains(got.Reply, "/retest all") {
					t.Errorf("reply %q lacks the usage", got.Reply)
				}
				return
			}
			if got.Command != tt.want || got.SHA != tt.sha || got.Reply != "" {
				t.Fatalf("Parse(%q) = %+v, want command %q", tt.body, got, tt.want)
			}
			if got.Ignore != (tt.want == None) {
				t.Errorf("Parse(%q).Ignore = %v", tt.body, got.Ignore)
			}
		})
	}
}

func TestReplyQuotesArgumentSafely(t *testing.T) {
	r := Parse("/retest `" + strings.Repeat("é", 100))
	if strings.Count(r.Reply, "`")%2 != 0 {
		t.Errorf("unbalanced backticks in %q", r.Reply)
	}
	if !strings.Contains(r.Reply, "…") {
		t.Errorf("long argument not cut: %q", r.Reply)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"/retest", "/retest all", "> /cancel", "```\n/retest\n```", "/ok-to-test x", "/retest \xff", "    /cancel",
		"/ok-to-test 2222222222222222222222222222222222222222"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		a, b := Parse(body), Parse(body)
		if a != b {
			t.Fatalf("not deterministic: %+v vs %+v", a, b)
		}
		if a.SHA != "" && (a.Command != OkToTest || !types.IsCommitID(a.SHA) || a.SHA != strings.ToLower(a.SHA)) {
			t.Fatalf("SHA %q with command %q", a.SHA, a.Command)
		}
		outcomes := 0
		if a.Command != None {
			outcomes++
		}
		if a.Reply != "" {
			outcomes++
		}
		if a.Ignore {
			outcomes++
		}
		if outcomes != 1 {
			t.Fatalf("Parse(%q) = %+v: want exactly one outcome", body, a)
		}
	})
}
