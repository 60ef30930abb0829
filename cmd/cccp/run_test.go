package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/testimage"
)

// A relative --data once reached buildah joined twice (`open
// fk/data/work/run-1/src/fk/data/work/run-1/src/Dockerfile`): cccp run
// with a relative data folder builds, tests and delivers.
func TestRunWithRelativeDataFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with buildah; not in -short")
	}
	testimage.Require(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	testgit.Write(t, repo, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCMD [\"sleep\", \"3600\"]\n",
	})
	testimage.CopyBusybox(t, repo)
	testgit.Init(t, repo, "master")
	testgit.Commit(t, repo, "app")
	writeIndex(t, dir, "reldata", repo)
	t.Chdir(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"run", "--index", "index", "--allow-file-urls", "--data", "fk/data",
		"--registry-addr", freeAddr(t), "--blocking", "user-script"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("cccp run --data fk/data: exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "passed") {
		t.Errorf("stdout lacks the passed run:\n%s", &stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "fk", "data", "cccp.db")); err != nil {
		t.Errorf("the data folder is not where --data said: %v", err)
	}
}

// writeIndex writes an index of one entry, acme/<job>, built from repo.
func writeIndex(t *testing.T, dir, job, repo string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "index", "index.d", "acme.yaml"), `Projects:
  - id: 1
    app-id: acme
    job-id: `+job+`
    git-url: file://`+repo+`
    git-branch: master
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: ops@example.com
    depends-on: null
`)
}

// --stage-timeout bounds a stage: a build that sleeps fails with
// DeadlineExceeded and its work is stopped.
func TestRunStageTimeoutStopsTheBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with buildah; not in -short")
	}
	testimage.Require(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	testgit.Write(t, repo, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sleep\", \"597\"]\n",
	})
	testimage.CopyBusybox(t, repo)
	testgit.Init(t, repo, "master")
	testgit.Commit(t, repo, "slow")
	writeIndex(t, dir, "sleeper", repo)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"run", "--index", filepath.Join(dir, "index"), "--allow-file-urls", "--data", filepath.Join(dir, "data"),
		"--registry-addr", freeAddr(t), "--stage-timeout", "8s"}, &stdout, &stderr)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFailure, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "the build stage ran longer than its deadline of 8s") {
		t.Errorf("stdout does not say the deadline ended the build:\n%s", &stdout)
	}
	if out, _ := exec.Command("pgrep", "-f", "busybox sleep 597").Output(); len(out) > 0 {
		t.Errorf("the build still runs after its deadline: pids %s", strings.Fields(string(out)))
	}
}

// An unchanged re-trigger builds nothing: a second `cccp run` of the same
// commit with the same data folder says the entry is up to date, builds
// and tests nothing, and the delivered image in the registry keeps its
// digest; --force builds it again.
func TestRunUnchangedRetriggerBuildsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with buildah; not in -short")
	}
	testimage.Require(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	testgit.Write(t, repo, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCMD [\"sleep\", \"3600\"]\n",
	})
	testimage.CopyBusybox(t, repo)
	testgit.Init(t, repo, "master")
	testgit.Commit(t, repo, "app")
	writeIndex(t, dir, "uptodate", repo)
	addr := freeAddr(t)
	runOnce := func(extra ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var stdout, stderr bytes.Buffer
		args := append([]string{"run", "--index", filepath.Join(dir, "index"), "--allow-file-urls", "--data", filepath.Join(dir, "data"),
			"--registry-addr", addr, "--blocking", "user-script"}, extra...)
		if code := run(ctx, args, &stdout, &stderr); code != exitOK {
			t.Fatalf("cccp %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, &stdout, &stderr)
		}
		return stdout.String()
	}
	digestOf := func(out string) string {
		t.Helper()
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "acme/uptodate") {
				if i := strings.Index(line, "@sha256:"); i >= 0 {
					return line[i+1:]
				}
			}
		}
		t.Fatalf("no digest in:\n%s", out)
		return ""
	}
	first := runOnce()
	if strings.Contains(first, "up to date") || !strings.Contains(first, "build:passed") {
		t.Fatalf("first run did not build:\n%s", first)
	}
	second := runOnce()
	if !strings.Contains(second, "passed (up to date, nothing to build)") || !strings.Contains(second, "build:skipped test:skipped deliver:skipped") {
		t.Fatalf("second run of the same commit was not up to date:\n%s", second)
	}
	if a, b := digestOf(first), digestOf(second); a != b {
		t.Errorf("the up-to-date run shows image %s, the delivered one is %s", b, a)
	}
	forced := runOnce("--force")
	if strings.Contains(forced, "up to date") || !strings.Contains(forced, "build:passed test:passed deliver:passed") {
		t.Fatalf("--force did not build:\n%s", forced)
	}
}
