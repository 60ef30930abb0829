package bot

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/index"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

const indexEntry = `  - id: %ID%
    app-id: %APP%
    job-id: %JOB%
    git-url: %URL%
    git-branch: master
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: maintainers@example.com
    build-context: ./
    depends-on: null
`

func yamlEntry(id, app, job, url string) string {
	return strings.NewReplacer("%ID%", id, "%APP%", app, "%JOB%", job, "%URL%", url).Replace(indexEntry)
}

// TestGitIndexPR checks a pull request's head in a real git repository:
// an unchanged entry is left out, a new one is checked, a broken one has
// its findings, a removed one is named, a duplicate is structure.
func TestGitIndexPR(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	repo := t.TempDir()
	git(t, repo, "init", "-q", "-b", "master")
	os.MkdirAll(filepath.Join(repo, "index.d"), 0o755)
	index1 := "Projects:\n" + yamlEntry("1", "demo", "base", "https://github.com/demo/base") +
		"\n" + yamlEntry("2", "demo", "new", "https://github.com/demo/new") +
		"\n" + yamlEntry("3", "demo", "broken", "ftp://example.com/broken") +
		"\n" + yamlEntry("4", "demo", "new", "https://github.com/demo/new-again")
	if err := os.WriteFile(filepath.Join(repo, "index.d", "demo.yaml"), []byte(index1), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "onboard")
	head := git(t, repo, "rev-parse", "HEAD")

	current := []*index.Entry{
		{AppID: "demo", JobID: "base", GitURL: "https://github.com/demo/base", GitBranch: "master", GitPath: "/",
			TargetFile: "Dockerfile", DesiredTag: "latest", NotifyEmail: []string{"maintainers@example.com"}, BuildContext: "./"},
		{AppID: "demo", JobID: "gone", GitURL: "https://github.com/demo/gone", GitBranch: "master", DesiredTag: "latest"},
	}
	g := &GitIndexPR{WorkDir: t.TempDir(), Current: func() []*index.Entry { return current }}
	ev := &event.Event{Forge: event.GitHub, Kind: event.KindPullRequest,
		Repo: event.Repo{FullName: "org/index", CloneURL: "file://" + repo},
		PR:   &event.PullRequest{Number: 3, HeadSHA: head}}
	res, err := g.Check(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range res.Changed {
		s := c.Entry.Name() + " ok"
		if index.HasErrors(c.Findings) {
			s = c.Entry.Name() + " errors"
		}
		got = append(got, s)
	}
	if want := []string{"demo/new ok", "demo/broken errors", "demo/new ok"}; !slices.Equal(got, want) {
		t.Errorf("changed = %q, want %q (demo/base unchanged)", got, want)
	}
	if !slices.Equal(res.Removed, []string{"demo/gone:latest"}) {
		t.Errorf("removed = %q, want demo/gone:latest", res.Removed)
	}
	var rules []string
	for _, f := range res.Structure {
		rules = append(rules, f.Rule)
		if strings.HasPrefix(f.Pos.File, "/") {
			t.Errorf("finding path %q is not relative to the index", f.Pos.File)
		}
	}
	if !slices.Contains(rules, "duplicate-image") {
		t.Errorf("structure rules = %q, want duplicate-image", rules)
	}
}
