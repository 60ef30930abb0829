package github

import (
	"net/http"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/forgetest"
)

// FuzzParse feeds Parse hostile bodies under the event names of the
// recorded examples (testdata/github): it never panics, and what it accepts
// is complete enough for the router (forgetest.CheckParsed).
func FuzzParse(f *testing.F) {
	forgetest.SeedExamples(f, testdata)
	w, err := NewWebhook([]byte("x"))
	if err != nil {
		f.Fatal(err)
	}
	whole := &Webhook{secret: w.secret} // no cut: the whole body is decoded
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		ev, err := w.Parse(http.Header{"X-Github-Event": {kind}, "X-Github-Delivery": {"d"}}, body)
		forgetest.CheckParsed(t, ev, err, event.GitHub)
		wholeEv, wholeErr := whole.Parse(http.Header{"X-Github-Event": {kind}, "X-Github-Delivery": {"d"}}, body)
		forgetest.CheckSamePicked(t, wholeEv, wholeErr, ev, err)
	})
}
