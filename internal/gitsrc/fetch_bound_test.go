package gitsrc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testgit"
)

// commits adds n empty commits to the branch checked out in repo and
// returns them, oldest first.
func commits(t *testing.T, repo, prefix string, n int) []string {
	var out []string
	for i := range n {
		testgit.Run(t, repo, "commit", "-q", "--allow-empty", "-m", fmt.Sprintf("%s %d", prefix, i))
		out = append(out, testgit.Run(t, repo, "rev-parse", "HEAD"))
	}
	return out
}

// revCount is the number of commits of rev present in the repository at dir.
func revCount(t *testing.T, dir, rev string) int {
	n, err := strconv.Atoi(testgit.Run(t, dir, "rev-list", "--count", rev))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFetchCommitNotFoundIsBounded: a protocol v0 server refuses a commit
// by ID, and no ref reaches it. The fallback fetches the whole history of
// the run's branch only (the mirror none), every other branch and tag only
// to fallbackDepth, and the miss is remembered: asking again fails at once
// with the same error, without asking the server.
func TestFetchCommitNotFoundIsBounded(t *testing.T) {
	root, repo := appRepo(t)
	deepDev(t, repo)
	onMain := commits(t, repo, "main", fallbackDepth+20)
	deep := onMain[0] // deeper than fallbackDepth below main's tip
	absent := strings.Repeat("0123456789", 4)
	url := testgit.ServeHTTP(t, root, testgit.HTTPOptions{ProtocolV0: true}) + "/app"
	misses := NewMisses(time.Hour, 16)

	dest := filepath.Join(t.TempDir(), "co")
	if err := Clone(t.Context(), url, dest, CloneOptions{Commit: deep, Branch: "main", Misses: misses}); err != nil {
		t.Fatalf("clone of %s, %d commits below main's tip: %v", deep, len(onMain)-1, err)
	}

	dest = filepath.Join(t.TempDir(), "co")
	err := Clone(t.Context(), url, dest, CloneOptions{Commit: absent, Branch: "main", Misses: misses})
	if !errors.Is(err, ErrCommitNotFound) || !strings.Contains(err.Error(), absent) || !strings.Contains(err.Error(), url) {
		t.Fatalf("clone of an absent commit: %v; want ErrCommitNotFound naming %s and %s", err, absent, url)
	}
	if n := revCount(t, dest, "refs/remotes/origin/dev"); n > fallbackDepth {
		t.Errorf("clone of an absent commit fetched %d commits of branch dev, want at most %d", n, fallbackDepth)
	}
	m := &Mirror{Dir: t.TempDir()}
	_, err = m.ObjectIDs(t.Context(), url, absent, "app")
	if !errors.Is(err, ErrCommitNotFound) || !strings.Contains(err.Error(), absent) || !strings.Contains(err.Error(), url) {
		t.Fatalf("mirror of an absent commit: %v; want ErrCommitNotFound naming %s and %s", err, absent, url)
	}
	if n := revCount(t, m.dirOf(url), "refs/remotes/origin/dev"); n > fallbackDepth {
		t.Errorf("mirror of an absent commit fetched %d commits of branch dev, want at most %d", n, fallbackDepth)
	}

	// The server is gone: only the memory of the misses can answer.
	if err := os.Rename(repo, repo+".gone"); err != nil {
		t.Fatal(err)
	}
	err = Clone(t.Context(), url, filepath.Join(t.TempDir(), "co"), CloneOptions{Commit: absent, Branch: "main", Misses: misses})
	if !errors.Is(err, ErrCommitNotFound) || !strings.Contains(err.Error(), absent) || !strings.Contains(err.Error(), url) {
		t.Errorf("clone of a commit found missing before: %v; want the remembered ErrCommitNotFound naming %s and %s", err, absent, url)
	}
	_, err = m.ObjectIDs(t.Context(), url, absent, "app")
	if !errors.Is(err, ErrCommitNotFound) || !strings.Contains(err.Error(), absent) || !strings.Contains(err.Error(), url) {
		t.Errorf("mirror of a commit found missing before: %v; want the remembered ErrCommitNotFound naming %s and %s", err, absent, url)
	}
}

// TestMissesBounded: a miss is forgotten after its time, and the memory
// never holds more than its bound (the oldest goes first).
func TestMissesBounded(t *testing.T) {
	clock := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ms := NewMisses(time.Minute, 3)
	ms.now = func() time.Time { return clock }
	notFound := fmt.Errorf("fetch x at c: %w", ErrCommitNotFound)
	for i := range 5 {
		ms.add("u", strconv.Itoa(i), notFound)
		clock = clock.Add(time.Second)
	}
	if len(ms.m) != 3 {
		t.Errorf("holds %d misses, want 3", len(ms.m))
	}
	for i, want := range []bool{false, false, true, true, true} {
		if got := ms.lookup("u", strconv.Itoa(i)) != nil; got != want {
			t.Errorf("commit %d remembered: %v, want %v", i, got, want)
		}
	}
	if err := ms.lookup("u", "4"); !errors.Is(err, ErrCommitNotFound) || !strings.Contains(err.Error(), "fetch x at c") {
		t.Errorf("remembered error %v, want the fetch's ErrCommitNotFound", err)
	}
	clock = clock.Add(time.Minute)
	if err := ms.lookup("u", "4"); err != nil {
		t.Errorf("a miss a minute old (the time to keep it) is still remembered: %v", err)
	}
	var none *Misses
	none.add("u", "c", notFound)
	if err := none.lookup("u", "c"); err != nil {
		t.Errorf("a nil Misses remembers: %v", err)
	}
}

// TestMissOfOneBranchDoesNotHideAnother: a commit deep in branch dev is
// not among main's history nor the last commits of any ref; a clone for
// main finds it missing, and that miss must not answer for a clone for
// dev, whose whole history is searched.
func TestMissOfOneBranchDoesNotHideAnother(t *testing.T) {
	root, repo := appRepo(t)
	onDev := deepDev(t, repo)
	deep := onDev[0]
	url := testgit.ServeHTTP(t, root, testgit.HTTPOptions{ProtocolV0: true}) + "/app"
	misses := NewMisses(time.Hour, 16)

	err := Clone(t.Context(), url, filepath.Join(t.TempDir(), "co"), CloneOptions{Commit: deep, Branch: "main", Misses: misses})
	if !errors.Is(err, ErrCommitNotFound) {
		t.Fatalf("clone for main of a commit deep in dev: %v; want ErrCommitNotFound", err)
	}
	if err := Clone(t.Context(), url, filepath.Join(t.TempDir(), "co"), CloneOptions{Commit: deep, Branch: "dev", Misses: misses}); err != nil {
		t.Fatalf("clone for dev of a commit deep in dev, after a miss for main: %v", err)
	}
}

// appRepo makes a repository "app" on branch main in a folder of the
// test's own (what testgit.ServeHTTP serves), and returns both.
func appRepo(t *testing.T) (root, repo string) {
	t.Helper()
	testgit.Require(t)
	root = t.TempDir()
	repo = filepath.Join(root, "app")
	testgit.Init(t, repo, "main")
	return root, repo
}

// deepDev commits a base on main, then fallbackDepth+20 commits on a
// branch dev from it, and goes back to main; it returns dev's commits.
func deepDev(t *testing.T, repo string) []string {
	t.Helper()
	testgit.Write(t, repo, map[string]string{"app/Dockerfile": "FROM scratch\n"})
	testgit.Commit(t, repo, "base")
	testgit.Run(t, repo, "checkout", "-qb", "dev")
	onDev := commits(t, repo, "dev", fallbackDepth+20)
	testgit.Run(t, repo, "checkout", "-q", "main")
	return onDev
}
