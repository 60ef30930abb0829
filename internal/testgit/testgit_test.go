package testgit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRepo(t *testing.T) {
	// A user configuration that must not reach the repositories made here.
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"),
		[]byte("[user]\n\tname = leaked\n\temail = leaked@example.org\n[init]\n\tdefaultBranch = leaked\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("GIT_AUTHOR_NAME", "leaked")
	t.Setenv("GIT_DIR", filepath.Join(home, "nowhere"))

	tests := []struct {
		name, branch string
		files        map[string]string
	}{
		{"master", "master", map[string]string{"Dockerfile": "FROM scratch\n", "run.sh": "#!/bin/sh\n"}},
		{"main with folders", "main", map[string]string{"images/web/Dockerfile": "FROM scratch\n", "images/web/test/t.sh": "exit 0\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := Repo(t, tt.branch, tt.files)
			if got := Run(t, dir, "symbolic-ref", "--short", "HEAD"); got != tt.branch {
				t.Errorf("branch %q, want %q", got, tt.branch)
			}
			if got, want := Run(t, dir, "log", "-1", "--format=%an <%ae> %cn <%ce>"),
				AuthorName+" <"+AuthorEmail+"> "+AuthorName+" <"+AuthorEmail+">"; got != want {
				t.Errorf("identity %q, want %q", got, want)
			}
			if st := Run(t, dir, "status", "--porcelain"); st != "" {
				t.Errorf("work tree not clean: %q", st)
			}
			for name, content := range tt.files {
				if got := Run(t, dir, "show", "HEAD:"+name); got+"\n" != content {
					t.Errorf("%s = %q, want %q", name, got, content)
				}
				fi, err := os.Stat(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if exec := fi.Mode()&0o111 != 0; exec != (filepath.Ext(name) == ".sh") {
					t.Errorf("%s mode %v", name, fi.Mode())
				}
			}
		})
	}
}

func TestCommit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "repo")
	Init(t, dir, "dev")
	Write(t, dir, map[string]string{"x.txt": "1\n"})
	first := Commit(t, dir, "one")
	Write(t, dir, map[string]string{"x.txt": "2\n", "y.sh": "true\n"})
	second := Commit(t, dir, "two")
	if first == second || len(second) != 40 {
		t.Fatalf("commits %q %q", first, second)
	}
	if got := Run(t, dir, "rev-parse", "HEAD~1"); got != first {
		t.Errorf("parent %s, want %s", got, first)
	}
	if got := Run(t, dir, "log", "-1", "--format=%s"); got != "two" {
		t.Errorf("message %q", got)
	}
	if got := Run(t, dir, "ls-files", "-s", "y.sh"); len(got) < 6 || got[:6] != "100755" {
		t.Errorf("y.sh in the index: %q, want mode 100755", got)
	}
}
