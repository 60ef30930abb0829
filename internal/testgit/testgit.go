// Package testgit makes real git repositories for tests.
//
// Git runs with a fixed author and committer, without the system
// configuration, and with HOME and XDG_CONFIG_HOME in an empty temporary
// folder, so the configuration of whoever runs the tests (signing,
// hooks, default branch, url rewrites) never reaches them. GIT_*
// variables of the test process are dropped for the same reason.
package testgit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Author is the name and e-mail of every commit made here.
const (
	AuthorName  = "cccp-test"
	AuthorEmail = "test@cccp.invalid"
)

// Require skips the test when git is not installed.
func Require(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed (apt-get install git)")
	}
}

// Run runs git with args in dir and returns its output, trimmed. It fails
// the test, with git's output, when git fails.
func Run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	Require(t)
	home := t.TempDir()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME="+AuthorName, "GIT_AUTHOR_EMAIL="+AuthorEmail,
		"GIT_COMMITTER_NAME="+AuthorName, "GIT_COMMITTER_EMAIL="+AuthorEmail)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v in %s: %v\n%s", args, dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Init makes dir, and the folders above it, an empty repository on branch.
func Init(t testing.TB, dir, branch string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	Run(t, dir, "init", "-q", "-b", branch)
}

// Write writes files (slash-separated path to content) below dir, making
// folders as needed; a name ending in .sh is executable.
func Write(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		// WriteFile keeps the mode of a file that is already there.
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// Commit commits everything in the work tree of dir with message msg and
// returns the new commit.
func Commit(t testing.TB, dir, msg string) string {
	t.Helper()
	Run(t, dir, "add", "-A")
	Run(t, dir, "commit", "-q", "-m", msg)
	return Run(t, dir, "rev-parse", "HEAD")
}

// Repo makes a repository in a new temporary folder with files in one
// commit on branch and returns the folder.
func Repo(t testing.TB, branch string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	Init(t, dir, branch)
	Write(t, dir, files)
	Commit(t, dir, "files")
	return dir
}
