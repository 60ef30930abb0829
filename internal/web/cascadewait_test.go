package web

import (
	"context"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// A cascade run queued with its cascade says what it waits on, on its
// page, in the project's run list and in the API.
func TestWaitingCascadeRunIsShown(t *testing.T) {
	f := seeded(t)
	run := f.addRun("acme/base:latest", types.KindBranch, store.Cause{Kind: types.CauseParent, Parent: "acme/root:latest", Cascade: "1"}, nil, "")
	if _, err := f.db.UpdateRun(context.Background(), run.ID, func(r *store.Run) error {
		r.State, r.WaitsOn = store.Queued, []string{"acme/mid:latest", "acme/side:latest"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"/runs/" + run.ID, `<p class="notice">Queued with its cascade, waiting on acme/mid:latest, acme/side:latest: it starts once they delivered.</p>`},
		{"/projects/acme/base:latest", `<div class="sub">waiting on acme/mid:latest, acme/side:latest</div>`},
		{"/api/v1/runs/" + run.ID, `"acme/side:latest"`},
	} {
		if body := f.get(tc.path).Body.String(); !strings.Contains(body, tc.want) {
			t.Errorf("%s lacks %q", tc.path, tc.want)
		}
	}
}
