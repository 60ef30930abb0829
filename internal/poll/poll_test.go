package poll

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/types"
)

type queued struct {
	mu    sync.Mutex
	calls []string
	fail  bool
}

func (q *queued) queue(_ context.Context, key, commit string, c store.Cause) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail {
		return fmt.Errorf("queue full")
	}
	if c.Kind != types.CausePoll || c.Commit != commit {
		return fmt.Errorf("bad cause %+v", c)
	}
	q.calls = append(q.calls, key+"@"+commit[:7])
	return nil
}

func (q *queued) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.calls
	q.calls = nil
	slices.Sort(out)
	return out
}

func TestRoundQueuesMovedBranches(t *testing.T) {
	app := testgit.Repo(t, "main", map[string]string{"Dockerfile": "FROM scratch\n"})
	testgit.Run(t, app, "branch", "stable")
	other := testgit.Repo(t, "master", map[string]string{"Dockerfile": "FROM scratch\n"})
	appURL, otherURL := "file://"+app, "file://"+other
	db, err := store.Open(filepath.Join(t.TempDir(), "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var lsMu sync.Mutex
	lsCalls := map[string]int{}
	q := &queued{}
	targets := []Target{
		{Key: "org/app:latest", GitURL: appURL, Branch: "main"},
		{Key: "org/app-tools:latest", GitURL: appURL, Branch: "main"}, // same repo and branch
		{Key: "org/app:stable", GitURL: appURL, Branch: "stable"},
		{Key: "org/other:latest", GitURL: otherURL, Branch: "master"},
	}
	p, err := New(Config{
		Targets: func() []Target { return targets },
		LsRemote: func(ctx context.Context, url string) (map[string]string, error) {
			lsMu.Lock()
			lsCalls[url]++
			lsMu.Unlock()
			return gitsrc.LsRemote(ctx, url)
		},
		Meta: db, Queue: q.queue,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	head := func(dir string) string { return testgit.Run(t, dir, "rev-parse", "HEAD")[:7] }
	push := func(dir, branch string) func() {
		return func() {
			testgit.Run(t, dir, "checkout", "-q", branch)
			testgit.Write(t, dir, map[string]string{"f": branch + testgit.Run(t, dir, "rev-parse", "HEAD")})
			testgit.Commit(t, dir, "change")
		}
	}
	for _, step := range []struct {
		name   string
		change func()
		want   func() []string
	}{
		{"first sight builds nothing", func() {}, func() []string { return nil }},
		{"nothing moved", func() {}, func() []string { return nil }},
		{"main moved: both entries of it", push(app, "main"), func() []string {
			return []string{"org/app-tools:latest@" + head(app), "org/app:latest@" + head(app)}
		}},
		{"stable moved", push(app, "stable"), func() []string { return []string{"org/app:stable@" + head(app)} }},
		{"other repository", push(other, "master"), func() []string { return []string{"org/other:latest@" + head(other)} }},
		{"seen already", func() {}, func() []string { return nil }},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.change()
			before := map[string]int{}
			lsMu.Lock()
			for k, v := range lsCalls {
				before[k] = v
			}
			lsMu.Unlock()
			res, err := p.Round(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := q.take(), step.want(); !slices.Equal(got, want) {
				t.Errorf("queued %q, want %q", got, want)
			}
			if res.Repos != 2 {
				t.Errorf("asked %d repositories, want 2", res.Repos)
			}
			lsMu.Lock()
			defer lsMu.Unlock()
			for _, u := range []string{appURL, otherURL} {
				if n := lsCalls[u] - before[u]; n != 1 {
					t.Errorf("%d ls-remote of %s in one round, want 1", n, u)
				}
			}
		})
	}
}

func TestRoundRetriesWhatItCouldNotQueue(t *testing.T) {
	app := testgit.Repo(t, "main", map[string]string{"a": "1"})
	db, err := store.Open(filepath.Join(t.TempDir(), "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := &queued{}
	p, err := New(Config{
		Targets: func() []Target {
			return []Target{{Key: "org/app:latest", GitURL: "file://" + app, Branch: "main"},
				{Key: "org/gone:latest", GitURL: "file:///nonexistent/repo", Branch: "main"}}
		},
		LsRemote: gitsrc.LsRemote, Meta: db, Queue: q.queue,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if res, err := p.Round(ctx); err == nil || res.Failed != 1 {
		t.Fatalf("round with a missing repository: %+v, %v", res, err)
	}
	testgit.Write(t, app, map[string]string{"a": "2"})
	c := testgit.Commit(t, app, "change")
	q.fail = true
	if res, _ := p.Round(ctx); res.Queued != 0 {
		t.Fatalf("queued %d with a failing queue", res.Queued)
	}
	q.fail = false
	p.Round(ctx)
	if got := q.take(); !slices.Equal(got, []string{"org/app:latest@" + c[:7]}) {
		t.Errorf("after the queue recovered: %q", got)
	}
}
