package pipeline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
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
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// TestBurstOfKeysFromOneBaseMakesOneHead: the build keys of 64 entries
// FROM the same public base, computed at once (a cascade's runs starting),
// ask the base's registry once. The registry is the embedded one behind a
// proxy that counts manifest HEADs. (Each computation used to make its own
// HEAD.)
func TestBurstOfKeysFromOneBaseMakesOneHead(t *testing.T) {
	ctx := t.Context()
	reg, err := registry.Start(ctx, registry.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	var heads atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: reg.Host()})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			heads.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	user, pass := reg.PushCredentials()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := name.ParseReference(reg.Host()+"/library/base:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(pushed, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass}), remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	base := strings.TrimPrefix(srv.URL, "http://") + "/library/base:latest"

	h := newHarness(t)
	h.cfg.Images = registry.NewClient(registry.ClientConfig{AuthFiles: []string{}})
	r, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	keys := make([]string, n)
	whys := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		e := entry("burst", "e"+strconv.Itoa(i), "file:///git/e"+strconv.Itoa(i))
		last := &store.Run{Project: e.Key(), Kind: types.KindBranch, Stages: []store.Stage{{Name: types.StageBuild, Bases: []store.Base{{Image: base}}}}}
		ex := &execution{r: r, run: &store.Run{Project: e.Key(), Kind: types.KindBranch, GitURL: e.GitURL}, entry: e}
		wg.Go(func() { keys[i], whys[i] = ex.currentKey(ctx, "c0ffee", last) })
	}
	wg.Wait()
	for i := range n {
		if whys[i] != "" || keys[i] == "" {
			t.Fatalf("entry %d: no key: %s", i, whys[i])
		}
	}
	if got := heads.Load(); got != 1 {
		t.Errorf("%d HEAD requests for %d keys FROM one base, want 1", got, n)
	}
}

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
