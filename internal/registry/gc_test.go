package registry

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestGCWhilePushing collects garbage again and again while pushes go on,
// some of them reusing layers of an image no tag points at any more. Every
// push must succeed, every tag must pull whole afterwards, and the blobs
// only the untagged image used must be gone.
func TestGCWhilePushing(t *testing.T) {
	e := startRegistry(t, "")
	auth := pushAuth(e)
	h := e.Host()

	gone := randomImage(t, 2048, 2)
	push(t, h+"/gc/old:v1", gone, auth)
	// Reused later by concurrent pushes: also untagged when GC starts.
	reused := randomImage(t, 2048, 1)
	push(t, h+"/gc/reuse:v1", reused, auth)
	push(t, h+"/gc/old:v1", randomImage(t, 2048, 1), auth)
	push(t, h+"/gc/reuse:v1", randomImage(t, 2048, 1), auth)
	ageStorage(t, e)

	ctx, stop := context.WithCancel(t.Context())
	var pushed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				img := randomImage(t, 1024, 2)
				if i%2 == 1 { // reuses a layer no tag refers to
					ls, err := reused.Layers()
					if err != nil {
						errs <- err
						return
					}
					if img, err = mutate.AppendLayers(img, ls...); err != nil {
						errs <- err
						return
					}
				}
				ref := fmt.Sprintf("%s/gc/w%d:p%d", h, w, i)
				if err := tryPush(context.Background(), ref, img, auth); err != nil {
					errs <- fmt.Errorf("push %s during GC: %w", ref, err)
					return
				}
				pushed.Add(1)
			}
		}()
	}
	var total GCStats
	// At least five collections, and on until pushes have finished
	// during them.
	for i := 0; i < 5 || pushed.Load() < 20; i++ {
		before := pushed.Load()
		s, err := e.GC(t.Context(), false)
		if err != nil {
			t.Fatalf("GC: %v", err)
		}
		total.BlobsDeleted += s.BlobsDeleted
		total.ManifestsDeleted += s.ManifestsDeleted
		if n := pushed.Load() - before; n > 0 || i < 5 {
			t.Logf("GC %d: %+v, %d pushes finished meanwhile", i, s, n)
		}
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if pushed.Load() == 0 {
		t.Fatal("no push finished during the collections")
	}

	t.Run("every tag pulls whole", func(t *testing.T) {
		n := 0
		for _, repo := range []string{"gc/old", "gc/reuse", "gc/w0", "gc/w1"} {
			r, err := name.NewRepository(h+"/"+repo, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			tags, err := remote.List(r, remote.WithContext(t.Context()))
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range tags {
				n++
				if err := pullAll(t, h+"/"+repo+":"+tag); err != nil {
					t.Errorf("pull %s:%s after GC: %v", repo, tag, err)
				}
			}
		}
		if n < 22 {
			t.Errorf("pulled %d tags, want the two old ones and the pushed ones", n)
		}
	})
	t.Run("untagged image's own blobs are gone", func(t *testing.T) {
		if total.ManifestsDeleted < 2 {
			t.Errorf("manifests deleted %d, want the two untagged ones", total.ManifestsDeleted)
		}
		for _, d := range layerDigests(t, gone) {
			if got := blobStatus(t, h, "gc/old", d); got != http.StatusNotFound {
				t.Errorf("blob %s of the untagged image: status %d, want 404", d, got)
			}
		}
		d := mustDigest(t, gone)
		if got := manifestStatus(t, h, "gc/old", d); got != http.StatusNotFound {
			t.Errorf("untagged manifest %s: status %d, want 404", d, got)
		}
	})
}

func mustDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func manifestStatus(t *testing.T, host, repo, digest string) int {
	t.Helper()
	return status(t, http.MethodHead, fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, digest), "", "")
}

// TestGCKeepsWhatWasJustAskedFor: an old untagged image that a client has
// just looked up (by tag before the tag moved, or by digest) may be tagged
// again at once; GC keeps it whole.
func TestGCKeepsWhatWasJustAskedFor(t *testing.T) {
	for _, by := range []string{"tag", "digest"} {
		t.Run(by, func(t *testing.T) {
			e := startRegistry(t, "")
			auth := pushAuth(e)
			h := e.Host()
			c := NewClient(ClientConfig{AuthFiles: []string{}, Credentials: map[string]Credentials{h: {User: "cccp", Password: mustPass(e)}}})
			old := randomImage(t, 2048, 2)
			d := push(t, h+"/keep/app:v1", old, auth)
			ageStorage(t, e)
			lookup := h + "/keep/app@" + d
			if by == "tag" {
				lookup = h + "/keep/app:v1"
			}
			if got, err := c.Digest(t.Context(), lookup); err != nil || got != d {
				t.Fatalf("look up %s: %s, %v", lookup, got, err)
			}
			// The tag moves on; the old image is untagged and its files old.
			push(t, h+"/keep/app:v1", randomImage(t, 2048, 1), auth)
			ageFiles(t, e)

			if _, err := e.GC(t.Context(), false); err != nil {
				t.Fatal(err)
			}
			if err := c.Tag(t.Context(), h+"/keep/app@"+d, h+"/keep/app:again"); err != nil {
				t.Fatalf("retag of the image just looked up: %v", err)
			}
			if err := pullAll(t, h+"/keep/app:again"); err != nil {
				t.Errorf("pull after GC: %v", err)
			}
		})
	}
}
