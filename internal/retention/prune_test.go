package retention_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/retention"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// grace is the registry's GC grace period in this test: the images of the
// runs are pushed, then the test waits longer than grace, so only the
// pushes that go on during the retention run are recent.
const grace = 3 * time.Second

// TestPruneWhilePushing runs retention over a real store, real log files
// and the embedded registry while other images are pushed, and checks the
// outcome through the registry API.
func TestPruneWhilePushing(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	reg, err := registry.Start(ctx, registry.Config{Dir: filepath.Join(dir, "registry"), GCKeepRecent: grace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	user, pass := reg.PushCredentials()
	auth := &authn.Basic{Username: user, Password: pass}
	h := reg.Host()
	client := registry.NewClient(registry.ClientConfig{AuthFiles: []string{},
		Credentials: map[string]registry.Credentials{h: {User: user, Password: pass}}})
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logs := runlog.New(filepath.Join(dir, "logs"), 0)

	// Runs of org/app, oldest first: what each is and whether it goes.
	old := time.Now().Add(-30 * 24 * time.Hour)
	type runSpec struct {
		kind  types.RunKind
		state store.State
		at    time.Time
		tag   string // pushed to; "" = run-<ID>
		goes  bool
	}
	specs := []runSpec{
		{types.KindBranch, store.Passed, old, "latest", false}, // 1: delivered, a live tag
		{types.KindPR, store.Failed, old, "", true},            // 2
		{types.KindTrial, store.Passed, old, "", true},         // 3
		{types.KindPR, store.Running, old, "", false},          // 4: unfinished
		{types.KindBranch, store.Failed, old, "test", false},   // 5: :test points at it
		{types.KindPR, store.Passed, old, "", true},            // 6
		{types.KindTrial, store.Failed, old, "", false},        // 7: newest trial
		{types.KindPR, store.Failed, old, "", false},           // 8: among the last 2
		{types.KindPR, store.Passed, time.Now(), "", false},    // 9: recent, newest
	}
	images := map[string]v1.Image{}
	for _, s := range specs {
		r := &store.Run{Project: "org/app", Kind: s.kind, State: s.state, Created: s.at}
		if err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		tag := s.tag
		if tag == "" {
			tag = retention.RunTag(r.ID)
		}
		ref := h + "/org/app:" + tag
		img := randomImage(t)
		d := pushImage(t, ctx, ref, img, auth)
		images[r.ID] = img
		if _, err := db.UpdateRun(ctx, r.ID, func(r *store.Run) error {
			r.Images = []store.Image{{Ref: ref, Digest: d}}
			r.Stages = []store.Stage{{Name: types.StageBuild, State: store.Passed, Digest: d}}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		w, err := logs.Create(r.ID, "build")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "build of run %s\n", r.ID)
		w.Close()
	}
	time.Sleep(grace + time.Second) // the runs' pushes are old now

	p, err := retention.New(retention.Config{
		Policy: retention.Policy{KeepLast: 2, KeepFor: 7 * 24 * time.Hour},
		Store:  db, Logs: logs, Registry: client,
		GC: func(ctx context.Context) error { _, err := reg.GC(ctx, false); return err },
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, s := range specs {
		if s.goes {
			want = append(want, fmt.Sprint(i+1))
		}
	}

	dry, err := p.Prune(ctx, true)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !slices.Equal(dry.Runs, want) {
		t.Errorf("dry run would prune %v, want %v", dry.Runs, want)
	}

	// Pushes go on during the retention run.
	pushCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var pushed atomic.Int64
	var pushErr error
	var other []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; pushCtx.Err() == nil || i < 3; i++ {
			ref := fmt.Sprintf("%s/org/other:p%d", h, i)
			if err := tryPush(context.Background(), ref, randomImage(t), auth); err != nil {
				pushErr = err
				return
			}
			other = append(other, ref)
			pushed.Add(1)
		}
	}()
	for pushed.Load() == 0 && pushErr == nil {
		time.Sleep(10 * time.Millisecond)
	}
	res, err := p.Prune(ctx, false)
	stop()
	wg.Wait()
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if pushErr != nil {
		t.Fatalf("push during retention: %v", pushErr)
	}
	t.Logf("pruned %+v; %d pushes meanwhile", res, pushed.Load())
	if !slices.Equal(res.Runs, want) {
		t.Errorf("pruned runs %v, want %v", res.Runs, want)
	}

	t.Run("registry tags", func(t *testing.T) {
		tags, err := client.Tags(ctx, h+"/org/app")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(tags)
		wantTags := []string{"latest", "run-4", "run-7", "run-8", "run-9", "test"}
		if !slices.Equal(tags, wantTags) {
			t.Errorf("tags %v, want %v", tags, wantTags)
		}
		for _, tag := range wantTags {
			if err := pullAll(ctx, h+"/org/app:"+tag); err != nil {
				t.Errorf("pull %s: %v", tag, err)
			}
		}
		for _, ref := range other {
			if err := pullAll(ctx, ref); err != nil {
				t.Errorf("pull %s pushed during retention: %v", ref, err)
			}
		}
	})
	t.Run("pruned images' blobs are gone", func(t *testing.T) {
		for _, id := range want {
			for _, d := range blobs(t, images[id]) {
				if got := blobStatus(t, h, "org/app", d); got != http.StatusNotFound {
					t.Errorf("run %s blob %s: %d, want 404", id, d, got)
				}
			}
			m, _ := images[id].Digest()
			if ok, err := client.Exists(ctx, h+"/org/app@"+m.String()); err != nil || ok {
				t.Errorf("run %s manifest exists=%v (err %v), want gone", id, ok, err)
			}
		}
		for id, img := range images {
			if slices.Contains(want, id) {
				continue
			}
			for _, d := range blobs(t, img) {
				if got := blobStatus(t, h, "org/app", d); got != http.StatusOK {
					t.Errorf("kept run %s blob %s: %d, want 200", id, d, got)
				}
			}
		}
	})
	t.Run("store and logs", func(t *testing.T) {
		for i := range specs {
			id := fmt.Sprint(i + 1)
			_, err := db.Run(ctx, id)
			_, lerr := logs.Open(id, "build")
			if slices.Contains(want, id) {
				if !errors.Is(err, store.ErrNotFound) || !errors.Is(lerr, runlog.ErrNotFound) {
					t.Errorf("pruned run %s: run err %v, log err %v; want both gone", id, err, lerr)
				}
			} else if err != nil || lerr != nil {
				t.Errorf("kept run %s: run err %v, log err %v", id, err, lerr)
			}
		}
	})
	t.Run("second run prunes nothing", func(t *testing.T) {
		again, err := p.Prune(ctx, false)
		if err != nil || len(again.Runs)+len(again.Tags) > 0 || again.Kept != nil {
			t.Errorf("second prune %+v, err %v", again, err)
		}
	})
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func tryPush(ctx context.Context, ref string, img v1.Image, auth authn.Authenticator) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	return remote.Write(r, img, remote.WithAuth(auth), remote.WithContext(ctx))
}

func pushImage(t *testing.T, ctx context.Context, ref string, img v1.Image, auth authn.Authenticator) string {
	t.Helper()
	if err := tryPush(ctx, ref, img, auth); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func pullAll(ctx context.Context, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return err
	}
	return validate.Image(img)
}

// blobs are an image's layers and config digests.
func blobs(t *testing.T, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		d, _ := l.Digest()
		out = append(out, d.String())
	}
	c, _ := img.ConfigName()
	return append(out, c.String())
}

func blobStatus(t *testing.T, host, repo, digest string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, fmt.Sprintf("http://%s/v2/%s/blobs/%s", host, repo, digest), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
