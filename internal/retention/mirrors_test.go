package retention_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/retention"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testgit"
)

// TestPruneMirrors: retention removes the git mirrors unused for
// MirrorsUnusedFor and those of URLs the index does not have unused for a
// day (a pull request's fork used an hour ago stays), reports them, and,
// in a dry run, only reports them.
func TestPruneMirrors(t *testing.T) {
	testgit.Require(t)
	ctx := t.Context()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	mirrors := &gitsrc.Mirror{Dir: filepath.Join(dir, "mirrors"), Now: now}
	repo := func(name string) string {
		r := testgit.Repo(t, "main", map[string]string{"Dockerfile": "FROM scratch\n", "name": name})
		url := "file://" + r
		if _, err := mirrors.ObjectIDs(ctx, url, testgit.Run(t, r, "rev-parse", "HEAD"), ""); err != nil {
			t.Fatal(err)
		}
		return url
	}
	quiet := repo("quiet")
	clock = clock.Add(20 * 24 * time.Hour)
	busy, dropped := repo("busy"), repo("dropped")
	clock = clock.Add(15*24*time.Hour - time.Hour) // quiet: 35 days unused, the others 15
	fork := repo("fork")                           // a pull request's fork: never in the index
	clock = clock.Add(time.Hour)

	for _, tc := range []struct {
		name string
		urls func(context.Context) (map[string]bool, error)
		want []string // URLs removed
	}{
		{"index unknown: age alone", func(context.Context) (map[string]bool, error) {
			return nil, errors.New("index not loaded")
		}, []string{quiet}},
		{"index known", func(context.Context) (map[string]bool, error) {
			return map[string]bool{quiet: true, busy: true}, nil
		}, []string{dropped, quiet}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := retention.New(retention.Config{Store: db, Logs: runlog.New(filepath.Join(dir, "logs"), 0),
				Registry: registry.NewClient(registry.ClientConfig{AuthFiles: []string{}}),
				Mirrors:  mirrors, MirrorURLs: tc.urls, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Prune(ctx, true)
			if err != nil || res.Kept != nil {
				t.Fatalf("dry run: %v, kept %v", err, res.Kept)
			}
			checkRemoved(t, "dry run", res.Mirrors, tc.want)
			for _, u := range []string{quiet, busy, dropped, fork} {
				if !exists(t, mirrors.Dir, u) {
					t.Errorf("dry run removed the mirror of %s", u)
				}
			}
		})
	}

	p, err := retention.New(retention.Config{Store: db, Logs: runlog.New(filepath.Join(dir, "logs"), 0),
		Registry: registry.NewClient(registry.ClientConfig{AuthFiles: []string{}}),
		Mirrors:  mirrors, Now: now,
		MirrorURLs: func(context.Context) (map[string]bool, error) {
			return map[string]bool{quiet: true, busy: true}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Prune(ctx, false)
	if err != nil || res.Kept != nil {
		t.Fatalf("prune: %v, kept %v", err, res.Kept)
	}
	checkRemoved(t, "prune", res.Mirrors, []string{dropped, quiet})
	for u, want := range map[string]bool{quiet: false, busy: true, dropped: false, fork: true} {
		if got := exists(t, mirrors.Dir, u); got != want {
			t.Errorf("mirror of %s exists: %v, want %v", u, got, want)
		}
	}
}

// checkRemoved compares the reported mirrors with the URLs that should
// have gone (each report starts with its URL).
func checkRemoved(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: removed %q, want the mirrors of %q", what, got, want)
	}
	for _, u := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, u+" (")
		}
		if !found {
			t.Errorf("%s: removed %q, want the mirror of %s among them", what, got, u)
		}
	}
}

// exists reports whether a mirror of url is in dir (its git config names
// the URL).
func exists(t *testing.T, dir, url string) bool {
	t.Helper()
	cfgs, err := filepath.Glob(filepath.Join(dir, "*.git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfgs {
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "url = "+url+"\n") {
			return true
		}
	}
	return false
}
