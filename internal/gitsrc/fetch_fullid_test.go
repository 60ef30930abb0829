package gitsrc

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/testgit"
)

// TestCommitMustBeFullID: an abbreviated commit ID is refused by Clone and
// the mirror with an error saying so. git prefers a ref to an abbreviated
// object ID, so a repository with a tag named like the abbreviation (here
// it points at another commit) could otherwise get a different commit
// built.
func TestCommitMustBeFullID(t *testing.T) {
	root, repo := appRepo(t)
	testgit.Write(t, repo, map[string]string{"app/Dockerfile": "FROM scratch\n"})
	want := testgit.Commit(t, repo, "reviewed")
	testgit.Write(t, repo, map[string]string{"app/Dockerfile": "FROM evil\n"})
	other := testgit.Commit(t, repo, "other")
	testgit.Run(t, repo, "tag", want[:12], other)

	for _, server := range []struct {
		name string
		opts testgit.HTTPOptions
	}{
		{"protocol v0", testgit.HTTPOptions{ProtocolV0: true}},
		{"protocol v2", testgit.HTTPOptions{}},
	} {
		t.Run(server.name, func(t *testing.T) {
			url := testgit.ServeHTTP(t, root, server.opts) + "/app"
			for _, short := range []string{want[:7], want[:12], want[:39]} {
				for _, branch := range []string{"", "main"} {
					dest := filepath.Join(t.TempDir(), "co")
					err := Clone(t.Context(), url, dest, CloneOptions{Commit: short, Branch: branch})
					if err == nil || !strings.Contains(err.Error(), "full") || !strings.Contains(err.Error(), short) {
						head, _ := HeadCommit(t.Context(), dest)
						t.Errorf("clone at %s (branch %q): %v, checked out %q; want an error asking for a full commit ID", short, branch, err, head)
					}
				}
				_, err := (&Mirror{Dir: t.TempDir()}).ObjectIDs(t.Context(), url, short, "app")
				if err == nil || !strings.Contains(err.Error(), "full") {
					t.Errorf("mirror at %s: %v; want an error asking for a full commit ID", short, err)
				}
			}
			dest := filepath.Join(t.TempDir(), "co")
			if err := Clone(t.Context(), url, dest, CloneOptions{Commit: want}); err != nil {
				t.Fatal(err)
			}
			if head, err := HeadCommit(t.Context(), dest); err != nil || head != want {
				t.Errorf("clone at %s checked out %s (%v)", want, head, err)
			}
		})
	}
}
