package buildah

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testimage"
)

// fakeBuildah writes a stand-in for buildah that answers its n-th `bud`
// with the output and exit code of outcomes[n-1] and, past the end of
// outcomes, builds: it writes an image ID to --iidfile. It returns the
// binary and a function that counts the buds it answered.
//
// The real race (a removal by another process between buildah's listing
// of the storage and its use of what it listed) cannot be made to happen
// at a chosen build; TestStorageRaceStress provokes it for real.
func fakeBuildah(t *testing.T, outcomes []fakeOutcome) (string, func() int) {
	t.Helper()
	dir := t.TempDir()
	for i, o := range outcomes {
		n := strconv.Itoa(i + 1)
		if err := os.WriteFile(filepath.Join(dir, "out."+n), []byte(o.output), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "rc."+n), []byte(strconv.Itoa(o.rc)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/bin/sh
dir=` + dir + `
case " $* " in *" bud "*) ;; *) echo "fake buildah: unexpected call: $*" >&2; exit 2;; esac
n=$(( $(cat $dir/count 2>/dev/null || echo 0) + 1 ))
echo $n > $dir/count
if [ -f $dir/out.$n ]; then
	cat $dir/out.$n
	exit $(cat $dir/rc.$n)
fi
prev=
for a in "$@"; do
	[ "$prev" = --iidfile ] && printf 'sha256:%064d\n' $n > "$a"
	prev=$a
done
echo "built on attempt $n"
`
	bin := filepath.Join(dir, "buildah")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, func() int {
		b, err := os.ReadFile(filepath.Join(dir, "count"))
		if errors.Is(err, os.ErrNotExist) {
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
}

type fakeOutcome struct {
	output string
	rc     int
}

func recorded(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBuildRunsAgainOnTheStorageRace: a build that ends on buildah's race
// with another writer of the image storage (containers/buildah#5674) is
// run again, at most storageRaceAttempts times in all; any other failure,
// including a RUN step that prints the race's message itself, is not.
func TestBuildRunsAgainOnTheStorageRace(t *testing.T) {
	cacheRace := fakeOutcome{recorded(t, "cache-race.log"), 125}
	commitRace := fakeOutcome{recorded(t, "commit-race.log"), 125}
	stepFails := fakeOutcome{recorded(t, "multistage-fail.log"), 1}
	// A RUN step that prints the race's line and then fails: buildah's
	// own last line names the step and its exit status.
	mimic := fakeOutcome{"STEP 1/2: FROM localhost/busybox:latest\nSTEP 2/2: RUN echo ... && exit 1\n" +
		"Error: checking if cached image exists from a previous build: getting top layer info: layer not known\n" +
		"Error: building at STEP \"RUN echo ... && exit 1\": while running runtime: exit status 1\n", 1}

	for _, tc := range []struct {
		name     string
		outcomes []fakeOutcome
		buds     int
		wantErr  string // "" for a build that succeeds
	}{
		{"cache lookup race, then built", []fakeOutcome{cacheRace}, 2, ""},
		{"commit race twice, then built", []fakeOutcome{commitRace, commitRace}, 3, ""},
		{"the race every time", []fakeOutcome{cacheRace, commitRace, cacheRace, cacheRace}, 3, "layer not known"},
		{"a failing step is not run again", []fakeOutcome{stepFails}, 1, "exit status 3"},
		{"a step that prints the race's line", []fakeOutcome{mimic}, 1, "exit status 1"},
		{"race, then the step fails", []fakeOutcome{cacheRace, stepFails}, 2, "exit status 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, buds := fakeBuildah(t, tc.outcomes)
			b := &Builder{Binary: bin}
			var log bytes.Buffer
			res, err := b.Build(context.Background(), BuildRequest{
				ContextDir: newContext(t, "FROM localhost/busybox:latest\nRUN true\n", map[string]string{}),
				Image:      "localhost/cccp-test/race:t", Log: &log,
			})
			if got := buds(); got != tc.buds {
				t.Errorf("buildah bud ran %d times, want %d\n%s", got, tc.buds, log.String())
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("build: %v\n%s", err, log.String())
				}
				if res.Attempts != tc.buds || !strings.Contains(log.String(), "building again, attempt 2 of 3") {
					t.Errorf("attempts %d, log:\n%s", res.Attempts, log.String())
				}
				return
			}
			var be *BuildError
			if !errors.As(err, &be) || !strings.Contains(be.Cause, tc.wantErr) {
				t.Fatalf("err = %v, want a BuildError whose cause says %q", err, tc.wantErr)
			}
		})
	}
}

// TestStorageRaceStress provokes the image storage race for real: two
// builders share root's storage, and each builds and removes its image over
// and over, as two of cccp's workers do (a run's image is removed once
// pushed). The race comes when it comes: two shell loops of buildah met it
// in 9 of 137 builds (2026-12-01), this test in 3 of 50 builds in one run
// (each run again and built) and in none of 80 in another. With the builds
// run again, none may fail. It takes minutes, so it runs only with
// CCCP_TEST_STRESS=1; TestBuildRunsAgainOnTheStorageRace is the test that
// always runs.
func TestStorageRaceStress(t *testing.T) {
	if os.Getenv("CCCP_TEST_STRESS") != "1" {
		t.Skip("set CCCP_TEST_STRESS=1 to run (minutes)")
	}
	testimage.Require(t)
	rounds := 25
	if s := os.Getenv("CCCP_TEST_STRESS_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	// Root's storage, where cccp builds: the more images a storage holds,
	// the longer buildah's cache lookup walks them and the wider the race's
	// window (in a storage of a few images it was not met in 50 builds).
	b := &Builder{}
	base := testimage.Busybox(t)
	var wg sync.WaitGroup
	var again atomic.Int64
	for w := range 2 {
		dir := newContext(t, fmt.Sprintf("FROM %s\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo %d > /w\"]\n", base, w), map[string]string{})
		image := fmt.Sprintf("localhost/cccp-test/race-%d-%d:t", w, time.Now().UnixNano())
		wg.Go(func() {
			for i := range rounds {
				var log bytes.Buffer
				res, err := b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image, Log: &log, NoLayers: w == 1})
				if err != nil {
					t.Errorf("builder %d, round %d: %v\n%s", w, i, err, log.String())
					return
				}
				again.Add(int64(res.Attempts - 1))
				if err := b.Remove(context.Background(), image); err != nil {
					t.Errorf("builder %d, round %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d builds, %d run again after the storage race", 2*rounds, again.Load())
}

// TestRemoveImageWhoseCachedStepIsInUse: two builds whose first steps are
// the same share the cached image of those steps; when one build's image is
// removed while the other is building on that cached step, buildah takes
// the name off and deletes the image but not the shared step. Remove
// reports success: the name is gone. An image that is itself in use stays
// an error.
func TestRemoveImageWhoseCachedStepIsInUse(t *testing.T) {
	base := testimage.Busybox(t)
	b := &Builder{}
	image := imageName(t)
	stamp := fmt.Sprint(time.Now().UnixNano())
	dir := newContext(t, "FROM "+base+"\nRUN echo "+stamp+" > /x\nRUN echo two > /y\n", map[string]string{})
	res, err := b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image})
	if err != nil {
		t.Fatal(err)
	}
	cleanupImageAfter(t, b, image)
	// The cached image of the first RUN step (the image's parent), and a
	// working container on it, as another build with the same first step
	// holds.
	out, err := exec.Command("podman", "image", "inspect", "--format", "{{.Parent}}", image).CombinedOutput()
	step := strings.TrimSpace(string(out))
	if err != nil || len(step) != 64 {
		t.Fatalf("the parent of %s: %v: %s", image, err, out)
	}
	ctrOn := func(image string) string {
		out, err := exec.Command("buildah", "from", image).CombinedOutput()
		if err != nil {
			t.Fatalf("buildah from %s: %v: %s", image, err, out)
		}
		ctr := strings.TrimSpace(string(out))
		t.Cleanup(func() { exec.Command("buildah", "rm", ctr).Run() })
		return ctr
	}
	t.Cleanup(func() { exec.Command("buildah", "rmi", step).Run() })
	ctrOn(step)
	if err := b.Remove(context.Background(), image); err != nil {
		t.Fatalf("remove an image whose cached step is in use: %v", err)
	}
	if out, err := exec.Command("buildah", "inspect", "--type", "image", res.ImageID).CombinedOutput(); err == nil {
		t.Errorf("image %s is still there after Remove:\n%.200s", image, out)
	}

	// The image itself in use: buildah keeps it and its name, and says so.
	image2 := imageName(t)
	if _, err := b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image2}); err != nil {
		t.Fatal(err)
	}
	cleanupImageAfter(t, b, image2)
	ctrOn(image2)
	if err := b.Remove(context.Background(), image2); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("remove an image a container uses: %v, want an error saying it is in use", err)
	}
}

// cleanupImageAfter removes image at the test's end, after the cleanups
// registered later (containers on it) have run.
func cleanupImageAfter(t *testing.T, b *Builder, image string) {
	t.Cleanup(func() { b.Remove(context.Background(), image) })
}

// TestUntaggedInUse: Remove's reading of buildah rmi's output. The first
// case is what buildah 1.28.2 printed in TestStorageRaceStress (two builds
// sharing a cached step, 2026-12-01); the others change one thing each.
func TestUntaggedInUse(t *testing.T) {
	const image = "localhost/cccp-test/race-1:t"
	inUse := "* image used by e9d1a693cb2f: image is in use by a container: consider listing external containers and force-removing image"
	for _, tc := range []struct {
		name, out string
		want      bool
	}{
		{"untagged, cached step in use", "untagged: " + image + "\n8bc94542c446\nError: 1 error occurred:\n\t" + inUse + "\n", true},
		{"untagged, another error", "untagged: " + image + "\nError: 1 error occurred:\n\t* removing layer: permission denied\n", false},
		{"untagged, in use and another error", "untagged: " + image + "\nError: 2 errors occurred:\n\t" + inUse + "\n\t* removing layer: permission denied\n", false},
		{"not untagged: the image itself in use", "Error: 1 error occurred:\n\t" + inUse + "\n", false},
		{"another image untagged", "untagged: localhost/cccp-test/race-2:t\nError: 1 error occurred:\n\t" + inUse + "\n", false},
	} {
		if got := untaggedInUse([]byte(tc.out), image); got != tc.want {
			t.Errorf("%s: untaggedInUse = %v, want %v", tc.name, got, tc.want)
		}
	}
}
