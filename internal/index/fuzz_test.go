package index

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the index and cccp.yaml parsers and
// the linter: no panic, and every finding carries the file name.
func FuzzLoad(f *testing.F) {
	for _, pattern := range []string{
		sharedData + "/*/index.d/*.y*ml", sharedData + "/*/index.yml", sharedData + "/*/cccp.y*ml",
		"../../testdata/index/*/index.d/*.yaml",
	} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("a: &a [*a]\nProjects: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, fs := ParseFile("f.yaml", data)
		fs = append(fs, Lint(NewIndex(".", IndexD, entries), LintOptions{})...)
		_, cf := ParseRepoConfig("cccp.yaml", data)
		for _, x := range append(fs, cf...) {
			if x.Pos.File == "" || x.Rule == "" {
				t.Fatalf("finding without file or rule: %#v", x)
			}
		}
	})
}

// synthetic returns an index of n entries over n/100 files: a chain of
// 10 base images per file, each depending on the one before, and every
// file's first entry depending on the previous file's last, so the graph
// is many layers deep.
func synthetic(n int) *Index {
	var entries []*Entry
	perFile := 100
	for i := 0; i < n; i++ {
		app := fmt.Sprintf("team%d", i/perFile)
		file := "index.d/" + app + ".yaml"
		e := &Entry{
			ID: fmt.Sprint(i % perFile), AppID: app, JobID: fmt.Sprintf("image-%d", i%perFile),
			GitURL: fmt.Sprintf("https://git.example.org/%s/repo%d", app, i%7), GitBranch: "main",
			GitPath: fmt.Sprintf("images/%d", i%perFile), TargetFile: "Dockerfile", DesiredTag: "latest",
			ExtraTags: []string{"v1"}, NotifyEmail: []string{app + "@example.org"}, BuildContext: "../",
			Pos: Pos{File: file, Line: 2 + 12*(i%perFile), Col: 5}, FieldPos: map[string]Pos{},
		}
		switch {
		case i%perFile != 0:
			e.DependsOn = []string{fmt.Sprintf("%s/image-%d:latest", app, i%perFile-1), "quay.io/ext/base:1"}
		case i > 0:
			e.DependsOn = []string{fmt.Sprintf("team%d/image-%d:v1", i/perFile-1, perFile-1)}
		}
		entries = append(entries, e)
	}
	return NewIndex(".", IndexD, entries)
}

func BenchmarkLint10k(b *testing.B) {
	idx := synthetic(10000)
	if fs := Lint(idx, LintOptions{}); len(fs) != 0 {
		b.Fatalf("synthetic index has findings: %v", fs[:min(3, len(fs))])
	}
	b.ReportAllocs()
	for b.Loop() {
		Lint(idx, LintOptions{})
	}
}

func BenchmarkLoadShared2018(b *testing.B) {
	dir := filepath.Join(sharedData, "2018-07")
	if _, err := os.Stat(dir); err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		if _, _, err := Load(b.Context(), dir, LoadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSyntheticGraphIsDeep(t *testing.T) {
	g, fs := NewGraph(synthetic(1000))
	if len(fs) != 0 || len(g.Layers()) != 1000 || !strings.HasPrefix(g.DOT(), "digraph") {
		t.Errorf("findings %d, layers %d", len(fs), len(g.Layers()))
	}
}
