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
// builders share a storage of their own, and each builds and removes its
// image over and over, as two of cccp's workers do (a run's image is
// removed once pushed). On buildah 1.28 about one build in fifteen meets
// the race (measured 2026-12-01: 9 of 137 builds); with the builds run
// again, none may fail. It takes minutes, so it runs only with
// CCCP_TEST_STRESS=1.
func TestStorageRaceStress(t *testing.T) {
	if os.Getenv("CCCP_TEST_STRESS") != "1" {
		t.Skip("set CCCP_TEST_STRESS=1 to run (minutes)")
	}
	testimage.Require(t)
	rounds := 25
	if s := os.Getenv("CCCP_TEST_STRESS_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	root := t.TempDir()
	b := &Builder{Root: filepath.Join(root, "storage"), RunRoot: filepath.Join(root, "run")}
	t.Cleanup(func() {
		exec.Command("buildah", "--root", b.Root, "--runroot", b.RunRoot, "rmi", "--all", "--force").Run()
		exec.Command("umount", "-R", filepath.Join(b.Root, "overlay")).Run()
	})
	var wg sync.WaitGroup
	var again atomic.Int64
	for w := range 2 {
		dir := newContext(t, fmt.Sprintf("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo %d > /w\"]\n", w), map[string]string{})
		testimage.CopyBusybox(t, dir)
		image := fmt.Sprintf("localhost/cccp-test/race-%d:t", w)
		wg.Go(func() {
			for i := range rounds {
				var log bytes.Buffer
				res, err := b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image, Log: &log})
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
