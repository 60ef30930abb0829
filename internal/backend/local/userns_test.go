package local_test

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/idpool"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// buildIDs are the build user's id ranges (hack/install-deps.sh creates
// cccp-build), shared machine-wide with every other cccp and test.
func buildIDs(t *testing.T) *idpool.Ranges {
	t.Helper()
	r, err := idpool.NewRanges(idpool.RangesConfig{User: "cccp-build"})
	if err != nil {
		t.Fatalf("build id ranges (hack/install-deps.sh, as root): %v", err)
	}
	return r
}

// TestPipelineRunStepsAreNotHostRoot: a repository's RUN step runs as root
// of a user namespace whose ids are a range of unprivileged host ids (its
// uid_map, printed into the build log, maps 0 to the range), and the
// delivered image still has what the step made owned by root.
func TestPipelineRunStepsAreNotHostRoot(t *testing.T) {
	e := newEntry("acme", "mapped", gitRepo(t, map[string]string{
		// The nonce keeps buildah's layer cache from answering for the step.
		"Dockerfile": baseDockerfile + "RUN echo " + strconv.FormatInt(time.Now().UnixNano(), 10) + "; echo uid_map; cat /proc/self/uid_map; touch /made-by-run\n",
	}, true))
	w := newWorld(t, e)
	run := w.run(t, "acme/mapped:latest")
	f, err := w.logs.Open(run.ID, string(types.StageBuild))
	if err != nil {
		t.Fatal(err)
	}
	dt, _ := io.ReadAll(f)
	f.Close()
	log := string(dt)
	if run.State != store.Passed {
		t.Fatalf("run %s: %s (%s)\n%s", run.ID, run.State, run.Error, log)
	}
	// Stored log lines start with a timestamp: the map is the line after
	// the one that ends in "uid_map".
	var fields []string
	lines := strings.Split(log, "\n")
	for i, l := range lines[:len(lines)-1] {
		if strings.HasSuffix(l, " uid_map") {
			fields = strings.Fields(lines[i+1])[1:]
			break
		}
	}
	if len(fields) < 3 || fields[0] != "0" || fields[2] != strconv.Itoa(idpool.RangeSize) {
		t.Fatalf("uid_map of the RUN step: %q, want 0 <host uid> %d\n%s", fields, idpool.RangeSize, log)
	}
	if host, _ := strconv.Atoi(fields[1]); host < 1000 {
		t.Errorf("root of the RUN step is host uid %d, want an unprivileged subordinate id", host)
	}
	out, err := w.podman("--runtime", "runc", "run", "--rm", "--quiet", "--tls-verify=false",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", w.reg.Host()+"/acme/mapped:latest",
		"stat", "-c", "%u:%g", "/made-by-run", "/www/index.html", "/bin/busybox").CombinedOutput()
	if got := strings.Fields(string(out)); err != nil || strings.Join(got, " ") != "0:0 0:0 0:0" {
		t.Errorf("owners in the delivered image: %v: %q, want 0:0 for each", err, out)
	}
}

// TestConcurrentBuildsGetTheirOwnRange: two builds started at the same
// time (each holding its range for a RUN step of 3 s or more) map root of
// their RUN steps to two different host ranges.
func TestConcurrentBuildsGetTheirOwnRange(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var handles []backend.Handle
	for _, job := range []string{"one", "two"} {
		df := baseDockerfile + "RUN echo " + strconv.FormatInt(time.Now().UnixNano(), 10) + " " + job + "; echo uid_map; cat /proc/self/uid_map; sleep 3\n"
		url := gitRepo(t, map[string]string{"Dockerfile": df}, true)
		h, err := w.backend.StartBuild(ctx, backend.BuildSpec{RunID: "cc-" + job, Kind: types.KindBranch, Entry: newEntry("acme", job, url),
			Src: backend.Source{GitURL: url, Commit: headOf(t, url), Branch: "master"}, Push: w.reg.Host() + "/acme/" + job + ":test"})
		if err != nil {
			t.Fatal(err)
		}
		handles = append(handles, h)
	}
	var maps []string
	for _, h := range handles {
		if _, err := w.backend.WaitBuild(ctx, h); err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		var log strings.Builder
		w.backend.Log(ctx, h, 0, &log)
		lines := strings.Split(log.String(), "\n")
		for i, l := range lines[:len(lines)-1] {
			if l == "uid_map" {
				maps = append(maps, strings.Join(strings.Fields(lines[i+1]), " "))
			}
		}
	}
	if len(maps) != 2 {
		t.Fatalf("uid maps found: %q, want one per build", maps)
	}
	if maps[0] == maps[1] || strings.HasPrefix(maps[0], "0 0 ") || strings.HasPrefix(maps[1], "0 0 ") {
		t.Errorf("uid maps of two concurrent builds: %q, want two different unprivileged ranges", maps)
	}
}
