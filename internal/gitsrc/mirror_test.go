package gitsrc

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cccp-project/cccp/internal/testgit"
)

func TestMirrorObjectIDs(t *testing.T) {
	repo := testgit.Repo(t, "main", map[string]string{"app/Dockerfile": "FROM scratch\n", "app/src/a.txt": "a", "README": "r"})
	url := "file://" + repo
	first := testgit.Run(t, repo, "rev-parse", "HEAD")
	m := &Mirror{Dir: t.TempDir()}
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		commit func() string
		paths  []string
		want   []string
	}{
		{"folder and file", func() string { return first }, []string{"app", "app/Dockerfile"},
			[]string{testgit.Run(t, repo, "rev-parse", first+":app"), testgit.Run(t, repo, "rev-parse", first+":app/Dockerfile")}},
		{"root", func() string { return first }, []string{""}, []string{testgit.Run(t, repo, "rev-parse", first+"^{tree}")}},
		{"a later commit is fetched", func() string {
			testgit.Write(t, repo, map[string]string{"app/src/a.txt": "b"})
			return testgit.Commit(t, repo, "change")
		}, []string{"app", "app/Dockerfile"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.commit()
			want := tc.want
			if want == nil {
				want = []string{testgit.Run(t, repo, "rev-parse", c+":app"), testgit.Run(t, repo, "rev-parse", c+":app/Dockerfile")}
			}
			got, err := m.ObjectIDs(ctx, url, c, tc.paths...)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %q, want %q", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("path %q: got %s, want %s", tc.paths[i], got[i], want[i])
				}
			}
		})
	}
	// One copy per repository, reused for every commit.
	dirs, _ := filepath.Glob(filepath.Join(m.Dir, "*.git"))
	if len(dirs) != 1 {
		t.Fatalf("mirror dirs %q", dirs)
	}
	for _, bad := range []struct{ commit, path string }{{first, "missing"}, {"not-a-commit", ""}, {"--upload-pack=x", ""}} {
		if _, err := m.ObjectIDs(ctx, url, bad.commit, bad.path); err == nil {
			t.Errorf("ObjectIDs(%q, %q) succeeded", bad.commit, bad.path)
		}
	}
	if _, err := m.ObjectIDs(ctx, "-oops", first, ""); err == nil {
		t.Error("an option as URL was accepted")
	}
}
