package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/types"
)

func pushRun(project, branch, commit, delivery string) *Run {
	return &Run{Project: project, Kind: types.KindBranch, Branch: branch, Commit: commit,
		Cause: Cause{Kind: types.CausePush, Commit: commit, Forge: "github", Repo: "org/app", DeliveryID: delivery}}
}

func sameBranch(by *Run) Supersede {
	return Supersede{
		Match: func(old *Run) bool { return old.Project == by.Project && old.Branch == by.Branch },
		End: func(old, by *Run) {
			old.State, old.Error = Cancelled, "superseded by run "+by.ID
		},
	}
}

// The new run and the end of the older runs of its target are stored
// together, with the ended runs' changes to report, and nothing else is
// touched.
func TestCreateRunSupersedingEndsOlderRunsWithIt(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	old := pushRun("org/app", "main", "1", "")
	other := pushRun("org/app", "dev", "1", "")
	done := pushRun("org/app", "main", "0", "")
	done.State = Passed
	for _, r := range []*Run{done, old, other} {
		if err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.RunChanges(ctx, 0); err != nil {
		t.Fatal(err)
	}
	outer := t
	for _, tc := range []struct {
		name  string
		named bool // Supersede.Older names the candidates
	}{
		{"candidates read from the unfinished runs", false},
		{"candidates named", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nr := pushRun("org/app", "main", "2", "")
			s := sameBranch(nr)
			if tc.named { // a second round: a fresh old run
				old = pushRun("org/app", "main", "1b", "")
				if err := db.CreateRun(ctx, old); err != nil {
					t.Fatal(err)
				}
				s.Older = []string{old.ID, other.ID, done.ID}
			}
			ended, err := db.CreateRunSuperseding(ctx, nr, s)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(ended); !slices.Equal(got, []string{old.ID}) {
				t.Errorf("ended %v, want [%s]", got, old.ID)
			}
			db = reopen(outer, db, path)
			got, err := db.Run(ctx, old.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != Cancelled || got.Error != "superseded by run "+nr.ID {
				t.Errorf("old run: %s %q", got.State, got.Error)
			}
			for _, r := range []*Run{other, done} {
				if got, _ := db.Run(ctx, r.ID); got.State != r.State {
					t.Errorf("run %s of %s: %s, want it untouched (%s)", r.ID, r.Branch, got.State, r.State)
				}
			}
			if got, _ := db.Run(ctx, nr.ID); got.State != Queued {
				t.Errorf("new run %s: %s", nr.ID, got.State)
			}
			changes, err := db.RunChanges(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(changes, func(c RunChange) bool { return c.Run.ID == old.ID && c.Run.State == Cancelled }) {
				t.Errorf("no change of the ended run %s to report", old.ID)
			}
		})
	}
}

// A delivery's request is linked to the run it made, and to the run it was
// folded into, in whatever state; the link outlives the run's retention
// and is pruned with the deliveries' window.
func TestDeliveryRunLinks(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	first := pushRun("org/app", "main", "1", "d-1")
	if err := db.CreateRun(ctx, first); err != nil {
		t.Fatal(err)
	}
	// d-2 is folded into the queued run: the run takes its cause.
	second := pushRun("org/app", "main", "2", "d-2")
	if _, err := db.UpdateRun(ctx, first.ID, func(r *Run) error {
		r.Folded = append(r.Folded, Fold{Cause: r.Cause, Commit: r.Commit, By: "2", At: time.Now()})
		r.Cause, r.Commit = second.Cause, "2"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateRun(ctx, first.ID, func(r *Run) error { r.State = Passed; return nil }); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db, path)
	for _, tc := range []struct {
		name    string
		cause   Cause
		project string
		want    string // run ID; "" = ErrNotFound
	}{
		{"the delivery that made the run", first.Cause, "org/app", first.ID},
		{"the delivery folded into it", second.Cause, "org/app", first.ID},
		{"another project", first.Cause, "org/other", ""},
		{"another commit of that delivery", Cause{Forge: "github", DeliveryID: "d-1", Commit: "9"}, "org/app", ""},
		{"another forge", Cause{Forge: "gitlab", DeliveryID: "d-1", Commit: "1"}, "org/app", ""},
		{"no delivery", Cause{Forge: "github", Commit: "1"}, "org/app", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.DeliveryRun(ctx, tc.cause, tc.project, types.KindBranch)
			switch {
			case tc.want == "" && !errors.Is(err, ErrNotFound):
				t.Errorf("got %v, %v; want ErrNotFound", got, err)
			case tc.want != "" && (err != nil || got.ID != tc.want || got.State != Passed):
				t.Errorf("got %+v, %v; want run %s, passed", got, err, tc.want)
			}
		})
	}
	if _, err := db.DeleteRuns(ctx, []string{first.ID}); err == nil {
		t.Fatal("the latest run was deleted")
	}
	// A newer run makes first deletable, as retention would.
	if err := db.CreateRun(ctx, &Run{Project: "org/app", Kind: types.KindBranch, State: Passed}); err != nil {
		t.Fatal(err)
	}
	changes, err := db.RunChanges(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutReports(ctx, nil, changes); err != nil {
		t.Fatal(err)
	}
	if err := db.QueueMail(ctx, nil, []string{first.ID}); err != nil {
		t.Fatal(err)
	}
	if deleted, err := db.DeleteRuns(ctx, []string{first.ID}); err != nil || len(deleted) != 1 {
		t.Fatalf("retention kept run %s: %v", first.ID, err)
	}
	if got, err := db.DeliveryRun(ctx, first.Cause, "org/app", types.KindBranch); err != nil || got.ID != first.ID {
		t.Errorf("after retention: %+v, %v; want the stub of run %s", got, err, first.ID)
	}

	// The links go with their deliveries: d-1 and d-2 are done, d-10
	// (whose ID starts like d-1's) is still pending, its run queued.
	pending := pushRun("org/app", "other", "3", "d-10")
	if err := db.CreateRun(ctx, pending); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"d-1", "d-2", "d-10"} {
		if _, err := db.AcceptDelivery(ctx, Delivery{Forge: "github", ID: id, Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"d-1", "d-2"} {
		if err := db.FinishDelivery(ctx, "github", id); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.PruneDeliveries(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("pruned %d (%v) deliveries younger than the window, want 0", n, err)
	}
	if got, err := db.DeliveryRun(ctx, first.Cause, "org/app", types.KindBranch); err != nil || got.ID != first.ID {
		t.Errorf("within the window: %+v, %v; want the stub of run %s", got, err, first.ID)
	}
	if n, err := db.PruneDeliveries(ctx, time.Now().Add(time.Second)); err != nil || n != 2 {
		t.Errorf("pruned %d (%v) deliveries, want 2", n, err)
	}
	for _, c := range []Cause{first.Cause, second.Cause} {
		if _, err := db.DeliveryRun(ctx, c, "org/app", types.KindBranch); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after pruning its delivery: %v, want ErrNotFound", c.DeliveryID, err)
		}
	}
	if got, err := db.DeliveryRun(ctx, pending.Cause, "org/app", types.KindBranch); err != nil || got.ID != pending.ID {
		t.Errorf("pending d-10 after pruning: %+v, %v; want run %s", got, err, pending.ID)
	}
}
