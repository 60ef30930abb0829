package imagetest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/testimage"
)

// cccp builds, tests and delivers its own image through its own pipeline:
// the index of testdata/image (what `make image` runs) pointed at a commit
// of this work tree, deploy/Containerfile compiled inside the build, the
// image's own test script (cccp.yaml) run by the test stage, and then
// `cccp version` run inside the delivered image prints that commit.
//
// No public registry can be reached here, so the Containerfile's public
// bases are served from a loopback mirror (registries.conf through
// $CONTAINERS_REGISTRIES_CONF): a Debian 12 made by debootstrap and a Go
// image of this machine's toolchain holding the modules cmd/cccp needs.
// Both are made once per machine and kept (testimage.Debian, GoBuilder);
// the Go image's build cache is warmed with this very compile when it is
// made, so the build here recompiles only cccp's own changed packages.
func TestImageBuildsThroughItsOwnPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cccp's image with buildah (minutes); not in -short")
	}
	testimage.Require(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cccp")
	build := exec.Command("go", "build", "-o", bin, "./cmd/cccp")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cccp: %v: %s", err, out)
	}
	debian := testimage.Debian(t)
	builder := testimage.GoBuilder(t, root, "./cmd/cccp")
	conf := testimage.Mirror(t, map[string]string{
		"docker.io/library/debian:12":            debian,
		"docker.io/library/golang:1.26-bookworm": builder,
	})

	repo := filepath.Join(dir, "src")
	copyWorkTree(t, root, repo)
	testgit.Init(t, repo, "master")
	commit := testgit.Commit(t, repo, "cccp as the test found it")

	entry, err := os.ReadFile(filepath.Join(root, "testdata", "image", "index.d", "cccp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	entry = bytes.ReplaceAll(entry, []byte("${GIT_URL}"), []byte("file://"+repo))
	entry = bytes.ReplaceAll(entry, []byte("${BRANCH}"), []byte("master"))
	writeFile(t, filepath.Join(dir, "index", "index.d", "cccp.yaml"), string(entry))

	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	// The pipeline takes about 2 min here with the warm Go image (the
	// compile in the build stage mostly hits its cache); the limits guard
	// against hangs, well inside make test's 30 min per package.
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cccp := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "CONTAINERS_REGISTRIES_CONF="+conf)
		return cmd
	}
	start := time.Now()
	out, err := cccp(ctx, "run", "--index", filepath.Join(dir, "index"), "--allow-file-urls", "--data", data,
		"--registry-addr", addr, "--stage-timeout", "20m", "cccp/cccp").CombinedOutput()
	t.Logf("cccp run cccp/cccp took %s:\n%s", time.Since(start).Round(time.Second), lastBytes(string(out), 2000))
	if err != nil {
		logs, _ := cccp(ctx, "logs", "--data", data, "1").CombinedOutput()
		t.Fatalf("cccp run cccp/cccp: %v\n%s\nlogs:\n%s", err, out, lastBytes(string(logs), 8000))
	}
	logs, err := cccp(ctx, "logs", "--data", data, "1", "test").CombinedOutput()
	if err != nil {
		t.Fatalf("cccp logs 1 test: %v: %s", err, logs)
	}
	for _, want := range []string{"cccp " + commit, "buildah version", "podman version", "runc version", "skopeo version", "git version"} {
		if !strings.Contains(string(logs), want) {
			t.Errorf("the test stage's log lacks %q (the image's own test script):\n%s", want, lastBytes(string(logs), 4000))
		}
	}

	// The delivered image, pulled from cccp's registry and run.
	reg := cccp(ctx, "registry", "serve", "--data", data, "--registry-addr", addr)
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { reg.Process.Kill(); reg.Wait() }()
	ref := addr + "/cccp/cccp:latest"
	pull := exec.CommandContext(ctx, "podman", "pull", "--tls-verify=false", ref)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if out, err = pull.CombinedOutput(); err == nil || time.Now().After(deadline) {
			break
		}
		pull = exec.CommandContext(ctx, "podman", "pull", "--tls-verify=false", ref)
	}
	if err != nil {
		t.Fatalf("podman pull %s: %v\n%s", ref, err, out)
	}
	t.Cleanup(func() { exec.Command("podman", "rmi", ref).Run() })
	out, err = exec.CommandContext(ctx, "podman", "--runtime", "runc", "run", "--rm", "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", ref, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("podman run %s version: %v\n%s", ref, err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "cccp "+commit; got != want {
		t.Errorf("cccp version in the delivered image = %q, want %q", got, want)
	}
	out, err = exec.CommandContext(ctx, "podman", "image", "inspect", "--format", "{{.Config.User}}", ref).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "1001" {
		t.Errorf("the image's user = %q (%v), want 1001", out, err)
	}
}

// copyWorkTree copies the files git knows of in root (tracked, and new ones
// not ignored), as they are on disk, to dest: the tree the test builds.
func copyWorkTree(t *testing.T, root, dest string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files in %s (the test builds the repository's own tree): %v", root, err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		fi, err := os.Lstat(src)
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dest, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dest, f)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dest, f), b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
