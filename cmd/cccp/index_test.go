package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runCaptured calls run with its output captured.
func runCaptured(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

var findingLine = regexp.MustCompile(`^[^:]+:\d+(:\d+)?: (error|warning): .+ \([a-z-]+\)$`)

func TestIndexLintCLI(t *testing.T) {
	valid := filepath.Join("..", "..", "testdata", "index", "valid")
	broken := filepath.Join("..", "..", "testdata", "index", "broken")
	tests := []struct {
		name      string
		args      []string
		code      int
		lines     int // finding lines on stdout, -1 to skip
		errSubstr string
	}{
		{"valid", []string{"index", "lint", valid}, exitOK, 0, "4 entries, 0 errors"},
		{"broken", []string{"index", "lint", broken}, exitFailure, 18, "17 errors, 1 warnings"},
		{"one file", []string{"index", "lint", filepath.Join(valid, "index.d", "library.yaml")}, exitOK, 0, "1 entries"},
		{"two paths", []string{"index", "lint", valid, broken}, exitFailure, 18, "10 entries"},
		{"bad format", []string{"index", "lint", "--format", "xml", valid}, exitUsage, 0, "--format"},
		{"unknown flag", []string{"index", "lint", "--nope", valid}, exitUsage, 0, "unknown flag"},
		{"missing path", []string{"index", "lint", filepath.Join(valid, "nothing")}, exitUsage, 0, "no such file"},
		{"changed-since without remote", []string{"index", "lint", "--changed-since", "HEAD", valid}, exitUsage, 0, "--remote"},
		{"graph", []string{"index", "graph", valid}, exitOK, -1, ""},
		{"graph cycle", []string{"index", "graph", broken}, exitFailure, -1, "cycle"},
		{"graph no path", []string{"index", "graph"}, exitUsage, 0, "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCaptured(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			if !strings.Contains(errOut, tt.errSubstr) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.errSubstr)
			}
			if tt.lines < 0 {
				return
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if out == "" {
				lines = nil
			}
			if len(lines) != tt.lines {
				t.Errorf("%d lines, want %d:\n%s", len(lines), tt.lines, out)
			}
			for _, l := range lines {
				if !findingLine.MatchString(l) {
					t.Errorf("line not FILE:LINE:COL: SEVERITY: MESSAGE (RULE): %q", l)
				}
			}
		})
	}
}

func TestIndexLintJSON(t *testing.T) {
	code, out, _ := runCaptured(t, "index", "lint", "--format", "json", filepath.Join("..", "..", "testdata", "index", "broken"))
	if code != exitFailure {
		t.Fatalf("exit %d", code)
	}
	var fs []struct {
		File     string `json:"file"`
		Line     int    `json:"line"`
		Col      int    `json:"col"`
		Severity string `json:"severity"`
		Rule     string `json:"rule"`
		Message  string `json:"message"`
	}
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(fs) != 18 || fs[1].Rule != "name-format" || fs[1].Line != 4 || fs[1].Col != 5 || fs[1].Severity != "error" {
		t.Errorf("%d findings, second %+v", len(fs), fs[1])
	}
}

func TestIndexGraphCLI(t *testing.T) {
	valid := filepath.Join("..", "..", "testdata", "index", "valid")
	tests := []struct{ format, want string }{
		{"text", "layer 1: example/base:latest\nlayer 2: example/web:latest library/runtime:1.0\nlayer 3: example/tools:latest\n"},
		{"dot", `"example/base:latest" -> "example/web:latest";`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			code, out, _ := runCaptured(t, "index", "graph", "--format", tt.format, valid)
			if code != exitOK || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, output:\n%s\nwant %q", code, out, tt.want)
			}
		})
	}
}

func TestIndexAddCLI(t *testing.T) {
	root := t.TempDir()
	existing := "# the acme team's images\nProjects:\n  - id: 1\n    app-id: acme\n    job-id: web\n    git-url: https://github.com/acme/web\n    git-path: /\n    notify-email: dev@acme.io\n"
	path := filepath.Join(root, "index.d", "acme.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(existing), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{"missing flags", []string{"--app-id", "acme"}, exitUsage, "", []string{"--index, --app-id, --job-id and --git-url are required"}},
		{"invalid entry is refused with findings", []string{"--app-id", "acme", "--job-id", "Bad_Name", "--git-url", "ext::sh -c id"}, exitFailure, "",
			[]string{"(name-format)", "(git-url)"}},
		{"duplicate of an existing entry", []string{"--app-id", "acme", "--job-id", "web", "--git-url", "https://github.com/acme/web2", "--notify-email", "a@acme.io"}, exitFailure, "",
			[]string{"acme/web"}},
		{"valid entry is appended", []string{"--app-id", "acme", "--job-id", "api", "--git-url", "https://github.com/acme/api", "--notify-email", "a@acme.io", "--depends-on", "acme/web:latest"},
			exitOK, "added acme/api:latest to index.d/acme.yaml\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCaptured(t, append([]string{"index", "add", "--index", root}, tc.args...)...)
			if code != tc.wantCode || stdout != tc.wantStdout {
				t.Errorf("code %d, stdout %q; want %d, %q (stderr %q)", code, stdout, tc.wantCode, tc.wantStdout, stderr)
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
	// The existing text stays as it was, the new entry follows, and the
	// index still lints clean.
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), existing) || !strings.Contains(string(got), "job-id: api") {
		t.Errorf("index file after add:\n%s", got)
	}
	if code, out, errOut := runCaptured(t, "index", "lint", root); code != exitOK {
		t.Errorf("lint after add: %d\n%s%s", code, out, errOut)
	}
}
