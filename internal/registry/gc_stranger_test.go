package registry

import (
	"net/http"
	"testing"
)

// TestGCIgnoresAnonymousReads: reads need no credentials, so a stranger
// who asks for an untagged image's blobs and manifest by digest just
// before every collection must not keep them forever. Only a client with
// the push credentials (one about to push a manifest naming what it found
// present, TestGCKeepsBlobsJustFoundPresent) holds them for GCKeepRecent.
func TestGCIgnoresAnonymousReads(t *testing.T) {
	e := startRegistry(t, "")
	auth := pushAuth(e)
	h := e.Host()
	old := randomImage(t, 2048, 2)
	d := push(t, h+"/stranger/app:v1", old, auth)
	push(t, h+"/stranger/app:v1", randomImage(t, 2048, 1), auth) // old is untagged
	ageStorage(t, e)

	asked := map[string]string{"/v2/stranger/app/manifests/" + d: http.MethodGet}
	for _, b := range layerDigests(t, old) {
		asked["/v2/stranger/app/blobs/"+b] = http.MethodHead
	}
	for path, method := range asked {
		if got := status(t, method, "http://"+h+path, "", ""); got != http.StatusOK {
			t.Fatalf("anonymous %s %s: %d", method, path, got)
		}
	}
	ageFiles(t, e)
	if _, err := e.GC(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	for path := range asked {
		if got := status(t, http.MethodHead, "http://"+h+path, "", ""); got != http.StatusNotFound {
			t.Errorf("HEAD %s after GC: %d, want 404 (an anonymous read kept it)", path, got)
		}
	}
}
