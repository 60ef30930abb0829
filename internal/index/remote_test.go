package index

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/testgit"
)

type realGit struct{}

func (realGit) LsRemote(ctx context.Context, url string) (map[string]string, error) {
	return gitsrc.LsRemote(ctx, url)
}

func (realGit) Clone(ctx context.Context, url, branch, dest string) error {
	return gitsrc.Clone(ctx, url, dest, gitsrc.CloneOptions{Branch: branch})
}

// appRepo makes an application repository: images/web with a Dockerfile
// and a cccp.yaml for job-id web, images/bare with only a Dockerfile.
func appRepo(t *testing.T) string {
	t.Helper()
	return testgit.Repo(t, "main", map[string]string{
		"images/web/Dockerfile":  "FROM busybox\n",
		"images/web/cccp.yaml":   "job-id: web\ntest-skip: True\nextra: 1\n",
		"images/bare/Dockerfile": "FROM busybox\n",
	})
}

func TestLintRemote(t *testing.T) {
	repo := appRepo(t)
	url := "file://" + repo
	body := "Projects:\n" +
		entry("1", "web", "git-url: "+url, "git-branch: main", "git-path: images/web") + // line 2: good, one warning from cccp.yaml
		entry("2", "nobranch", "git-url: "+url, "git-branch: gone", "git-path: images/web") + // 10
		entry("3", "notarget", "git-url: "+url, "git-branch: main", "git-path: images/web", "target-file: Containerfile") + // 18
		entry("4", "mismatch", "git-url: "+url, "git-branch: main", "git-path: images/web") + // 27
		entry("5", "noconfig", "git-url: "+url, "git-branch: main", "git-path: images/bare") + // 35
		entry("6", "gone", "git-url: file://"+repo+"-missing", "git-branch: main") // 43
	dir := writeIndex(t, map[string]string{"app.yaml": body})
	idx, _, err := Load(context.Background(), dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fs := LintRemote(context.Background(), idx, RemoteOptions{Git: realGit{}, Concurrency: 2, WorkDir: t.TempDir()})
	want := []string{
		"unknown-field@6", "remote-branch@15", "remote-target@23", "remote-config@26", "unknown-field@28",
		"remote-config@35", "remote-clone@41",
	}
	for _, f := range fs {
		if strings.Contains(f.String(), "\n") {
			t.Errorf("finding spans lines: %q", f)
		}
	}
	if got := summary(fs); !slices.Equal(got, want) {
		t.Errorf("findings\n%v\nwant\n%v\n%v", got, want, fs)
	}

	t.Run("only", func(t *testing.T) {
		fs := LintRemote(context.Background(), idx, RemoteOptions{Git: realGit{}, Only: func(e *Entry) bool { return e.JobID == "nobranch" }})
		if got := summary(fs); !slices.Equal(got, []string{"remote-branch@15"}) {
			t.Errorf("findings %v", got)
		}
	})
}

func TestChangedEntries(t *testing.T) {
	testgit.Require(t)
	dir := writeIndex(t, map[string]string{
		"app.yaml":   "Projects:\n" + entry("1", "a") + entry("2", "b") + entry("3", "c"),
		"other.yaml": "Projects:\n" + entry("1", "x", "app-id: other"),
	})
	testgit.Init(t, dir, "main")
	rev := testgit.Commit(t, dir, "index")
	// b changes, a moves down (c first), d is new, other.yaml untouched.
	os.WriteFile(filepath.Join(dir, "index.d", "app.yaml"), []byte("Projects:\n"+entry("3", "c")+entry("1", "a")+
		entry("2", "b", "git-branch: dev")+entry("4", "d")), 0o644)
	os.WriteFile(filepath.Join(dir, "index.d", "new.yaml"), []byte("Projects:\n"+entry("1", "n", "app-id: new")), 0o644)

	ctx := context.Background()
	idx, _, err := Load(ctx, dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	changed, err := gitsrc.ChangedFiles(ctx, dir, rev)
	if err != nil {
		t.Fatal(err)
	}
	es, err := ChangedEntries(idx, dir, changed, func(rel string) ([]byte, bool, error) {
		return gitsrc.ShowFile(ctx, dir, rev, rel)
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	if want := []string{"app/b", "app/d", "new/n"}; !slices.Equal(got, want) {
		t.Errorf("changed %v, want %v", got, want)
	}
}
