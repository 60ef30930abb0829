package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/types"
)

// TestMailOutbox: a run is marked finished once, in the transaction that
// finishes it; QueueMail takes the mark and stores the mail together; the
// outbox keeps retry state and refusals.
func TestMailOutbox(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	r := &Run{Project: "org/app:latest", Kind: types.KindBranch}
	if err := db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	finished := func() []string {
		t.Helper()
		runs, err := db.FinishedRuns(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.ID)
		}
		return ids
	}
	set := func(s State) {
		t.Helper()
		if _, err := db.UpdateRun(ctx, r.ID, func(x *Run) error { x.State = s; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	set(Running)
	if ids := finished(); len(ids) != 0 {
		t.Fatalf("a running run is marked finished: %v", ids)
	}
	set(Failed)
	if ids := finished(); len(ids) != 1 || ids[0] != r.ID {
		t.Fatalf("FinishedRuns = %v, want [%s]", ids, r.ID)
	}
	if err := db.QueueMail(ctx, []Mail{{RunID: r.ID, To: []string{"a@x.example"}, Subject: "s", Text: "t"}}, []string{r.ID}); err != nil {
		t.Fatal(err)
	}
	set(Failed) // a later update of a finished run is not a new finish
	if ids := finished(); len(ids) != 0 {
		t.Fatalf("after QueueMail and another update: %v", ids)
	}

	now := time.Now()
	due, err := db.DueMail(ctx, now, 0)
	if err != nil || len(due) != 1 || due[0].ID != "1" {
		t.Fatalf("DueMail = %+v, %v", due, err)
	}
	if err := db.RetryMail(ctx, "1", now.Add(time.Minute), "451 try later"); err != nil {
		t.Fatal(err)
	}
	if due, _ := db.DueMail(ctx, now, 0); len(due) != 0 {
		t.Errorf("a mail waiting for its retry is due: %+v", due)
	}
	if due, _ := db.DueMail(ctx, now.Add(2*time.Minute), 0); len(due) != 1 || due[0].Attempts != 1 || due[0].LastError != "451 try later" {
		t.Errorf("after the back-off: %+v", due)
	}
	if err := db.FailMail(ctx, "1", "550 refused"); err != nil {
		t.Fatal(err)
	}
	if due, _ := db.DueMail(ctx, now.Add(time.Hour), 0); len(due) != 0 {
		t.Errorf("a refused mail is due: %+v", due)
	}
	all, _ := db.Mails(ctx, "", 0)
	if len(all) != 1 || !all[0].Failed || all[0].LastError != "550 refused" {
		t.Errorf("Mails = %+v", all)
	}
	if err := db.MailSent(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if n := mailIndexed(t, db); n != 0 {
		t.Errorf("a sent mail left %d index entries", n)
	}
	if all, _ := db.Mails(ctx, "", 0); len(all) != 0 {
		t.Errorf("a sent mail is kept: %+v", all)
	}
	for _, id := range []string{"1", "0", "x"} {
		if err := db.MailSent(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("MailSent(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if err := db.QueueMail(ctx, []Mail{{Subject: "nobody"}}, nil); err == nil {
		t.Error("a mail without recipients was queued")
	}
}

// TestRunCreatedFinishedIsNotMarked: a run stored already finished (an "up
// to date, nothing built" record) gets no mail.
func TestRunCreatedFinishedIsNotMarked(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	if err := db.CreateRun(ctx, &Run{Project: "org/app:latest", Kind: types.KindBranch, State: Skipped}); err != nil {
		t.Fatal(err)
	}
	if runs, err := db.FinishedRuns(ctx, 0); err != nil || len(runs) != 0 {
		t.Errorf("FinishedRuns = %v, %v; want none", runs, err)
	}
}
