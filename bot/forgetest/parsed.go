package forgetest

import (
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
