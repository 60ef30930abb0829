package local_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/backendtest"
	"github.com/cccp-project/cccp/internal/backend/local"
	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/sandbox"
	"github.com/cccp-project/cccp/internal/testimage"
)

// The local backend passes the conformance suite with real git
// repositories, buildah, podman and the embedded registry. Its work dies
// with the process, so a restarted backend reports the old handles lost.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with buildah; not in -short")
	}
	testimage.Require(t)
	ctx := context.Background()
	dir := t.TempDir()
	reg, err := registry.Start(ctx, registry.Config{Dir: filepath.Join(dir, "registry")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	user, pass := reg.PushCredentials()
	sb, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatalf("sandbox (hack/install-deps.sh, as root): %v", err)
	}
	root, runRoot := testimage.Storage(t)
	newBackend := func(t *testing.T) *local.Backend {
		b, err := local.New(local.Config{Dir: filepath.Join(dir, "local"), Buildah: &buildah.Builder{Root: root, RunRoot: runRoot}, Podman: &podman.Runner{},
			Username: user, Password: pass, Insecure: func(string) bool { return true }, InsecureRegistries: []string{reg.Host()},
			Hold: time.Second, Sandbox: sb})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	source := func(job, dockerfile string) backendtest.Source {
		url := gitRepo(t, map[string]string{"Dockerfile": dockerfile}, true)
		e := newEntry("conformance", job, url)
		return backendtest.Source{Entry: e, Src: backend.Source{GitURL: url, Commit: headOf(t, url), Branch: "master"}}
	}
	b := newBackend(t)
	backendtest.Run(t, backendtest.Config{
		Builder: b,
		Tester:  b,
		Fixture: backendtest.Fixture{
			Good:    source("good", baseDockerfile),
			Failing: source("failing", "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"false\"]\n"),
			Slow:    source("slow", "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sleep\", \"611\"]\n"),
			Push:    func(runID string) string { return reg.Host() + "/conformance/app:" + runID },
			SlowRunning: func() bool {
				out, _ := exec.Command("pgrep", "-f", "busybox sleep 611").Output()
				return len(out) > 0
			},
		},
		Restart: func(t *testing.T) (backend.Builder, backend.Tester) {
			r := newBackend(t)
			return r, r
		},
		CanReattach: false,
	})
}

// headOf is the commit a file:// repository's master points at.
func headOf(t *testing.T, url string) string {
	t.Helper()
	c, err := gitsrc.Resolver{}.Resolve(context.Background(), url, "master")
	if err != nil {
		t.Fatal(err)
	}
	return c
}
