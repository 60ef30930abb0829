package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// mailIndexed counts the entries of mail_due/ and mail_failed/.
func mailIndexed(t *testing.T, db *DB) int {
	t.Helper()
	n := 0
	db.bolt.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMailDue, bucketMailFailed} {
			if b := tx.Bucket(bucketV1).Bucket(name); b != nil {
				n += b.Stats().KeyN
			}
		}
		return nil
	})
	return n
}

func mailIDs(ms []Mail) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func queueMails(t *testing.T, db *DB, n int) {
	t.Helper()
	var ms []Mail
	for i := range n {
		ms = append(ms, Mail{To: []string{"a@x.example"}, Subject: fmt.Sprint("mail ", i+1)})
	}
	if err := db.QueueMail(context.Background(), ms, nil); err != nil {
		t.Fatal(err)
	}
}

// TestDueMailOrder: mails never tried come first, oldest first, then
// retries in the order they became due; a retry that is not yet due and a
// given-up mail are not listed, and every change moves the index entry.
func TestDueMailOrder(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	queueMails(t, db, 5)
	now := time.Now()
	for _, r := range []struct {
		id   string
		next time.Duration
	}{{"1", 2 * time.Minute}, {"2", time.Minute}, {"3", time.Hour}} {
		if err := db.RetryMail(ctx, r.id, now.Add(r.next), "451"); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.FailMail(ctx, "4", "550"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		at    time.Duration
		limit int
		want  []string
	}{
		{"now", 0, 0, []string{"5"}},
		{"after the first retry is due", 90 * time.Second, 0, []string{"5", "2"}},
		{"after both", 3 * time.Minute, 0, []string{"5", "2", "1"}},
		{"limited", 3 * time.Minute, 2, []string{"5", "2"}},
		{"all due", 2 * time.Hour, 0, []string{"5", "2", "1", "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.DueMail(ctx, now.Add(tt.at), tt.limit)
			if err != nil || !slices.Equal(mailIDs(got), tt.want) {
				t.Errorf("DueMail = %v, %v; want %v", mailIDs(got), err, tt.want)
			}
		})
	}
	if n := mailIndexed(t, db); n != 5 {
		t.Errorf("%d index entries for 5 mails", n)
	}
}

// TestMailsPages: the API's listing is newest first, page by page.
func TestMailsPages(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	queueMails(t, db, 5)
	tests := []struct {
		before string
		limit  int
		want   []string
	}{
		{"", 2, []string{"5", "4"}},
		{"4", 2, []string{"3", "2"}},
		{"2", 2, []string{"1"}},
		{"1", 2, []string{}},
		{"99", 0, []string{"5", "4", "3", "2", "1"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("before %q limit %d", tt.before, tt.limit), func(t *testing.T) {
			got, err := db.Mails(ctx, tt.before, tt.limit)
			if err != nil || !slices.Equal(mailIDs(got), tt.want) {
				t.Errorf("Mails = %v, %v; want %v", mailIDs(got), err, tt.want)
			}
		})
	}
	for _, bad := range []string{"x", "0", "-1"} {
		if _, err := db.Mails(ctx, bad, 1); err == nil {
			t.Errorf("Mails(before %q): no error", bad)
		}
	}
}

// TestPruneMail: given-up mails go by age and count, as runs do; waiting
// mail always stays; a dry run removes nothing.
func TestPruneMail(t *testing.T) {
	day := 24 * time.Hour
	now := time.Now()
	tests := []struct {
		name string
		p    MailPrune
		want []string
	}{
		{"older than a week", MailPrune{Before: now.Add(-7 * day)}, []string{"1", "2"}},
		{"keep the newest two", MailPrune{KeepLast: 2}, []string{"1", "2", "3"}},
		{"both must hold", MailPrune{KeepLast: 4, Before: now.Add(-7 * day)}, []string{"1"}},
		{"keep more than there are", MailPrune{KeepLast: 10}, nil},
		{"dry run", MailPrune{Before: now.Add(-7 * day), DryRun: true}, []string{"1", "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			ctx := context.Background()
			queueMails(t, db, 7)
			// 1..5 given up 30, 10, 5, 2 and 1 days ago (out of ID order
			// for 4 and 5); 6 waits for a retry; 7 was never tried.
			for id, ago := range map[string]time.Duration{"1": 30 * day, "2": 10 * day, "3": 5 * day, "4": 1 * day, "5": 2 * day} {
				if err := db.FailMail(ctx, id, "550"); err != nil {
					t.Fatal(err)
				}
				if err := db.updateMail(ctx, id, func(m *Mail) bool { m.GaveUp = now.Add(-ago).UTC(); return true }); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.RetryMail(ctx, "6", now.Add(-40*day), "451"); err != nil {
				t.Fatal(err)
			}
			got, err := db.PruneMail(ctx, tt.p)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("PruneMail = %v, %v; want %v", got, err, tt.want)
			}
			left, _ := db.Mails(ctx, "", 0)
			wantLeft := 7 - len(tt.want)
			if tt.p.DryRun {
				wantLeft = 7
			}
			if len(left) != wantLeft || mailIndexed(t, db) != wantLeft {
				t.Errorf("%d mails and %d index entries left, want %d", len(left), mailIndexed(t, db), wantLeft)
			}
			for _, m := range left {
				if !tt.p.DryRun && slices.Contains(tt.want, m.ID) {
					t.Errorf("mail %s is still there", m.ID)
				}
			}
			if due, _ := db.DueMail(ctx, now, 0); !slices.Equal(mailIDs(due), []string{"7", "6"}) {
				t.Errorf("waiting mail after pruning: %v", mailIDs(due))
			}
		})
	}
}

// TestMailIndexMigration: a database of schema 2 with mail in its outbox
// gets both indexes on Open; a record that does not decode is still
// reported by DueMail and never pruned.
func TestMailIndexMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cccp.db")
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := migrate(bdb, migrations[:2]); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Round(0)
	old := []Mail{
		{ID: "1", To: []string{"a@x.example"}, Created: now.Add(-90 * 24 * time.Hour), Attempts: 1, Failed: true, LastError: "550"},
		{ID: "2", To: []string{"a@x.example"}, Created: now, Attempts: 2, NextAttempt: now.Add(time.Hour), LastError: "451"},
		{ID: "3", To: []string{"a@x.example"}, Created: now},
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketV1).CreateBucket(bucketMail)
		if err != nil {
			return err
		}
		for i, m := range old {
			v, _ := json.Marshal(m)
			if err := b.Put(seqKey(uint64(i+1)), v); err != nil {
				return err
			}
		}
		if err := b.Put(seqKey(4), []byte("{broken")); err != nil {
			return err
		}
		return b.SetSequence(4)
	})
	if err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	due, err := db.DueMail(ctx, now, 0)
	if !slices.Equal(mailIDs(due), []string{"3"}) || err == nil {
		t.Errorf("DueMail after the migration = %v, %v; want [3] and the broken record 4 named", mailIDs(due), err)
	}
	if due, _ := db.DueMail(ctx, now.Add(2*time.Hour), 0); !slices.Equal(mailIDs(due), []string{"3", "2"}) {
		t.Errorf("DueMail later = %v, want [3 2]", mailIDs(due))
	}
	if got, err := db.PruneMail(ctx, MailPrune{Before: now.Add(-30 * 24 * time.Hour)}); err != nil || !slices.Equal(got, []string{"1"}) {
		t.Errorf("PruneMail = %v, %v; want [1]", got, err)
	}
	if got, _ := db.PruneMail(ctx, MailPrune{}); len(got) != 0 {
		t.Errorf("PruneMail removed %v; the waiting and the broken records stay", got)
	}
}
