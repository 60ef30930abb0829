package local

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/testimage"
)

// cacheWorld is a backend over a build storage of the test's own, with
// the cache's clock in the test's hands.
type cacheWorld struct {
	b   *Backend
	bld *buildah.Builder
	now time.Time
}

func newCacheWorld(t *testing.T) *cacheWorld {
	t.Helper()
	root, runRoot := testimage.Storage(t)
	bld := &buildah.Builder{Root: root, RunRoot: runRoot}
	b, err := New(Config{Dir: filepath.Join(t.TempDir(), "local"), Buildah: bld, Podman: &podman.Runner{}})
	if err != nil {
		t.Fatal(err)
	}
	w := &cacheWorld{b: b, bld: bld, now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	b.cache.now = func() time.Time { return w.now }
	return w
}

// build builds dockerfile (with the files) into image in the world's
// storage.
func (w *cacheWorld) build(t *testing.T, image, dockerfile string, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	files["Dockerfile"] = dockerfile
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testimage.CopyBusybox(t, dir)
	if _, err := w.bld.Build(context.Background(), buildah.BuildRequest{ContextDir: dir, Image: image}); err != nil {
		t.Fatalf("build %s: %v", image, err)
	}
}

func (w *cacheWorld) images(t *testing.T) map[string][]string {
	t.Helper()
	imgs, err := w.bld.StoreImages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, im := range imgs {
		out[im.ID] = im.Names
	}
	return out
}

func (w *cacheWorld) containers(t *testing.T) []string {
	t.Helper()
	ctrs, err := w.bld.StoreContainers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range ctrs {
		out = append(out, c.Name)
	}
	return out
}

// workingContainer leaves a working container of image in the storage,
// as a build killed in its RUN step does.
func (w *cacheWorld) workingContainer(t *testing.T, image string) {
	t.Helper()
	if out, err := exec.Command("buildah", "--root", w.bld.Root, "--runroot", w.bld.RunRoot, "from", "--pull=never", image).CombinedOutput(); err != nil {
		t.Fatalf("buildah from %s: %v: %s", image, err, out)
	}
}

func named(imgs map[string][]string, name string) bool {
	for _, n := range imgs {
		if slices.Contains(n, name) {
			return true
		}
	}
	return false
}

// TestPruneBuildCacheRemovesWhatNoBuildUsed: a base and the layer cache
// of a build that used them within the window stay; the images of a
// build no one used since (a failed build's steps, a base no build uses
// any more) go, with the working container a killed build left; once no
// build used anything within the window the storage is empty.
func TestPruneBuildCacheRemovesWhatNoBuildUsed(t *testing.T) {
	w := newCacheWorld(t)
	ctx := context.Background()
	const base, app, stale = "localhost/storehyg-test/base:1", "localhost/storehyg-test/app:1", "localhost/storehyg-test/stale:1"
	w.build(t, base, "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"true\"]\n", map[string]string{})
	w.build(t, app, "FROM "+base+"\nCOPY a /a\nCOPY b /b\n", map[string]string{"a": "a", "b": "b"})
	w.build(t, stale, "FROM scratch\nCOPY s /s\nCOPY t /t\n", map[string]string{"s": "s", "t": "t"})
	all := w.images(t)
	if len(all) < 6 {
		t.Fatalf("storage holds %d images, want the 3 built and their intermediate images: %v", len(all), all)
	}

	// The first prune sees every image for the first time: none goes,
	// whatever its age.
	w.now = w.now.Add(time.Hour)
	removed, err := w.b.PruneBuildCache(ctx, w.now.Add(-time.Minute), false)
	if err != nil || len(removed) != 0 || len(w.images(t)) != len(all) {
		t.Fatalf("first prune removed %v (err %v); want nothing: every image is new to it", removed, err)
	}

	// A day later a build uses the base: app rebuilt from the cache.
	w.now = w.now.Add(24 * time.Hour)
	if err := w.b.cacheUsed(ctx, app); err != nil {
		t.Fatal(err)
	}
	w.workingContainer(t, stale)

	// Two days later, with a window of a day and a half.
	w.now = w.now.Add(12 * time.Hour)
	removed, err = w.b.PruneBuildCache(ctx, w.now.Add(-36*time.Hour+time.Minute), false)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	left := w.images(t)
	if !named(left, base) || !named(left, app) || named(left, stale) {
		t.Errorf("after the prune the storage has %v; want %s and %s (used 12h ago) and not %s (unused for 36h)", left, base, app, stale)
	}
	// app's intermediate images (its COPY a step) are a prefix of app:
	// kept; stale's (its COPY s step) are not.
	if got, want := len(all)-len(left), 2; got != want {
		t.Errorf("removed %d images, want %d (stale and its COPY s step): %v", got, want, removed)
	}
	if c := w.containers(t); len(c) != 0 {
		t.Errorf("working containers left: %v", c)
	}
	if len(removed) != 3 || !strings.HasPrefix(removed[0], "container ") {
		t.Errorf("prune reported %v; want the container, then 2 images", removed)
	}
	var m strings.Builder
	if err := w.b.WriteBuildCacheMetrics(&m); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cccp_build_cache_removed_total{kind=\"image\"} 2\n", "cccp_build_cache_removed_total{kind=\"container\"} 1\n"} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, m.String())
		}
	}

	// Much later nothing was used within the window: all goes.
	w.now = w.now.Add(30 * 24 * time.Hour)
	if _, err := w.b.PruneBuildCache(ctx, w.now.Add(-24*time.Hour), false); err != nil {
		t.Fatal(err)
	}
	if left := w.images(t); len(left) != 0 {
		t.Errorf("storage still holds %v after a month unused", left)
	}
}

