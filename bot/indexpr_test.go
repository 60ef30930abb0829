package bot

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/testgit"
)

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
	// The same pull request to an index.d/ file and to a single-file
	// cccp-index.yaml.
	for _, file := range []string{"index.d/demo.yaml", "cccp-index.yaml"} {
		t.Run(file, func(t *testing.T) {
			repo := t.TempDir()
			testgit.Init(t, repo, "master")
			index1 := "Projects:\n" + yamlEntry("1", "demo", "base", "https://github.com/demo/base") +
				"\n" + yamlEntry("2", "demo", "new", "https://github.com/demo/new") +
				"\n" + yamlEntry("3", "demo", "broken", "ftp://example.com/broken") +
				"\n" + yamlEntry("4", "demo", "new", "https://github.com/demo/new-again")
			testgit.Write(t, repo, map[string]string{file: index1})
			head := testgit.Commit(t, repo, "onboard")

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
		})
	}
}
