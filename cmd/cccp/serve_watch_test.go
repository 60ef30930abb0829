package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/types"
)

func TestPolledRepositories(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config func(*serveConfig)
		url    string
		want   bool
	}{
		{"no forge: everything", func(*serveConfig) {}, "https://github.com/org/app.git", true},
		{"github with webhooks", func(c *serveConfig) { c.GitHub.WebhookSecret = "s" }, "https://github.com/org/app.git", false},
		{"github ssh form", func(c *serveConfig) { c.GitHub.WebhookSecret = "s" }, "git@github.com:org/app.git", false},
		{"github token only sends no webhooks", func(c *serveConfig) { c.GitHub.Token = "t" }, "https://github.com/org/app.git", true},
		{"other host", func(c *serveConfig) { c.GitHub.WebhookSecret = "s" }, "https://git.example.org/app.git", true},
		{"enterprise api url", func(c *serveConfig) {
			c.GitHub.WebhookSecret, c.GitHub.BaseURL = "s", "https://api.ghe.example/"
		}, "https://ghe.example/org/app", false},
		{"gitea", func(c *serveConfig) { c.Gitea.WebhookSecret, c.Gitea.BaseURL = "s", "https://Gitea.Example:3000/" }, "https://gitea.example:3000/a/b", false},
		{"explicit list", func(c *serveConfig) { c.Pipeline.Poll.Repos = []string{"https://git.example.org/"} }, "https://git.example.org/x.git", true},
		{"explicit list, not in it", func(c *serveConfig) { c.Pipeline.Poll.Repos = []string{"https://git.example.org/"} }, "https://other.example/x.git", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &serveConfig{}
			tc.config(c)
			if got := c.polled(tc.url, c.webhookHosts()); got != tc.want {
				t.Errorf("polled(%q) = %v, want %v (hooked %v)", tc.url, got, tc.want, c.webhookHosts())
			}
		})
	}
}

func TestValidateWatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		config  func(*serveConfig)
		wantErr string
	}{
		{"off", func(*serveConfig) {}, ""},
		{"on", func(c *serveConfig) {
			c.Pipeline.Poll.Interval, c.Pipeline.BaseImages.Interval = time.Minute, time.Hour
		}, ""},
		{"poll too often", func(c *serveConfig) { c.Pipeline.Poll.Interval = time.Second }, "pipeline.poll.interval"},
		{"base images too often", func(c *serveConfig) { c.Pipeline.BaseImages.Interval = time.Second }, "pipeline.base_images.interval"},
		{"empty prefix", func(c *serveConfig) { c.Pipeline.Poll.Repos = []string{""} }, "pipeline.poll.repos[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &serveConfig{}
			tc.config(c)
			err := c.validateWatch()
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("validateWatch() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

type recordingEnqueuer struct {
	mu   sync.Mutex
	reqs []pipeline.Request
	got  chan struct{}
}

func (r *recordingEnqueuer) Enqueue(_ context.Context, req pipeline.Request) (*store.Run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	r.got <- struct{}{}
	return &store.Run{ID: "1"}, nil
}

type staticIndex []*index.Entry

func (s staticIndex) Entries() []*index.Entry { return s }
func (s staticIndex) Entry(key string) (*index.Entry, bool) {
	for _, e := range s {
		if e.Key() == key {
			return e, true
		}
	}
	return nil, false
}

// serve's watchers queue branch runs: a polled branch that moved (cause
// poll, at the new commit) and an entry whose FROM image outside the index
// got a new digest in a real registry (cause base-image).
func TestWatchersQueueRuns(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	repo := testgit.Repo(t, "master", map[string]string{"Dockerfile": "FROM x\n"})
	head := testgit.Run(t, repo, "rev-parse", "HEAD")
	reg, err := registry.Start(ctx, registry.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	user, pass := reg.PushCredentials()
	base := reg.Host() + "/library/busybox:latest"
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(base, name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	polled := &index.Entry{AppID: "acme", JobID: "polled", DesiredTag: "latest", GitURL: "file://" + repo, GitBranch: "master"}
	built := &index.Entry{AppID: "acme", JobID: "onbase", DesiredTag: "latest", GitURL: "https://github.com/acme/onbase", GitBranch: "master"}
	// What cccp saw before: an older head, an older digest, and a build of
	// acme/onbase FROM the base image.
	for _, kv := range [][3]string{{"poll-heads", "file://" + repo + " master", "0000000"}, {"base-digests", base, "sha256:old"}} {
		if err := db.PutMeta(ctx, kv[0], kv[1], []byte(kv[2])); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateRun(ctx, &store.Run{Project: built.Key(), Kind: types.KindBranch, State: store.Passed,
		Stages: []store.Stage{{Name: types.StageBuild, State: store.Passed, Bases: []store.Base{{Image: base}}}}}); err != nil {
		t.Fatal(err)
	}
	cfg := &serveConfig{}
	cfg.GitHub.WebhookSecret = "s" // github.com sends webhooks: acme/onbase is not polled
	cfg.Pipeline.Poll.Interval, cfg.Pipeline.BaseImages.Interval = time.Hour, time.Hour
	q := &recordingEnqueuer{got: make(chan struct{}, 4)}
	client := registry.NewClient(registry.ClientConfig{AuthFiles: []string{}})
	if err := startWatchers(ctx, cfg, q, db, staticIndex{polled, built}, client.Digest, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-q.got:
		case <-time.After(time.Minute):
			t.Fatalf("queued only %+v", q.reqs)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var got []string
	for _, r := range q.reqs {
		got = append(got, fmt.Sprintf("%s %s %s commit=%s", r.Project, r.Kind, r.Cause.Kind, r.Commit))
	}
	slices.Sort(got)
	want := []string{
		"acme/onbase:latest branch base-image commit=",
		"acme/polled:latest branch poll commit=" + head,
	}
	if !slices.Equal(got, want) {
		t.Errorf("queued\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
