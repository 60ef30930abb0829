package main

import (
	"bytes"
	"context"
	"os"
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
	writeFile(t, filepath.Join(dir, "index", "index.d", "acme.yaml"), `Projects:
  - id: 1
    app-id: acme
    job-id: reldata
    git-url: file://`+repo+`
    git-branch: master
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: ops@example.com
    depends-on: null
`)
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
