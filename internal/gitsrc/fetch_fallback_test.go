package gitsrc

import (
	"path/filepath"
	"testing"

	"github.com/cccp-project/cccp/internal/testgit"
)

// TestFetchCommitBranchGone: the run's branch was deleted on the remote
// since the run was queued; a protocol v0 server refuses the commit by ID
// and the branch fetch fails, so the fallback goes on to every branch and
// tag, and finds the commit on the branch it was merged into.
func TestFetchCommitBranchGone(t *testing.T) {
	root, repo := appRepo(t)
	testgit.Write(t, repo, map[string]string{"a.txt": "one\n"})
	testgit.Commit(t, repo, "one")
	testgit.Run(t, repo, "checkout", "-qb", "feature")
	testgit.Write(t, repo, map[string]string{"a.txt": "feature\n"})
	feature := testgit.Commit(t, repo, "feature")
	testgit.Run(t, repo, "checkout", "-q", "main")
	testgit.Run(t, repo, "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
	testgit.Write(t, repo, map[string]string{"a.txt": "after\n"})
	testgit.Commit(t, repo, "after")
	testgit.Run(t, repo, "branch", "-qD", "feature")

	url := testgit.ServeHTTP(t, root, testgit.HTTPOptions{ProtocolV0: true}) + "/app"
	dest := filepath.Join(t.TempDir(), "co")
	if err := Clone(t.Context(), url, dest, CloneOptions{Commit: feature, Branch: "feature"}); err != nil {
		t.Fatalf("clone of %s from deleted branch feature: %v", feature, err)
	}
	if head, err := HeadCommit(t.Context(), dest); err != nil || head != feature {
		t.Errorf("checked out %s (%v), want %s", head, err, feature)
	}
}
