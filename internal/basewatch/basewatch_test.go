package basewatch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

type queue struct {
	mu    sync.Mutex
	calls []string
}

func (q *queue) add(_ context.Context, key string, c store.Cause) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if c.Kind != types.CauseBaseImage {
		return fmt.Errorf("cause %q", c.Kind)
	}
	q.calls = append(q.calls, key)
	return nil
}

func (q *queue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.calls
	q.calls = nil
	slices.Sort(out)
	return out
}

// pushRandom pushes a new random image to ref and returns its digest.
func pushRandom(t *testing.T, ref string, auth authn.Authenticator) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(auth), remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestMovedTagQueuesItsEntriesAndFailingRegistryBacksOff(t *testing.T) {
	ctx := t.Context()
	reg, err := registry.Start(ctx, registry.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	user, pass := reg.PushCredentials()
	auth := &authn.Basic{Username: user, Password: pass}
	base := reg.Host() + "/library/busybox:latest"
	other := reg.Host() + "/tools/builder:1"
	pushRandom(t, base, auth)
	pushRandom(t, other, auth)

	// A registry that refuses everything.
	var deniedMu sync.Mutex
	denied := 0
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deniedMu.Lock()
		denied++
		deniedMu.Unlock()
		http.Error(w, `{"errors":[{"code":"DENIED"}]}`, http.StatusForbidden)
	}))
	t.Cleanup(bad.Close)
	badRef := strings.TrimPrefix(bad.URL, "http://") + "/x/y:1"

	db, err := store.Open(filepath.Join(t.TempDir(), "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs := map[string]*store.Run{
		"org/a:latest": buildRun(store.Base{Image: base}),
		"org/b:latest": buildRun(store.Base{Image: base}, store.Base{Image: "demo/parent:latest", Pinned: true}),
		"org/c:latest": buildRun(store.Base{Image: other}),
		"org/d:latest": buildRun(store.Base{Image: badRef}),
		"org/e:latest": buildRun(store.Base{Image: "scratch"}),
	}
	client := registry.NewClient(registry.ClientConfig{AuthFiles: []string{}})
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	q := &queue{}
	var heads sync.Map // ref -> count
	w, err := New(Config{
		Interval: time.Minute,
		Images:   func(context.Context) ([]Watched, error) { return Collect(runs, nil), nil },
		Head: func(ctx context.Context, ref string) (string, error) {
			n, _ := heads.LoadOrStore(ref, new(int))
			*n.(*int)++
			return client.Digest(ctx, ref)
		},
		Meta: db, Queue: q.add,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	headsOf := func(ref string) int {
		n, ok := heads.Load(ref)
		if !ok {
			return 0
		}
		return *n.(*int)
	}
	for _, step := range []struct {
		name     string
		change   func()
		want     []string
		wantBad  int // HEADs of the refusing registry so far
		deferred int
	}{
		{"first sight rebuilds nothing", func() {}, nil, 1, 0},
		{"nothing changed; the refusing registry waits", func() { now = now.Add(30 * time.Second) }, nil, 1, 1},
		{"base tag moved", func() { pushRandom(t, base, auth); now = now.Add(31 * time.Second) }, []string{"org/a:latest", "org/b:latest"}, 2, 0},
		{"second failure doubles the wait", func() { now = now.Add(90 * time.Second) }, nil, 2, 1},
		{"other tag moved", func() { pushRandom(t, other, auth); now = now.Add(31 * time.Second) }, []string{"org/c:latest"}, 3, 0},
		{"unchanged", func() { now = now.Add(time.Second) }, nil, 3, 1},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.change()
			res, err := w.Round(ctx)
			if got := q.take(); !slices.Equal(got, step.want) {
				t.Errorf("queued %q, want %q (round %+v, %v)", got, step.want, res, err)
			}
			if n := headsOf(badRef); n != step.wantBad {
				t.Errorf("%d HEADs of the refusing registry, want %d", n, step.wantBad)
			}
			if res.Deferred != step.deferred {
				t.Errorf("deferred %d, want %d", res.Deferred, step.deferred)
			}
		})
	}
	// One HEAD per image per round however many entries use it.
	if n := headsOf(base); n != 6 {
		t.Errorf("%d HEADs of %s in 6 rounds", n, base)
	}
	if got := w.BackingOff(); len(got) != 1 || !strings.HasPrefix(badRef, got[0]) {
		t.Errorf("backing off %q", got)
	}
}

func buildRun(bases ...store.Base) *store.Run {
	return &store.Run{Kind: types.KindBranch, Stages: []store.Stage{{Name: types.StageBuild, Bases: bases}}}
}

func TestFullRef(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"centos:7", "index.docker.io/library/centos:7", true},
		{"alpine", "index.docker.io/library/alpine:latest", true},
		{"quay.io/org/img:1.2", "quay.io/org/img:1.2", true},
		{"127.0.0.1:5000/library/busybox", "127.0.0.1:5000/library/busybox:latest", true},
		{"scratch", "", false},
		{"centos@sha256:0000000000000000000000000000000000000000000000000000000000000000", "", false},
		{"${BASE}:7", "", false},
		{"UPPER/case", "", false},
	} {
		got, ok := FullRef(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("FullRef(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRateLimitWaitsLonger(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	w, err := New(Config{Interval: time.Minute, Images: func(context.Context) ([]Watched, error) { return nil, nil },
		Head: func(context.Context, string) (string, error) { return "", nil }, Meta: &store.DB{},
		Queue: func(context.Context, string, store.Cause) error { return nil }, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	w.fail("a", &transport.Error{StatusCode: http.StatusTooManyRequests})
	w.fail("b", &transport.Error{StatusCode: http.StatusInternalServerError})
	for _, tc := range []struct {
		host  string
		after time.Duration
		want  bool
	}{{"a", 3 * time.Minute, true}, {"a", 4 * time.Minute, false}, {"b", 59 * time.Second, true}, {"b", time.Minute, false}} {
		if got := w.backingOff(tc.host, now.Add(tc.after)); got != tc.want {
			t.Errorf("%s after %s: backing off %v, want %v", tc.host, tc.after, got, tc.want)
		}
	}
}

// An image seen for the first time is compared with the digest each entry
// was built from, when its build recorded one: a tag that moved between the
// build and the first look still rebuilds the entries built from the old
// digest, and only those.
func TestFirstSightComparesWithTheBuiltDigest(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(filepath.Join(t.TempDir(), "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const ref = "quay.io/org/img:1"
	runs := map[string]*store.Run{
		"org/old:latest":     buildRun(store.Base{Image: ref, Digest: "sha256:old"}),
		"org/current:latest": buildRun(store.Base{Image: ref, Digest: "sha256:new"}),
		"org/unknown:latest": buildRun(store.Base{Image: ref}),
	}
	q := &queue{}
	w, err := New(Config{Interval: time.Minute,
		Images: func(context.Context) ([]Watched, error) { return Collect(runs, nil), nil },
		Head:   func(context.Context, string) (string, error) { return "sha256:new", nil },
		Meta:   db, Queue: q.add})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]string{{"org/old:latest"}, nil} {
		if _, err := w.Round(ctx); err != nil {
			t.Fatal(err)
		}
		if got := q.take(); !slices.Equal(got, want) {
			t.Errorf("queued %q, want %q", got, want)
		}
	}
}
