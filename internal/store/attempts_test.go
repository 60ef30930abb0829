package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDeliveryAttempts(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := db.AcceptDelivery(ctx, delivery(id, `{"n":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	due := func(at time.Time) (string, time.Time) {
		t.Helper()
		ds, next, err := db.DueDeliveries(ctx, at, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range ds {
			ids = append(ids, fmt.Sprintf("%s:%d", d.ID, d.Attempts))
		}
		return fmt.Sprint(ids), next
	}

	// a fails for a moment: pending, but not due until its next attempt.
	if err := db.RetryDelivery(ctx, "github", "a", now.Add(time.Hour), "forge down"); err != nil {
		t.Fatal(err)
	}
	if got, next := due(now); got != "[b:0 c:0]" || !next.Equal(now.Add(time.Hour).UTC().Round(0)) {
		t.Errorf("due now = %s, next %v", got, next)
	}
	if got, _ := due(now.Add(2 * time.Hour)); got != "[a:1 b:0 c:0]" {
		t.Errorf("due later = %s", got)
	}
	if got := pendingIDs(t, db); fmt.Sprint(got) != "[github/a github/b github/c]" {
		t.Errorf("pending = %v", got)
	}

	// b fails for good: no longer pending, kept with its reason.
	if err := db.FailDelivery(ctx, "github", "b", "404 repository gone"); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db, path)
	if got := pendingIDs(t, db); fmt.Sprint(got) != "[github/a github/c]" {
		t.Errorf("pending after give-up = %v", got)
	}
	tr, err := db.TroubledDeliveries(ctx, 0)
	if err != nil || len(tr) != 2 {
		t.Fatalf("troubled = %+v, %v", tr, err)
	}
	if tr[0].ID != "a" || tr[0].Failed || tr[0].LastError != "forge down" || tr[1].ID != "b" || !tr[1].Failed || tr[1].LastError != "404 repository gone" {
		t.Errorf("troubled = %+v", tr)
	}

	// Replay: only a given-up delivery.
	if err := db.ReplayDelivery(ctx, "github", "a"); !errors.Is(err, ErrNotReplayable) {
		t.Errorf("replay of a pending delivery = %v", err)
	}
	if err := db.ReplayDelivery(ctx, "github", "zz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("replay of an unknown delivery = %v", err)
	}
	if err := db.ReplayDelivery(ctx, "github", "b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := due(now); got != "[b:0 c:0]" {
		t.Errorf("due after replay = %s", got)
	}

	// The forge's own redelivery of a given-up delivery is taken; of a
	// pending or finished one it is a duplicate.
	if err := db.FailDelivery(ctx, "github", "b", "again"); err != nil {
		t.Fatal(err)
	}
	if dup, err := db.AcceptDelivery(ctx, delivery("b", `{"n":"b2"}`)); dup || err != nil {
		t.Errorf("redelivery after give-up: dup %v, %v", dup, err)
	}
	ds, _ := db.PendingDeliveries(ctx, 0, 0)
	if len(ds) != 3 || ds[2].ID != "b" || string(ds[2].Body) != `{"n":"b2"}` || ds[2].Attempts != 0 {
		t.Errorf("pending after redelivery = %+v", ds)
	}
	if dup, _ := db.AcceptDelivery(ctx, delivery("a", `x`)); !dup {
		t.Error("redelivery of a pending delivery accepted")
	}
	if err := db.FinishDelivery(ctx, "github", "a"); err != nil {
		t.Fatal(err)
	}
	if tr, _ := db.TroubledDeliveries(ctx, 0); len(tr) != 0 {
		t.Errorf("finishing did not clear attempts: %+v", tr)
	}
	if dup, _ := db.AcceptDelivery(ctx, delivery("a", `x`)); !dup {
		t.Error("redelivery of a finished delivery accepted")
	}

	// Prune drops given-up deliveries with their bodies.
	if err := db.FailDelivery(ctx, "github", "c", "bad"); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneDeliveries(ctx, time.Now().Add(time.Hour)); err != nil || n != 2 {
		t.Errorf("prune = %d, %v; want 2 (a finished, c given up)", n, err)
	}
	if tr, _ := db.TroubledDeliveries(ctx, 0); len(tr) != 0 {
		t.Errorf("prune left attempts: %+v", tr)
	}
	if err := db.ReplayDelivery(ctx, "github", "c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("replay after prune = %v", err)
	}
}
