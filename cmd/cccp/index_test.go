package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runCaptured calls run with os.Stdout and os.Stderr captured (run writes
// its usage messages to os.Stderr).
func runCaptured(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	capture := func(f **os.File) func() string {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		old := *f
		*f = w
		done := make(chan string)
		go func() {
			b, _ := io.ReadAll(r)
			done <- string(b)
		}()
		return func() string {
			w.Close()
			*f = old
			return <-done
		}
	}
	endOut := capture(&os.Stdout)
	endErr := capture(&os.Stderr)
	code = run(context.Background(), args)
	return code, endOut(), endErr()
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
