package digestcache

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cccp-project/cccp/internal/registry"
)

// countingRegistry is the embedded registry behind a proxy that counts the
// manifest HEAD requests; images are pushed to the registry itself.
type countingRegistry struct {
	reg   *registry.Embedded
	host  string // the proxy's host:port
	heads atomic.Int64
	auth  authn.Authenticator
}

func startCountingRegistry(t *testing.T) *countingRegistry {
	t.Helper()
	reg, err := registry.Start(t.Context(), registry.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	user, pass := reg.PushCredentials()
	cr := &countingRegistry{reg: reg, auth: &authn.Basic{Username: user, Password: pass}}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: reg.Host()})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			cr.heads.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cr.host = strings.TrimPrefix(srv.URL, "http://")
	return cr
}

// push pushes a new random image to repo:tag and returns its digest.
func (cr *countingRegistry) push(t *testing.T, repoTag string) string {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(cr.reg.Host()+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(cr.auth), remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)} }

// TestOneHeadPerImageAndTTL: many concurrent asks for one image make one
// HEAD; the digest is used until the TTL is over and a moved tag is seen
// after it; the watcher's fresh HEAD is used at once.
func TestOneHeadPerImageAndTTL(t *testing.T) {
	cr := startCountingRegistry(t)
	client := registry.NewClient(registry.ClientConfig{AuthFiles: []string{}})
	first := cr.push(t, "library/base:latest")
	ref := cr.host + "/library/base:latest"
	clk := newClock()
	c, err := New(Config{Head: client.Digest, TTL: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ask := func(n int) []string {
		out := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { out[i], errs[i] = c.Digest(ctx, ref) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		return out
	}
	expect := func(step string, got []string, want string, heads int64) {
		t.Helper()
		for _, d := range got {
			if d != want {
				t.Fatalf("%s: digest %s, want %s", step, d, want)
			}
		}
		if n := cr.heads.Swap(0); n != heads {
			t.Errorf("%s: %d HEAD requests, want %d", step, n, heads)
		}
	}

	expect("100 at once", ask(100), first, 1)
	moved := cr.push(t, "library/base:latest")
	clk.add(59 * time.Second)
	expect("within the TTL", ask(10), first, 0)
	clk.add(time.Second)
	expect("at the TTL", ask(10), moved, 1)

	// The watcher sees the tag move before the TTL is over: its digest is
	// the one used from then on.
	again := cr.push(t, "library/base:latest")
	if d, err := c.Head(ctx, ref); err != nil || d != again {
		t.Fatalf("Head = %s, %v; want %s", d, err, again)
	}
	expect("after the watcher's HEAD", ask(10), again, 1)
}

// TestSlowerOlderHeadDoesNotWin: a HEAD that started before the watcher's
// and ends after it does not replace the newer digest.
func TestSlowerOlderHeadDoesNotWin(t *testing.T) {
	clk := newClock()
	release := make(chan struct{})
	var calls atomic.Int64
	c, err := New(Config{Now: clk.Now, Head: func(ctx context.Context, ref string) (string, error) {
		if calls.Add(1) == 1 {
			<-release
			return "sha256:old", nil
		}
		return "sha256:new", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() { d, _ := c.Digest(t.Context(), "r/x:1"); done <- d }()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	clk.add(time.Second)
	if d, err := c.Head(t.Context(), "r/x:1"); err != nil || d != "sha256:new" {
		t.Fatalf("Head = %s, %v", d, err)
	}
	close(release)
	if d := <-done; d != "sha256:old" {
		t.Fatalf("the slow HEAD answered %s", d)
	}
	if d, err := c.Digest(t.Context(), "r/x:1"); err != nil || d != "sha256:new" {
		t.Errorf("Digest after both = %s, %v; want sha256:new", d, err)
	}
}

func TestBoundedAndErrorsNotKept(t *testing.T) {
	clk := newClock()
	var heads atomic.Int64
	fail := atomic.Bool{}
	c, err := New(Config{Max: 3, Now: clk.Now, Head: func(_ context.Context, ref string) (string, error) {
		heads.Add(1)
		if fail.Load() {
			return "", errors.New("registry down")
		}
		return "sha256:" + ref, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, ref := range []string{"a", "b", "c", "d", "e"} {
		clk.add(time.Second)
		if _, err := c.Digest(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n != 3 {
		t.Errorf("%d images remembered, want at most 3", n)
	}
	heads.Store(0)
	if _, err := c.Digest(ctx, "e"); err != nil || heads.Load() != 0 {
		t.Errorf("the newest image was forgotten (%d HEADs, %v)", heads.Load(), err)
	}
	if _, err := c.Digest(ctx, "a"); err != nil || heads.Load() != 1 {
		t.Errorf("the oldest image was kept (%d HEADs, %v)", heads.Load(), err)
	}
	fail.Store(true)
	heads.Store(0)
	for range 2 {
		if _, err := c.Digest(ctx, "z"); err == nil {
			t.Fatal("no error from a failing registry")
		}
	}
	if heads.Load() != 2 {
		t.Errorf("%d HEADs for two asks of a failing image, want 2 (errors are not kept)", heads.Load())
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without Head: no error")
	}
}

// TestOneHeadInFlight: while one HEAD of an image is under way, others
// asking for the image wait for it instead of sending their own (the
// first HEAD is held until the others have had every chance to send).
func TestOneHeadInFlight(t *testing.T) {
	clk := newClock()
	release := make(chan struct{})
	var calls atomic.Int64
	c, err := New(Config{Now: clk.Now, Head: func(ctx context.Context, ref string) (string, error) {
		calls.Add(1)
		<-release
		return "sha256:one", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	got := make(chan string, n)
	for range n {
		go func() { d, _ := c.Digest(t.Context(), "r/x:1"); got <- d }()
	}
	// Without the sharing every caller sends its own HEAD at once; give
	// them a second to.
	deadline := time.Now().Add(time.Second)
	for calls.Load() <= 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	for range n {
		if d := <-got; d != "sha256:one" {
			t.Fatalf("Digest = %q", d)
		}
	}
	if k := calls.Load(); k != 1 {
		t.Fatalf("%d HEAD requests for one image asked %d times at once; want 1", k, n)
	}
}
