package dockerlint

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestLintFindings(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // "line:Rule", in order
	}{
		{
			name: "rules from parser and from the dockerfile2llb lint path",
			file: "warnings.Dockerfile",
			want: []string{
				"1:StageNameCasing",
				"1:ConsistentInstructionCasing",
				"2:MaintainerDeprecated",
				"3:LegacyKeyValueFormat",
				"4:WorkdirRelativePath",
				"6:UndefinedVar",
				"7:JSONArgsRecommended",
				"11:ConsistentInstructionCasing",
			},
		},
		{name: "clean file", file: "clean.Dockerfile", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			findings, err := Lint(tt.file, content)
			if err != nil {
				t.Fatalf("Lint: %v", err)
			}
			var got []string
			for _, f := range findings {
				got = append(got, f.Rule+"@"+strconv.Itoa(f.Line))
				if f.URL == "" || f.Message == "" {
					t.Errorf("finding %+v lacks URL or message", f)
				}
			}
			var want []string
			for _, w := range tt.want {
				line, rule, _ := strings.Cut(w, ":")
				want = append(want, rule+"@"+line)
			}
			if !slices.Equal(got, want) {
				t.Errorf("findings\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestLintFromAsCasing(t *testing.T) {
	findings, err := Lint("Dockerfile", []byte("FROM scratch as base\nCOPY a /a\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || findings[0].Rule != "FromAsCasing" || findings[0].Line != 1 {
		t.Errorf("findings = %v, want one FromAsCasing on line 1", findings)
	}
}

func TestLintCheckDirectiveSkips(t *testing.T) {
	src := "# check=skip=MaintainerDeprecated\nFROM scratch\nMAINTAINER me\n"
	findings, err := Lint("Dockerfile", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 0 {
		t.Errorf("findings = %v, want none (rule skipped by directive)", findings)
	}
}

func TestLintParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		wantLine int
		wantText string
	}{
		{name: "unknown instruction", content: "FROM scratch\nFOO bar\n", wantLine: 2, wantText: "unknown instruction: FOO"},
		{name: "FROM without image", content: "FROM\n", wantLine: 1, wantText: "FROM requires"},
		{name: "unterminated heredoc", content: "FROM scratch\nCOPY a b\nRUN <<EOF\n", wantLine: 3, wantText: "heredoc"},
		{name: "blank base from ARG", content: "ARG X\nFROM $X\n", wantLine: 2, wantText: "should not be blank"},
		{name: "empty file", content: "\n\n", wantLine: 0, wantText: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Lint("app/Dockerfile", []byte(tt.content))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			if pe.Line != tt.wantLine {
				t.Errorf("line = %d, want %d (%v)", pe.Line, tt.wantLine, err)
			}
			if !strings.Contains(err.Error(), tt.wantText) || !strings.HasPrefix(err.Error(), "app/Dockerfile") {
				t.Errorf("error %q should start with the file name and contain %q", err, tt.wantText)
			}
		})
	}
}
