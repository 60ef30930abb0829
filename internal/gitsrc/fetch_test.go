package gitsrc

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/testgit"
)

// TestFetchCommitNoRefPointsAt fetches commits that no ref points at (a
// branch that moved on since its run was queued) from git http-backend
// with its default configuration. Speaking protocol v0 it refuses them by
// ID, so the clone and the mirror fall back to the branches; speaking v2
// it serves them by ID.
func TestFetchCommitNoRefPointsAt(t *testing.T) {
	root, repo := appRepo(t)
	testgit.Write(t, repo, map[string]string{"a.txt": "one\n", "app/Dockerfile": "FROM scratch\n"})
	first := testgit.Commit(t, repo, "one")
	testgit.Write(t, repo, map[string]string{"a.txt": "two\n"})
	testgit.Commit(t, repo, "two")
	testgit.Run(t, repo, "checkout", "-qb", "dev", first)
	testgit.Write(t, repo, map[string]string{"dev.txt": "dev\n"})
	devOld := testgit.Commit(t, repo, "dev one")
	testgit.Write(t, repo, map[string]string{"dev.txt": "dev two\n"})
	testgit.Commit(t, repo, "dev two")
	testgit.Run(t, repo, "checkout", "-q", "main")
	absent := strings.Repeat("0123456789", 4)

	for _, server := range []struct {
		name string
		opts testgit.HTTPOptions
	}{
		{"protocol v0", testgit.HTTPOptions{ProtocolV0: true}},
		{"protocol v2", testgit.HTTPOptions{}},
	} {
		t.Run(server.name, func(t *testing.T) {
			url := testgit.ServeHTTP(t, root, server.opts) + "/app"
			for _, tc := range []struct {
				name string
				opts CloneOptions
			}{
				{"on its branch", CloneOptions{Commit: first, Branch: "main"}},
				{"branch unknown", CloneOptions{Commit: devOld}},
				{"on another branch", CloneOptions{Commit: devOld, Branch: "main"}},
			} {
				t.Run("clone "+tc.name, func(t *testing.T) {
					dest := filepath.Join(t.TempDir(), "co")
					if err := Clone(t.Context(), url, dest, tc.opts); err != nil {
						t.Fatal(err)
					}
					if head, err := HeadCommit(t.Context(), dest); err != nil || head != tc.opts.Commit {
						t.Errorf("checked out %s (%v), want %s", head, err, tc.opts.Commit)
					}
				})
			}
			t.Run("mirror", func(t *testing.T) {
				m := &Mirror{Dir: t.TempDir()}
				got, err := m.ObjectIDs(t.Context(), url, first, "app")
				if err != nil {
					t.Fatal(err)
				}
				if want := testgit.Run(t, repo, "rev-parse", first+":app"); got[0] != want {
					t.Errorf("tree of app at %s: %s, want %s", first, got[0], want)
				}
			})
			t.Run("absent commit", func(t *testing.T) {
				err := Clone(t.Context(), url, filepath.Join(t.TempDir(), "co"), CloneOptions{Commit: absent, Branch: "main"})
				if !errors.Is(err, ErrCommitNotFound) || !strings.Contains(err.Error(), absent) || !strings.Contains(err.Error(), url) {
					t.Errorf("clone of an absent commit: %v; want ErrCommitNotFound naming %s and %s", err, absent, url)
				}
				_, err = (&Mirror{Dir: t.TempDir()}).ObjectIDs(t.Context(), url, absent, "")
				if !errors.Is(err, ErrCommitNotFound) || !strings.Contains(err.Error(), absent) || !strings.Contains(err.Error(), url) {
					t.Errorf("mirror of an absent commit: %v; want ErrCommitNotFound naming %s and %s", err, absent, url)
				}
			})
		})
	}
}
