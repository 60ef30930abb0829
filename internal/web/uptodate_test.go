package web

import (
	"context"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// A run that found its inputs unchanged says so on its page and in the
// project's run list, without looking like a failure.
func TestUpToDateRunIsShown(t *testing.T) {
	f := seeded(t)
	skipped := map[types.StageName]store.State{types.StageBuild: store.Skipped, types.StageTest: store.Skipped, types.StageDeliver: store.Skipped}
	run := f.addRun("acme/base:latest", types.KindBranch, store.Cause{Kind: types.CausePoll, Commit: "0123456789abcdef"}, skipped, "")
	if _, err := f.db.UpdateRun(context.Background(), run.ID, func(r *store.Run) error {
		r.UpToDate = true
		for i := range r.Stages {
			r.Stages[i].Reason, r.Stages[i].Error = "UpToDate", "up to date, nothing to build (same inputs as run 1)"
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"/runs/" + run.ID, `<p class="notice">Up to date, nothing to build`},
		{"/runs/" + run.ID, `<span class="muted">UpToDate: up to date, nothing to build (same inputs as run 1)</span>`},
		{"/runs/" + run.ID, "branch moved (polled) to 0123456789"},
		{"/projects/acme/base:latest", `<div class="sub">up to date, nothing to build</div>`},
	} {
		body := f.get(tc.path).Body.String()
		if !strings.Contains(body, tc.want) {
			t.Errorf("%s lacks %q", tc.path, tc.want)
		}
	}
	if body := f.get("/api/v1/runs/" + run.ID).Body.String(); !strings.Contains(body, `"up_to_date": true`) {
		t.Errorf("the API does not say the run was up to date:\n%s", body)
	}
	if body := f.get("/runs/" + run.ID).Body.String(); strings.Contains(body, `<span class="error">UpToDate`) {
		t.Error("the up-to-date note is shown as an error")
	}
}
