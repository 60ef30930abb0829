package web

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

func TestStageWaitingForASlotIsShown(t *testing.T) {
	f := newFixture(t)
	run := f.addRun("acme/web:latest", types.KindBranch, store.Cause{Kind: types.CausePush}, nil, "")
	const waiting = "waiting for a build slot (1 of 1 in use)"
	if _, err := f.db.UpdateRun(context.Background(), run.ID, func(r *store.Run) error {
		r.Stages[0].Waiting = waiting
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	page := f.get("/runs/" + run.ID)
	if body := page.Body.String(); page.Code != 200 || !strings.Contains(body, "Due, and "+waiting+".") {
		t.Errorf("run page %d does not say %q:\n%s", page.Code, waiting, body)
	}
	rec := f.get("/api/v1/runs/" + run.ID)
	var got struct {
		Stages []struct {
			Name    string `json:"name"`
			Waiting string `json:"waiting"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("api: %v: %s", err, rec.Body)
	}
	if len(got.Stages) == 0 || got.Stages[0].Waiting != waiting {
		t.Errorf("api stages %+v; want the build waiting", got.Stages)
	}
}

func TestFoldedRequestsInTheAPI(t *testing.T) {
	f := newFixture(t)
	run := f.addRun("acme/web:latest", types.KindBranch, store.Cause{Kind: types.CausePush, Commit: "c2"}, nil, "")
	if _, err := f.db.UpdateRun(context.Background(), run.ID, func(r *store.Run) error {
		r.Folded = []store.Fold{{Cause: store.Cause{Kind: types.CausePush, Commit: "c1", DeliveryID: "d1"}, Commit: "c1", By: "c2"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rec := f.get("/api/v1/runs/" + run.ID)
	var got struct {
		Folded []struct {
			Cause struct {
				Commit string `json:"commit"`
			} `json:"cause"`
			By string `json:"by"`
		} `json:"folded"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("api: %v: %s", err, rec.Body)
	}
	if len(got.Folded) != 1 || got.Folded[0].Cause.Commit != "c1" || got.Folded[0].By != "c2" {
		t.Errorf("folded %+v; want c1 folded by c2", got.Folded)
	}
}
