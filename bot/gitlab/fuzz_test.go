package gitlab

import (
	"errors"
	"net/http"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/forgetest"
)

// FuzzParse feeds Parse hostile bodies under the event names of the
// recorded examples (testdata/gitlab): it never panics, and what it accepts
// is complete enough for the router (forgetest.CheckParsed).
func FuzzParse(f *testing.F) {
	forgetest.SeedExamples(f, testdata)
	w, err := NewWebhook([]byte("x"))
	if err != nil {
		f.Fatal(err)
	}
	whole := &Webhook{token: w.token} // no cut: the whole body is decoded
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		ev, err := w.Parse(http.Header{"X-Gitlab-Event": {kind}, "X-Gitlab-Event-Uuid": {"d"}}, body)
		forgetest.CheckParsed(t, ev, err, event.GitLab)
		wholeEv, wholeErr := whole.Parse(http.Header{"X-Gitlab-Event": {kind}, "X-Gitlab-Event-Uuid": {"d"}}, body)
		forgetest.CheckSamePicked(t, wholeEv, wholeErr, ev, err)
	})
}

// FuzzVerify: Verify accepts exactly the configured token, byte for byte.
func FuzzVerify(f *testing.F) {
	token := []byte("tok3n")
	w, err := NewWebhook(token)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"tok3n", "TOK3N", "tok3", "tok3nn", "", " tok3n", "tok3n\x00"} {
		f.Add(seed, []byte(`{}`))
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := w.Verify(http.Header{"X-Gitlab-Token": {header}}, body)
		if want := header == string(token); want != (err == nil) {
			t.Fatalf("Verify(%q) = %v, want ok=%v", header, err, want)
		}
		if err != nil && !errors.Is(err, event.ErrBadSignature) {
			t.Fatalf("error %v does not wrap ErrBadSignature", err)
		}
	})
}
