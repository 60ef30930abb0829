package github

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/forgetest"
)

// FuzzParse feeds Parse hostile bodies under the event names of the
// recorded examples (testdata/github): it never panics, and what it accepts
// is complete enough for the router (forgetest.CheckParsed).
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(testdata, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no examples in %s: %v", testdata, err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		kind, _, _ := strings.Cut(filepath.Base(file), "-")
		f.Add(kind, body)
	}
	w, err := NewWebhook([]byte("x"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		ev, err := w.Parse(http.Header{"X-Github-Event": {kind}, "X-Github-Delivery": {"d"}}, body)
		forgetest.CheckParsed(t, ev, err, event.GitHub)
	})
}
