package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func touchedLen(e *Embedded) int {
	e.touchMu.Lock()
	defer e.touchMu.Unlock()
	return len(e.touched)
}

func fakeDigest(i int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "blob %d", i))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestTouchedRemembersOnlyWhatExists: requests for digests the registry
// does not have (with the push credentials, or a write without them) leave
// GC's memory of touched digests empty; the ones it has are remembered.
func TestTouchedRemembersOnlyWhatExists(t *testing.T) {
	e := startRegistry(t, "")
	h := e.Host()
	d := push(t, h+"/touch/app:v1", randomImage(t, 512, 1), pushAuth(e))
	before := touchedLen(e)

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < 2000; i += 4 {
				var method, path string
				switch i % 3 {
				case 0:
					method, path = http.MethodHead, "/v2/touch/app/blobs/"+fakeDigest(i)
				case 1:
					method, path = http.MethodGet, "/v2/touch/app/manifests/"+fakeDigest(i)
				default: // no credentials: refused
					method, path = http.MethodPost, "/v2/touch/app/blobs/uploads/?mount="+fakeDigest(i)+"&from=touch/other"
				}
				req, err := http.NewRequestWithContext(t.Context(), method, "http://"+h+path, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if method != http.MethodPost { // reads as a pusher makes them: only those touch
					req.SetBasicAuth(e.PushCredentials())
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode < 400 {
					t.Errorf("%s %s: status %d", method, path, resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	if n := touchedLen(e); n != before {
		t.Errorf("after 2,000 requests for digests the registry lacks, it remembers %d digests, want %d", n, before)
	}

	user, pass := e.PushCredentials()
	if got := status(t, http.MethodHead, "http://"+h+"/v2/touch/app/manifests/"+d, user, pass); got != http.StatusOK {
		t.Fatalf("HEAD manifest %s: %d", d, got)
	}
	e.touchMu.Lock()
	_, ok := e.touched[strings.TrimPrefix(d, "sha256:")]
	e.touchMu.Unlock()
	if !ok {
		t.Errorf("the manifest a client just asked for by digest is not remembered")
	}
}

// TestTouchedForgetsWhatNoGCNeeds: between collections, the memory of
// touched digests drops those older than GCKeepRecent, which no later
// collection keeps anyway, and keeps every younger one.
func TestTouchedForgetsWhatNoGCNeeds(t *testing.T) {
	e := startRegistry(t, "")
	clock := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	e.now = func() time.Time { return clock }
	keep := e.cfg.GCKeepRecent
	step := time.Second
	perWindow := int(keep / step) // digests touched within GCKeepRecent
	peak := 0
	for i := range 20 * perWindow {
		clock = clock.Add(step)
		e.touch(fakeDigest(i))
		peak = max(peak, touchedLen(e))
	}
	if limit := 2*perWindow + minTouchPrune; peak > limit {
		t.Errorf("memory of touched digests reached %d entries, want at most %d (twice those of the last %v)", peak, limit, keep)
	}
	// Every digest younger than GCKeepRecent is still there for GC.
	got := e.touchedSince(clock.Add(-keep))
	for i := 20*perWindow - perWindow + 1; i < 20*perWindow; i++ {
		if !got[strings.TrimPrefix(fakeDigest(i), "sha256:")] {
			t.Fatalf("digest %d, touched %v ago, was forgotten", i, time.Duration(20*perWindow-1-i)*step)
		}
	}
}

// TestGCKeepsBlobsJustFoundPresent: a pusher that found an old blob no
// manifest uses present (HEAD by digest, with the push credentials) skips
// its upload and pushes a manifest naming it; a collection in between keeps
// the blob. (An anonymous HEAD keeps nothing: TestGCIgnoresAnonymousReads.)
func TestGCKeepsBlobsJustFoundPresent(t *testing.T) {
	e := startRegistry(t, "")
	auth := pushAuth(e)
	h := e.Host()
	user, pass := e.PushCredentials()
	old := randomImage(t, 2048, 2)
	push(t, h+"/keep/blobs:v1", old, auth)
	push(t, h+"/keep/blobs:v1", randomImage(t, 2048, 1), auth) // old is untagged
	ageStorage(t, e)
	for _, d := range layerDigests(t, old) {
		// as a pusher does, with its credentials
		if got := status(t, http.MethodHead, "http://"+h+"/v2/keep/blobs/blobs/"+d, user, pass); got != http.StatusOK {
			t.Fatalf("HEAD blob %s: %d", d, got)
		}
	}
	ageFiles(t, e)
	if _, err := e.GC(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	raw, err := old.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := old.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, "http://"+h+"/v2/keep/blobs/manifests/again", strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", string(mt))
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("manifest naming the blobs found present before GC: status %d, want 201", resp.StatusCode)
	}
	if err := pullAll(t, h+"/keep/blobs:again"); err != nil {
		t.Errorf("pull after GC: %v", err)
	}
}
