package forgetest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
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

// CheckSamePicked checks a forge's Parse against itself without the cut
// to the payload's members (bot/internal/jsonpick): whatever the
// whole-body decode reads, an event or a refusal as ignored, the cut body
// reads the same. (A body malformed only in a member the cut drops is read
// by the cut and refused whole: that is the cut's documented leniency.)
func CheckSamePicked(t testing.TB, whole *event.Event, wholeErr error, cut *event.Event, cutErr error) {
	t.Helper()
	switch {
	case wholeErr == nil:
		if cutErr != nil {
			t.Fatalf("the cut body is refused (%v) where the whole body gives %+v", cutErr, whole)
		}
		if !reflect.DeepEqual(whole, cut) {
			t.Fatalf("the cut body reads differently:\nwhole %+v\ncut   %+v", whole, cut)
		}
	case errors.Is(wholeErr, event.ErrIgnored):
		if cutErr == nil || cutErr.Error() != wholeErr.Error() {
			t.Fatalf("the whole body is ignored (%v); the cut body gives %+v, %v", wholeErr, cut, cutErr)
		}
	}
}

// RecordedObject is the object under key in the recorded payload at path
// (a file of testdata/), decoded as generic JSON: what a forge's API
// answers with, for a double to serve.
func RecordedObject(t testing.TB, path, key string) map[string]any {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(m[key], &obj); err != nil || obj == nil {
		t.Fatalf("%s has no %q object (%v)", path, key, err)
	}
	return obj
}
