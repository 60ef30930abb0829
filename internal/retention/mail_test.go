package retention_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/retention"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
)

// noRegistry is a registry with no tags: these tests have no runs.
type noRegistry struct{}

func (noRegistry) Tags(context.Context, string) ([]string, error) { return nil, nil }
func (noRegistry) Digest(context.Context, string) (string, error) { return "", fmt.Errorf("no tags") }
func (noRegistry) Delete(context.Context, string) error           { return fmt.Errorf("no tags") }

// TestPruneGivenUpMail: retention prunes the mails the SMTP server refused
// for good by the runs' policy (the newest keep_last stay, and any given
// up less than keep_for ago), never a mail that waits for a retry; a dry
// run lists them and removes nothing; a sent mail is not kept at all.
func TestPruneGivenUpMail(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var mails []store.Mail
	for i := range 7 {
		mails = append(mails, store.Mail{To: []string{"team@app.example"}, Subject: fmt.Sprint("mail ", i+1)})
	}
	if err := db.QueueMail(ctx, mails, nil); err != nil {
		t.Fatal(err)
	}
	// 1 to 4 are given up, oldest first; 5 waits for a retry; 6 is sent;
	// 7 was never tried.
	for _, id := range []string{"1", "2", "3", "4"} {
		if err := db.FailMail(ctx, id, "550 no such user"); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.RetryMail(ctx, "5", time.Now().Add(time.Hour), "451 try later"); err != nil {
		t.Fatal(err)
	}
	if err := db.MailSent(ctx, "6"); err != nil {
		t.Fatal(err)
	}
	policy := retention.Policy{KeepLast: 1, KeepFor: 30 * 24 * time.Hour}
	pruner := func(now time.Time) *retention.Pruner {
		p, err := retention.New(retention.Config{Policy: policy, Store: db, Logs: runlog.New(filepath.Join(dir, "logs"), 0),
			Registry: noRegistry{}, Mail: db, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	left := func() []string {
		t.Helper()
		ms, err := db.Mails(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		return ids
	}
	all := []string{"7", "5", "4", "3", "2", "1"}

	if res, err := pruner(time.Now()).Prune(ctx, false); err != nil || len(res.Mails) != 0 {
		t.Errorf("mail given up just now: pruned %v, %v; want none (keep_for)", res.Mails, err)
	}
	later := pruner(time.Now().Add(31 * 24 * time.Hour))
	dry, err := later.Prune(ctx, true)
	if want := []string{"1", "2", "3"}; err != nil || !slices.Equal(dry.Mails, want) {
		t.Errorf("dry run a month later: %v, %v; want %v", dry.Mails, err, want)
	}
	if got := left(); !slices.Equal(got, all) {
		t.Errorf("after the dry run the outbox holds %v, want %v", got, all)
	}
	res, err := later.Prune(ctx, false)
	if want := []string{"1", "2", "3"}; err != nil || !slices.Equal(res.Mails, want) || res.Kept != nil {
		t.Errorf("a month later: pruned %v, %v (kept %v); want %v", res.Mails, err, res.Kept, want)
	}
	if got, want := left(), []string{"7", "5", "4"}; !slices.Equal(got, want) {
		t.Errorf("the outbox holds %v, want %v: the newest given-up mail and the waiting ones", got, want)
	}
	if due, _ := db.DueMail(ctx, time.Now().Add(2*time.Hour), 0); len(due) != 2 {
		t.Errorf("waiting mail after pruning: %+v", due)
	}
	if again, err := later.Prune(ctx, false); err != nil || len(again.Mails) != 0 {
		t.Errorf("second prune: %v, %v", again.Mails, err)
	}
}
