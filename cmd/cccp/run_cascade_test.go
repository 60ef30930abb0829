package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/testimage"
)

// cascadeIndex: base -> mid -> leaf1, and leaf2 FROM mid that also
// depends on base (two parents in one cascade).
const cascadeIndex = `Projects:
%s`

func cascadeEntry(id int, job, repo, dependsOn string) string {
	return fmt.Sprintf(`  - id: %d
    app-id: acme
    job-id: %s
    git-url: file://%s
    git-branch: master
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: ops@example.com
    depends-on: %s
`, id, job, repo, dependsOn)
}

// TestRunCascadeRebuildsDescendantsOnceParentsFirst builds real images:
// `cccp run acme/base` builds base and then every descendant once, each
// after its parents delivered and FROM the parent's new image (checked in
// the registry: the child's layers start with the parent's). Then a base
// change with a broken middle stops the leaves below it.
func TestRunCascadeRebuildsDescendantsOnceParentsFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with buildah; not in -short")
	}
	testimage.Require(t)
	dir := t.TempDir()
	reg := testimage.Registry(t, "", "")
	repos := cascadeFixture(t, dir)
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cccpRun := func() (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(ctx, []string{"run", "--index", filepath.Join(dir, "index"), "--allow-file-urls", "--data", data,
			"--registry", reg, "--blocking", "user-script", "acme/base"}, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	code, stdout, stderr := cccpRun()
	if code != exitOK {
		t.Fatalf("cccp run acme/base: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, job := range []string{"base", "mid", "leaf1", "leaf2"} {
		if n := strings.Count(stdout, "acme/"+job+":latest "); n != 1 {
			t.Errorf("summary names acme/%s %d times, want once:\n%s", job, n, stdout)
		}
		if !summaryLine(stdout, "acme/"+job+":latest", "rebuilt") {
			t.Errorf("acme/%s is not rebuilt in the summary:\n%s", job, stdout)
		}
	}
	// Each child's image is built on its parent's delivered image: the
	// child's layers begin with the parent's, read from the registry.
	for child, parent := range map[string]string{"mid": "base", "leaf1": "mid", "leaf2": "mid"} {
		pl, cl := layers(t, reg+"/acme/"+parent+":latest"), layers(t, reg+"/acme/"+child+":latest")
		if len(cl) != len(pl)+1 || !equalHashes(cl[:len(pl)], pl) {
			t.Errorf("acme/%s layers %v do not extend acme/%s's %v", child, cl, parent, pl)
		}
	}
	// Parents first: each child's run was queued after its parents' runs
	// finished, and each project ran once.
	db, err := store.Open(filepath.Join(data, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := db.Runs(ctx, store.RunFilter{})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	byProject := map[string]*store.Run{}
	for _, r := range runs {
		if byProject[r.Project] != nil {
			t.Errorf("%s ran twice", r.Project)
		}
		byProject[r.Project] = r
	}
	for _, pc := range [][2]string{{"base", "mid"}, {"mid", "leaf1"}, {"mid", "leaf2"}, {"base", "leaf2"}} {
		p, c := byProject["acme/"+pc[0]+":latest"], byProject["acme/"+pc[1]+":latest"]
		// Queued with the whole cascade, waiting: released and started
		// only once the parent finished.
		if p == nil || c == nil || c.Released.IsZero() || c.Released.Before(p.Finished) || c.Started.Before(p.Finished) {
			t.Errorf("%s was released or started before %s finished", pc[1], pc[0])
		}
	}

	// A base change with a broken middle: mid fails, both leaves stop.
	testgit.Write(t, repos["base"], map[string]string{"base.txt": "base 2\n"})
	testgit.Commit(t, repos["base"], "base 2")
	testgit.Write(t, repos["mid"], map[string]string{"Dockerfile": "FROM acme/base:latest\nCOPY missing.txt /mid.txt\n"})
	testgit.Commit(t, repos["mid"], "break mid")
	code, stdout, stderr = cccpRun()
	if code != exitFailure {
		t.Fatalf("cccp run with a broken middle: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFailure, stdout, stderr)
	}
	for job, want := range map[string]string{"base": "rebuilt", "mid": "failed", "leaf1": "stopped", "leaf2": "stopped"} {
		if !summaryLine(stdout, "acme/"+job+":latest", want) {
			t.Errorf("acme/%s is not %s in the summary:\n%s", job, want, stdout)
		}
	}
	if n := strings.Count(stdout, "waiting on acme/mid:latest, which failed"); n != 2 {
		t.Errorf("the stopped leaves do not say why (%d):\n%s", n, stdout)
	}
}

// cascadeFixture writes the four repositories and the index (dir/index)
// of the cascade tests and returns the repositories by job.
func cascadeFixture(t *testing.T, dir string) map[string]string {
	t.Helper()
	repos := map[string]string{}
	files := map[string]map[string]string{
		"base":  {"Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\nCOPY base.txt /base.txt\n", "base.txt": "base 1\n"},
		"mid":   {"Dockerfile": "FROM acme/base:latest\nCOPY mid.txt /mid.txt\n", "mid.txt": "mid\n"},
		"leaf1": {"Dockerfile": "FROM acme/mid:latest\nCOPY leaf1.txt /leaf1.txt\n", "leaf1.txt": "leaf1\n"},
		"leaf2": {"Dockerfile": "FROM acme/mid:latest\nCOPY leaf2.txt /leaf2.txt\n", "leaf2.txt": "leaf2\n"},
	}
	for job, fs := range files {
		repo := filepath.Join(dir, job)
		testgit.Write(t, repo, fs)
		if job == "base" {
			testimage.CopyBusybox(t, repo)
		}
		testgit.Init(t, repo, "master")
		testgit.Commit(t, repo, job)
		repos[job] = repo
	}
	writeFile(t, filepath.Join(dir, "index", "index.d", "acme.yaml"), fmt.Sprintf(cascadeIndex,
		cascadeEntry(1, "base", repos["base"], "null")+
			cascadeEntry(2, "mid", repos["mid"], "acme/base:latest")+
			cascadeEntry(3, "leaf1", repos["leaf1"], "acme/mid:latest")+
			cascadeEntry(4, "leaf2", repos["leaf2"], "[acme/mid:latest, acme/base:latest]")))
	return repos
}

// summaryLine tells whether the summary's line of project has result.
func summaryLine(out, project, result string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == project && f[2] == result {
			return true
		}
	}
	return false
}

func layers(t *testing.T, ref string) []v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("read %s: %v", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func equalHashes(a, b []v1.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
