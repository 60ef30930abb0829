package gitea

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/forgetest"
)

// FuzzParse feeds Parse hostile bodies under the event names of the
// recorded examples (testdata/gitea): it never panics, and what it accepts
// is complete enough for the router (forgetest.CheckParsed).
func FuzzParse(f *testing.F) {
	forgetest.SeedExamples(f, testdata)
	w, err := NewWebhook([]byte("x"))
	if err != nil {
		f.Fatal(err)
	}
	whole := &Webhook{secret: w.secret} // no cut: the whole body is decoded
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		ev, err := w.Parse(http.Header{"X-Gitea-Event": {kind}, "X-Gitea-Delivery": {"d"}}, body)
		forgetest.CheckParsed(t, ev, err, event.Gitea)
		wholeEv, wholeErr := whole.Parse(http.Header{"X-Gitea-Event": {kind}, "X-Gitea-Delivery": {"d"}}, body)
		forgetest.CheckSamePicked(t, wholeEv, wholeErr, ev, err)
	})
}

// FuzzVerify: Verify accepts the body's HMAC in hex (either case, as
// hex.DecodeString reads it) under X-Gitea-Signature, and nothing else.
func FuzzVerify(f *testing.F) {
	secret := []byte("s3cret")
	w, err := NewWebhook(secret)
	if err != nil {
		f.Fatal(err)
	}
	body := []byte(`{"ref":"refs/heads/main"}`)
	good := Sign(secret, body)
	for _, seed := range []string{good, strings.ToUpper(good), good[:10], "sha256=" + good, "", "zz"} {
		f.Add(seed, body)
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := w.Verify(http.Header{"X-Gitea-Signature": {header}}, body)
		if want := header != "" && strings.EqualFold(header, Sign(secret, body)); want != (err == nil) {
			t.Fatalf("Verify(%q) = %v, want ok=%v", header, err, want)
		}
		if err != nil && !errors.Is(err, event.ErrBadSignature) {
			t.Fatalf("error %v does not wrap ErrBadSignature", err)
		}
	})
}
