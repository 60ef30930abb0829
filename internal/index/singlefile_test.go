package index

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCCCPIndexFile: cccp-index.yaml and cccp-index.yml at a repository's
// root load like index.yml, with findings located in them. Before, a
// folder holding only cccp-index.yaml had no index.
func TestCCCPIndexFile(t *testing.T) {
	text := "# acme\nProjects:\n  - id: 1\n    app-id: acme\n    job-id: web\n    git-url: https://github.com/acme/web\n    git-branch: master\n" +
		"    git-path: /\n    target-file: Dockerfile\n    desired-tag: latest\n    notify-email: ops@acme.example.org\n    depends-on: null\n" +
		"  - id: 2\n    app-id: acme\n    job-id: api\n    git-branch: master\n"
	for _, name := range []string{"cccp-index.yaml", "cccp-index.yml"} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{root, filepath.Join(root, name)} {
				idx, fs, err := Load(context.Background(), path, LoadOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if idx.Form != SingleFile || idx.Root != root || len(idx.Entries) != 2 {
					t.Fatalf("Load(%s) = form %v root %s, %d entries", path, idx.Form, idx.Root, len(idx.Entries))
				}
				fs = append(fs, Lint(idx, LintOptions{})...)
				found := false
				for _, f := range fs {
					if f.Severity == Error && strings.HasSuffix(f.Pos.File, name) && f.Pos.Line == 13 && strings.Contains(f.Message, "git-url") {
						found = true
					}
				}
				if !found {
					t.Errorf("no located finding for the entry without git-url at %s:13: %v", name, fs)
				}
			}
		})
	}
}
