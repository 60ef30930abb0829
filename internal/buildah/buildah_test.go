package buildah

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testimage"
)

func newContext(t *testing.T, dockerfile string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["Dockerfile"] = dockerfile
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func imageName(t *testing.T) string {
	return fmt.Sprintf("localhost/cccp-test/buildah-%d:t", time.Now().UnixNano())
}

func cleanupImage(t *testing.T, b *Builder, image string) {
	t.Cleanup(func() {
		if err := b.Remove(context.Background(), image); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// TestBuildAndLayerCache builds a RUN step on the busybox base twice: the
// second build reuses every layer.
func TestBuildAndLayerCache(t *testing.T) {
	base := testimage.Busybox(t)
	ctx := context.Background()
	b := &Builder{}
	stamp := fmt.Sprint(time.Now().UnixNano()) // makes the first build's RUN miss the cache
	dir := newContext(t, "FROM "+base+"\nCOPY stamp /stamp\nRUN echo built-$(cat /stamp) > /built\nCMD [\"cat\", \"/built\"]\n",
		map[string]string{"stamp": stamp})
	image := imageName(t)
	cleanupImage(t, b, image)

	var first bytes.Buffer
	res, err := b.Build(ctx, BuildRequest{ContextDir: dir, Image: image, Log: &first})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, first.String())
	}
	if len(res.ImageID) != 64 || res.Isolation != IsolationOCI {
		t.Errorf("result = %+v, want a 64-hex image ID built with oci isolation", res)
	}
	if strings.Contains(first.String(), "Using cache") {
		t.Errorf("first build used the cache:\n%s", first.String())
	}
	out, err := exec.Command("podman", "--runtime", "runc", "run", "--rm", "--ulimit", "nofile=1024:1024",
		"--ulimit", "nproc=4096:4096", image).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "built-"+stamp {
		t.Errorf("run built image: %v: %q", err, out)
	}

	var second bytes.Buffer
	res2, err := b.Build(ctx, BuildRequest{ContextDir: dir, Image: image, Log: &second})
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, second.String())
	}
	if got := strings.Count(second.String(), "--> Using cache"); got != 3 {
		t.Errorf("second build reused %d layers, want 3 (COPY, RUN, CMD):\n%s", got, second.String())
	}
	if res2.ImageID != res.ImageID {
		t.Errorf("unchanged rebuild gave image %s, want %s", res2.ImageID, res.ImageID)
	}
}

func TestBuildFailureNamesDockerfileLine(t *testing.T) {
	base := testimage.Busybox(t)
	b := &Builder{}
	dir := newContext(t, "FROM "+base+"\n# the next step works\nRUN true\nRUN false\nRUN echo never\n", map[string]string{})
	image := imageName(t)
	cleanupImage(t, b, image)

	var log bytes.Buffer
	_, err := b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image, Log: &log})
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BuildError\n%s", err, log.String())
	}
	if want := "Dockerfile:4: RUN false: exit status 1"; be.Error() != want {
		t.Errorf("Error() = %q, want %q", be.Error(), want)
	}
	if be.Step != 3 || be.Line != 4 || !strings.Contains(be.Output, "STEP 3/4: RUN false") {
		t.Errorf("BuildError = %+v", be)
	}
}

// TestBuildFallsBackToChroot points OCI isolation at a runtime that does
// not exist, the way a host without a working runtime fails.
func TestBuildFallsBackToChroot(t *testing.T) {
	base := testimage.Busybox(t)
	var logged bytes.Buffer
	b := &Builder{Runtime: "/nonexistent/runc", Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	dir := newContext(t, "FROM "+base+"\nRUN echo chroot-ok > /ok\n", map[string]string{})
	image := imageName(t)
	cleanupImage(t, b, image)

	var out bytes.Buffer
	res, err := b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image, Log: &out, NoLayers: true})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if res.Isolation != IsolationChroot {
		t.Errorf("isolation = %q, want chroot", res.Isolation)
	}
	if !strings.Contains(logged.String(), "retrying build with chroot isolation") ||
		!strings.Contains(out.String(), "retrying with chroot isolation") {
		t.Errorf("fallback not logged:\nlogger: %s\nbuild log: %s", logged.String(), out.String())
	}
}

func TestPush(t *testing.T) {
	base := testimage.Busybox(t)
	const user, pass = "cccp", "n0t-in-logs"
	host := testimage.Registry(t, user, pass)
	b := &Builder{}

	tests := []struct {
		name    string
		pass    string
		wantErr bool
	}{
		{name: "right credentials", pass: pass},
		{name: "wrong password is an error without the password", pass: "wr0ng-pass", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			dest := host + "/app/job:test"
			digest, err := b.Push(context.Background(), base, dest, PushOptions{Username: user, Password: tt.pass, Log: &log})
			for _, text := range []string{log.String(), fmt.Sprint(err)} {
				if strings.Contains(text, tt.pass) {
					t.Errorf("password leaked: %s", text)
				}
			}
			if tt.wantErr {
				if err == nil {
					t.Fatal("push with a wrong password succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("push: %v\n%s", err, log.String())
			}
			if !strings.HasPrefix(digest, "sha256:") || len(digest) != 71 {
				t.Fatalf("digest = %q", digest)
			}
			out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--creds", user+":"+pass,
				"--format", "{{.Digest}}", "docker://"+dest).CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo inspect: %v: %s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != digest {
				t.Errorf("registry has %s, push returned %s", got, digest)
			}
		})
	}
}
