package registry

import (
	"net/http"
	"testing"
)

// status sends method to path (under http://host) with the push
// credentials when push is set, anonymously otherwise, and returns the
// status.
func status(t *testing.T, e *Embedded, method, path string, push bool) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+e.Host()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	if push {
		u, p := e.PushCredentials()
		req.SetBasicAuth(u, p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

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
		if got := status(t, e, method, path, false); got != http.StatusOK {
			t.Fatalf("anonymous %s %s: %d", method, path, got)
		}
	}
	ageFiles(t, e)
	if _, err := e.GC(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	for path := range asked {
		if got := status(t, e, http.MethodHead, path, false); got != http.StatusNotFound {
			t.Errorf("HEAD %s after GC: %d, want 404 (an anonymous read kept it)", path, got)
		}
	}
}
