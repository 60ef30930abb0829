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
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/safefs"
	"github.com/cccp-project/cccp/internal/testimage"
)

func newContext(t testing.TB, dockerfile string, files map[string]string) string {
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

func imageName(t testing.TB) string {
	return fmt.Sprintf("localhost/cccp-test/buildah-%d:t", time.Now().UnixNano())
}

// ownStorage gives b a container storage of the test's own that holds
// the busybox base (testimage.Ref): nothing the test builds, pulls or
// leaves after a failure reaches the machine's storage, and no other
// test's removal races its build there (containers/buildah#5674).
func ownStorage(t testing.TB, b *Builder) {
	t.Helper()
	b.Root, b.RunRoot = testimage.Storage(t)
	testimage.BusyboxIn(t, b.Root, b.RunRoot)
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
	ownStorage(t, b)
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
	out, err := exec.Command("podman", "--root", b.Root, "--runroot", b.RunRoot, "--runtime", "runc", "run", "--rm", "--ulimit", "nofile=1024:1024",
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
	ownStorage(t, b)
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

// TestOCIErrorLookalikeFails: a RUN step that prints what an OCI runtime
// failure looks like and fails is a failed build, with OCI isolation only:
// no retry with chroot isolation (which would share the host's network
// and PID namespaces with the step).
func TestOCIErrorLookalikeFails(t *testing.T) {
	base := testimage.Busybox(t)
	var logged bytes.Buffer
	b := &Builder{Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	ownStorage(t, b)
	dir := newContext(t, "FROM "+base+"\nRUN echo 'Error: OCI runtime error: creating container for [/bin/sh]: cgroups in hybrid mode'; cat /proc/1/cmdline; exit 1\n", map[string]string{})
	image := imageName(t)
	cleanupImage(t, b, image)

	var out bytes.Buffer
	res, err := b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image, Log: &out, NoLayers: true})
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("build = %+v, %v; want a *BuildError\n%s", res, err, out.String())
	}
	if n := strings.Count(out.String(), "$ buildah"); n != 1 || strings.Contains(out.String(), "--isolation chroot") {
		t.Errorf("buildah ran %d times (want once, with OCI isolation):\n%s", n, out.String())
	}
	if strings.Contains(logged.String(), "chroot") {
		t.Errorf("logged a chroot retry: %s", logged.String())
	}
}

// TestBuildWithoutRuntime: when the OCI runtime is not there, the build is
// refused before buildah runs, saying so; it never falls back to chroot.
func TestBuildWithoutRuntime(t *testing.T) {
	base := testimage.Busybox(t)
	b := &Builder{Runtime: "/nonexistent/runc"}
	dir := newContext(t, "FROM "+base+"\nRUN true\n", map[string]string{})
	image := imageName(t)
	cleanupImage(t, b, image)
	var out bytes.Buffer
	_, err := b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image, Log: &out})
	if !errors.Is(err, ErrIsolationUnavailable) {
		t.Fatalf("build: %v, want ErrIsolationUnavailable\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "$ buildah") {
		t.Errorf("buildah ran:\n%s", out.String())
	}
}

// TestBuildChrootByOperator: chroot isolation is there when the operator
// asks for it, with a warning.
func TestBuildChrootByOperator(t *testing.T) {
	base := testimage.Busybox(t)
	var logged bytes.Buffer
	b := &Builder{Isolation: IsolationChroot, Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	ownStorage(t, b)
	dir := newContext(t, "FROM "+base+"\nRUN echo chroot-ok > /ok\n", map[string]string{})
	image := imageName(t)
	cleanupImage(t, b, image)
	var out bytes.Buffer
	res, err := b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image, Log: &out, NoLayers: true})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if res.Isolation != IsolationChroot || !strings.Contains(logged.String(), "chroot isolation") {
		t.Errorf("isolation %q, logged %q", res.Isolation, logged.String())
	}
}

func TestPush(t *testing.T) {
	base := testimage.Busybox(t)
	const user, pass = "cccp", "n0t-in-logs"
	host := testimage.Registry(t, user, pass)
	b := &Builder{}
	ownStorage(t, b)

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

// heapWatch samples the heap while f runs and returns the largest
// HeapAlloc seen above the starting one.
func heapWatch(f func()) (grown uint64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak - base
}

// TestBoundedOutput: a RUN step writing 1 GB without a newline, and a
// Dockerfile that is a symlink to /dev/zero, cost cccp a bounded heap.
func TestBoundedOutput(t *testing.T) {
	base := testimage.Busybox(t)
	b := &Builder{OutputLimit: 1 << 20}
	ownStorage(t, b)
	t.Run("RUN writes 1 GB without a newline", func(t *testing.T) {
		dir := newContext(t, "FROM "+base+"\nRUN head -c 1000000000 /dev/zero | tr '\\0' x; exit 1\n", map[string]string{})
		image := imageName(t)
		cleanupImage(t, b, image)
		var out bytes.Buffer
		var err error
		grown := heapWatch(func() {
			_, err = b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image, Log: &out, NoLayers: true})
		})
		t.Logf("1 GB RUN output: heap peak +%d KiB, log %d bytes, err %v", grown>>10, out.Len(), err)
		var be *BuildError
		if !errors.As(err, &be) {
			t.Fatalf("err = %v, want a *BuildError", err)
		}
		if grown > 64<<20 || out.Len() > 2<<20 {
			t.Errorf("heap grew by %d bytes, log holds %d bytes", grown, out.Len())
		}
	})
	t.Run("Dockerfile symlinked to /dev/zero", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Symlink("/dev/zero", filepath.Join(dir, "Dockerfile")); err != nil {
			t.Fatal(err)
		}
		var err error
		grown := heapWatch(func() {
			_, err = b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: imageName(t)})
		})
		t.Logf("Dockerfile -> /dev/zero: heap peak +%d KiB, err %v", grown>>10, err)
		if !errors.Is(err, safefs.ErrEscapes) {
			t.Errorf("err = %v, want safefs.ErrEscapes", err)
		}
		if grown > 16<<20 {
			t.Errorf("heap grew by %d bytes", grown)
		}
	})
}