// TestPruneBuildCacheDryRunRemovesNothing lists what would go and leaves
// it there.
func TestPruneBuildCacheDryRunRemovesNothing(t *testing.T) {
	w := newCacheWorld(t)
	ctx := context.Background()
	w.build(t, "localhost/storehyg-test/dry:1", "FROM scratch\nCOPY busybox /bin/busybox\n", map[string]string{})
	w.workingContainer(t, "localhost/storehyg-test/dry:1")
	before := w.images(t)
	removed, err := w.b.PruneBuildCache(ctx, w.now.Add(time.Hour), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1+len(before) {
		t.Errorf("dry run lists %v; want the container and all %d images", removed, len(before))
	}
	if len(w.images(t)) != len(before) || len(w.containers(t)) != 1 {
		t.Errorf("dry run removed something: images %v, containers %v", w.images(t), w.containers(t))
	}
}

// TestCleanupRemovesKilledBuildsWorkingContainers: a start of cccp removes
// the working containers a killed build left in its own storage (old code:
// they stayed for ever).
func TestCleanupRemovesKilledBuildsWorkingContainers(t *testing.T) {
	w := newCacheWorld(t)
	w.build(t, "localhost/storehyg-test/killed:1", "FROM scratch\nCOPY busybox /bin/busybox\n", map[string]string{})
	w.workingContainer(t, "localhost/storehyg-test/killed:1")
	w.workingContainer(t, "localhost/storehyg-test/killed:1")
	if err := w.b.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := w.containers(t); len(c) != 0 {
		t.Errorf("working containers after Cleanup: %v", c)
	}
	if !named(w.images(t), "localhost/storehyg-test/killed:1") {
		t.Error("Cleanup removed an image; only what a build started is its to remove")
	}
}

// TestPruneBuildCacheWaitsForBuilds: no removal while a build is in
// buildah (containers/buildah#5674); a prune that finds builds running
// for its whole wait waits for the running ones, new builds held back
// (it gave up before, so builds that never paused put it off for ever),
// and one that finds a moment free goes on.
func TestPruneBuildCacheWaitsForBuilds(t *testing.T) {
	w := newCacheWorld(t)
	ctx := context.Background()
	w.build(t, "localhost/storehyg-test/busy:1", "FROM scratch\nCOPY busybox /bin/busybox\n", map[string]string{})
	w.workingContainer(t, "localhost/storehyg-test/busy:1")
	w.b.cache.wait, w.b.cache.poll = 0, time.Millisecond

	release := w.b.cache.hold()
	pruned := make(chan error, 1)
	go func() {
		_, err := w.b.PruneBuildCache(ctx, w.now.Add(time.Hour), false)
		pruned <- err
	}()
	// The prune waits for the running build (new builds wait for the prune
	// meanwhile: a pending Lock holds new RLocks back), then removes.
	for w.b.cache.busy.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-pruned:
		t.Fatalf("prune ended while a build held the storage: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if len(w.containers(t)) != 1 {
		t.Fatal("a prune during a build removed the build's container")
	}
	release()
	if err := <-pruned; err != nil {
		t.Fatal(err)
	}
	if len(w.containers(t)) != 0 {
		t.Fatal("the prune that waited for the build did not remove the container")
	}
	w.build(t, "localhost/storehyg-test/busy:1", "FROM scratch\nCOPY busybox /bin/busybox\n", map[string]string{})
	w.workingContainer(t, "localhost/storehyg-test/busy:1")
	release = w.b.cache.hold()

	w.b.cache.wait = time.Minute
	done := make(chan error, 1)
	go func() {
		_, err := w.b.PruneBuildCache(ctx, w.now.Add(time.Hour), false)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("prune ended while a build held the storage: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(w.containers(t)) != 0 {
		t.Error("the prune after the build did not remove the container")
	}
}

// TestPruneBuildCacheRefusesSharedStorage: without a storage of its own
// the backend prunes nothing (the machine's storage may hold the
// operator's images).
func TestPruneBuildCacheRefusesSharedStorage(t *testing.T) {
	b, err := New(Config{Dir: t.TempDir(), Buildah: &buildah.Builder{Binary: "/nonexistent/buildah"}, Podman: &podman.Runner{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PruneBuildCache(context.Background(), time.Now(), false); !errors.Is(err, ErrSharedStorage) {
		t.Errorf("err = %v, want ErrSharedStorage", err)
	}
}

// TestCloseLeavesNothingRunning: Close removes what a killed build left
// and the storage's run root (it would pile up on /run otherwise); the
// images stay for the next start.
func TestCloseLeavesNothingRunning(t *testing.T) {
	w := newCacheWorld(t)
	w.build(t, "localhost/storehyg-test/close:1", "FROM scratch\nCOPY busybox /bin/busybox\n", map[string]string{})
	w.workingContainer(t, "localhost/storehyg-test/close:1")
	if err := w.b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.bld.RunRoot); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run root after Close: %v, want it gone", err)
	}
	if c := w.containers(t); len(c) != 0 {
		t.Errorf("working containers after Close: %v", c)
	}
	if !named(w.images(t), "localhost/storehyg-test/close:1") {
		t.Error("Close removed an image")
	}
}

// TestDryRunPruneSparesRunningBuilds: a dry run while a build is in
// buildah does not list the build's working container as a killed
// build's leftover (it did: only the real prune took the gate).
func TestDryRunPruneSparesRunningBuilds(t *testing.T) {
	w := newCacheWorld(t)
	w.build(t, "localhost/storehyg-test/dry:1", "FROM scratch\nCOPY busybox /bin/busybox\n", map[string]string{})
	w.workingContainer(t, "localhost/storehyg-test/dry:1")
	release := w.b.cache.hold()
	listed, err := w.b.PruneBuildCache(context.Background(), w.now, true)
	release()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range listed {
		if strings.HasPrefix(l, "container ") {
			t.Errorf("a dry run during a build lists %q", l)
		}
	}
	listed, err = w.b.PruneBuildCache(context.Background(), w.now, true)
	if err != nil || len(listed) == 0 || !strings.HasPrefix(listed[0], "container ") {
		t.Errorf("a dry run with no build running lists %q, %v; want the working container", listed, err)
	}
}
