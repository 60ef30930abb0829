package forgetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
)

// CheckParsed is the property every forge's Parse keeps for any input (the
// fuzz targets' oracle): an error and no event, or an event of forge with a
// kind and a delivery ID that carries what the router reads for its kind (a
// pull request event its pull request, a comment its comment and pull
// request).
func CheckParsed(t testing.TB, ev *event.Event, err error, forge string) {
	t.Helper()
	if err != nil {
		if ev != nil {
			t.Fatalf("Parse returned an event and %v", err)
		}
		return
	}
	if ev == nil {
		t.Fatal("Parse returned neither an event nor an error")
	}
	if ev.Forge != forge || ev.Kind == "" || ev.DeliveryID == "" {
		t.Fatalf("event without forge, kind or delivery: %+v", ev)
	}
	switch ev.Kind {
	case event.KindPullRequest:
		if ev.PR == nil {
			t.Fatalf("pull request event without a pull request: %+v", ev)
		}
	case event.KindComment:
		if ev.PR == nil || ev.Comment == nil {
			t.Fatalf("comment event without pull request or comment: %+v", ev)
		}
	}
}

// SeedExamples adds every recorded example in dir (`<event>-<variant>.json`)
// to a fuzz target's corpus as (event name, body), the arguments of the
// forge fuzz targets' Parse.
func SeedExamples(f *testing.F, dir string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no examples in %s: %v", dir, err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		kind, _, _ := strings.Cut(filepath.Base(file), "-")
		f.Add(kind, body)
	}
}
