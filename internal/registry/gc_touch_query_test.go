package registry

import (
	"net/http"
	"strings"
	"testing"
)

// TestTouchedIgnoresQueryDigestsOfReads: anyone may add ?digest= or
// ?mount= to a read that succeeds (a tag list, the catalog); those made-up
// digests are not remembered for GC. The digest an upload is committed
// with (PUT ...?digest=) still is.
func TestTouchedIgnoresQueryDigestsOfReads(t *testing.T) {
	e := startRegistry(t, "")
	h := e.Host()
	img := randomImage(t, 512, 1)
	push(t, h+"/touchq/app:v1", img, pushAuth(e))
	before := touchedLen(e)

	for i := range 200 {
		for _, path := range []string{
			"/v2/touchq/app/tags/list?digest=" + fakeDigest(i),
			"/v2/touchq/app/tags/list?mount=" + fakeDigest(i) + "&from=touchq/other",
			"/v2/_catalog?digest=" + fakeDigest(i),
		} {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+h+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200", path, resp.StatusCode)
			}
		}
	}
	if n := touchedLen(e); n != before {
		t.Errorf("after 600 anonymous reads naming made-up digests in the query, GC remembers %d digests, want %d", n, before)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	e.touchMu.Lock()
	_, ok := e.touched[strings.TrimPrefix(ld.String(), "sha256:")]
	e.touchMu.Unlock()
	if !ok {
		t.Errorf("the layer %s just uploaded (PUT ...?digest=) is not remembered", ld)
	}
}
