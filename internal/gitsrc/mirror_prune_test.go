package gitsrc

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testgit"
)

func TestMirrorPrune(t *testing.T) {
	testgit.Require(t)
	day := 24 * time.Hour
	clock := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	m := &Mirror{Dir: dir, Now: func() time.Time { return clock }}
	repo := func(name string) (url, commit string) {
		r := testgit.Repo(t, "main", map[string]string{"app/Dockerfile": "FROM scratch\n", "name": name})
		return "file://" + r, testgit.Run(t, r, "rev-parse", "HEAD")
	}
	old, oldC := repo("old")
	used, usedC := repo("used")
	gone, goneC := repo("gone") // no longer in the index
	use := func(url, commit string) {
		t.Helper()
		if _, err := m.ObjectIDs(t.Context(), url, commit, "app"); err != nil {
			t.Fatal(err)
		}
	}
	use(old, oldC)
	use(used, usedC)
	use(gone, goneC)
	clock = clock.Add(40 * day)
	// Answered from memory: still a use.
	use(used, usedC)
	use(gone, goneC)
	// What a crash left of a copy being made.
	leftover := filepath.Join(dir, "0123456789abcdef01234567.git.new")
	if err := os.MkdirAll(leftover, 0o755); err != nil {
		t.Fatal(err)
	}

	clock = clock.Add(5 * day)
	inIndex := func(url string, _ time.Time) bool { return url == old || url == used }
	// A new process reads the last uses from the markers alone.
	fresh := &Mirror{Dir: dir, Now: m.Now}
	for _, dry := range []bool{true, false} {
		got, err := fresh.Prune(t.Context(), clock.Add(-30*day), inIndex, dry)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{old + " (" + filepath.Base(m.dirOf(old)) + ", unused since 2026-10-01)",
			gone + " (" + filepath.Base(m.dirOf(gone)) + ", not in the index, unused since 2026-11-10)",
			"unfinished copy (" + filepath.Base(leftover) + ")"}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("Prune (dry run %v) = %q, want %q", dry, got, want)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if want := []string{m.dirOf(used)}; !slices.Equal(left, want) {
		t.Errorf("left after pruning: %q, want %q", left, want)
	}
	// An answer from memory does not bring a removed copy back; a use
	// that needs the copy makes it again.
	use(old, oldC)
	if _, err := os.Stat(m.dirOf(old)); err == nil {
		t.Errorf("an answer from memory made a removed copy's folder again")
	}
	if _, err := fresh.ObjectIDs(t.Context(), old, oldC, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.dirOf(old), "HEAD")); err != nil {
		t.Errorf("copy not made again: %v", err)
	}
}

// TestMirrorPruneWaitsForUse: a copy whose use is under way when Prune
// comes is judged after that use, which makes it recent.
func TestMirrorPruneWaitsForUse(t *testing.T) {
	testgit.Require(t)
	clock := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	m := &Mirror{Dir: t.TempDir(), Now: func() time.Time { return clock }}
	r := testgit.Repo(t, "main", map[string]string{"a": "1"})
	url := "file://" + r
	commit := testgit.Run(t, r, "rev-parse", "HEAD")
	if _, err := m.ObjectIDs(t.Context(), url, commit, ""); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(60 * 24 * time.Hour)

	// A use begins: it holds the copy's lock, as ObjectIDs does while it
	// fetches.
	dir := m.dirOf(url)
	l := m.lock(dir)
	l.Lock()
	done := make(chan []string)
	go func() {
		got, err := m.Prune(t.Context(), clock.Add(-30*24*time.Hour), nil, false)
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	// Give a Prune that ignored the lock time to remove the copy; one that
	// waits for the lock cannot have ended.
	time.Sleep(300 * time.Millisecond)
	select {
	case got := <-done:
		t.Fatalf("Prune ended while the copy was in use (removed %q)", got)
	default:
	}
	_, statErr := os.Stat(filepath.Join(dir, "HEAD"))
	m.noteUse(dir, true)
	l.Unlock()
	got := <-done
	if statErr != nil || len(got) != 0 {
		t.Errorf("Prune removed a copy in use: %q (HEAD during the use: %v)", got, statErr)
	}
	if ids, err := (&Mirror{Dir: m.Dir}).ObjectIDs(t.Context(), url, commit, ""); err != nil || len(ids) != 1 {
		t.Errorf("copy unusable after Prune: %v %v", ids, err)
	}
}
