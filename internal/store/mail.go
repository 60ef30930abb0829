package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The mail outbox: v1/runs_finished and v1/mail (see the package comment),
// created on first write, and the indexes v1/mail_due and v1/mail_failed
// (schema 3), which Open fills from v1/mail. Readers treat a missing
// bucket as empty.
var (
	bucketFinished   = []byte("runs_finished")
	bucketMail       = []byte("mail")
	bucketMailDue    = []byte("mail_due")
	bucketMailFailed = []byte("mail_failed")
)

// Mail is one email in the outbox: rendered when it was queued, sent by a
// worker that retries transient failures and stops on permanent ones.
type Mail struct {
	ID      string // decimal sequence in the outbox, assigned by QueueMail
	RunID   string `json:",omitempty"` // the run it tells about, if any
	To      []string
	Subject string
	Text    string
	Created time.Time

	Attempts    int
	NextAttempt time.Time
	LastError   string // no secret: the SMTP server's answer or a dial error
	// Failed: the server refused this mail for good (FailMail); it is not
	// due, and LastError says why.
	Failed bool `json:",omitempty"`
	// GaveUp is when FailMail gave it up; retention prunes by it.
	GaveUp time.Time `json:",omitzero"`
}

// mailTimeKey is an index key of mail_due/ and mail_failed/: t in unix
// nanoseconds (0 for the zero time and times before 1970), then the
// mail's seq, both big-endian, so keys sort by time, then by age.
func mailTimeKey(t time.Time, seq uint64) []byte {
	var ns uint64
	switch {
	case t.IsZero() || t.Unix() < 0:
	case t.Unix() >= math.MaxInt64/int64(time.Second):
		ns = math.MaxInt64
	default:
		ns = uint64(t.UnixNano())
	}
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 16), ns)
	return binary.BigEndian.AppendUint64(k, seq)
}

// dueTime is when a waiting mail is due: its NextAttempt; the zero time
// (a mail never tried) is due at once and sorts first.
func (m *Mail) dueTime() time.Time { return m.NextAttempt }

// gaveUpAt is when a given-up mail was given up; a mail given up by a
// cccp that did not record it (before GaveUp) counts from its last
// planned attempt, or from its creation.
func (m *Mail) gaveUpAt() time.Time {
	switch {
	case !m.GaveUp.IsZero():
		return m.GaveUp
	case !m.NextAttempt.IsZero():
		return m.NextAttempt
	}
	return m.Created
}

// indexMail enters mail seq in mail_due/ (waiting) or mail_failed/ (given
// up); unindexMail takes it out. Both keep the record itself as it is.
func indexMail(root *bolt.Bucket, seq uint64, m *Mail) error {
	name, k := bucketMailDue, mailTimeKey(m.dueTime(), seq)
	if m.Failed {
		name, k = bucketMailFailed, mailTimeKey(m.gaveUpAt(), seq)
	}
	b, err := root.CreateBucketIfNotExists(name)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", name, err)
	}
	return b.Put(k, nil)
}

func unindexMail(root *bolt.Bucket, seq uint64, m *Mail) error {
	name, k := bucketMailDue, mailTimeKey(m.dueTime(), seq)
	if m.Failed {
		name, k = bucketMailFailed, mailTimeKey(m.gaveUpAt(), seq)
	}
	if b := root.Bucket(name); b != nil {
		return b.Delete(k)
	}
	return nil
}

// indexMails fills mail_due/ and mail_failed/ from mail/ (schema 3). A
// record that does not decode is entered as due at once, so DueMail
// keeps reporting it as it did before the index.
func indexMails(root *bolt.Bucket) error {
	for _, name := range [][]byte{bucketMailDue, bucketMailFailed} {
		if _, err := root.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	b := root.Bucket(bucketMail)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return nil
		}
		seq := binary.BigEndian.Uint64(k)
		m, err := decodeMail(k, v)
		if err != nil {
			return root.Bucket(bucketMailDue).Put(mailTimeKey(time.Time{}, seq), nil)
		}
		return indexMail(root, seq, &m)
	})
}

// markFinished records, in the run's own transaction, that run sk went from
// unfinished to finished and nobody has decided yet whether to mail about
// it (FinishedRuns, QueueMail).
func markFinished(root *bolt.Bucket, sk []byte) error {
	b, err := root.CreateBucketIfNotExists(bucketFinished)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucketFinished, err)
	}
	return b.Put(sk, nil)
}

// FinishedRuns returns up to limit (<= 0: all) runs that finished since
// their mail was last decided, oldest first. The mark is written in the
// transaction that finished the run, so a crash loses none.
func (db *DB) FinishedRuns(ctx context.Context, limit int) ([]*Run, error) {
	var out []*Run
	var bad []error
	err := db.view(ctx, func(root *bolt.Bucket) error {
		fin := root.Bucket(bucketFinished)
		if fin == nil {
			return nil
		}
		runs := root.Bucket(bucketRuns)
		c := fin.Cursor()
		for sk, _ := c.First(); sk != nil && (limit <= 0 || len(out) < limit); sk, _ = c.Next() {
			rv := runs.Get(sk)
			if rv == nil {
				continue
			}
			r, err := decodeRun(sk, rv)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(bad...)
}

// QueueMail puts mails into the outbox and removes the finished marks of
// the runs ack (IDs) in one transaction: a finished run's mail is queued
// exactly once, whether it got one, several or none.
func (db *DB) QueueMail(ctx context.Context, mails []Mail, ack []string) error {
	return db.update(ctx, func(root *bolt.Bucket) error {
		if err := putMail(root, mails, time.Now()); err != nil {
			return err
		}
		fin := root.Bucket(bucketFinished)
		if fin == nil {
			return nil
		}
		for _, id := range ack {
			seq, err := parseRunID(id)
			if err != nil {
				continue
			}
			if err := fin.Delete(seqKey(seq)); err != nil {
				return err
			}
		}
		return nil
	})
}

func putMail(root *bolt.Bucket, mails []Mail, now time.Time) error {
	if len(mails) == 0 {
		return nil
	}
	b, err := root.CreateBucketIfNotExists(bucketMail)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucketMail, err)
	}
	b.FillPercent = 0.9 // keys grow
	for _, m := range mails {
		if len(m.To) == 0 {
			return fmt.Errorf("queue mail %q: no recipient", m.Subject)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("queue mail: %w", err)
		}
		m.ID = strconv.FormatUint(seq, 10)
		if m.Created.IsZero() {
			m.Created = now.UTC().Round(0)
		}
		m.Attempts, m.LastError, m.Failed, m.GaveUp = 0, "", false, time.Time{}
		v, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("queue mail %s: %w", m.ID, err)
		}
		if err := b.Put(seqKey(seq), v); err != nil {
			return err
		}
		if err := indexMail(root, seq, &m); err != nil {
			return err
		}
	}
	return nil
}

func decodeMail(k, v []byte) (Mail, error) {
	var m Mail
	if err := json.Unmarshal(v, &m); err != nil {
		id := "?"
		if len(k) == 8 {
			id = strconv.FormatUint(binary.BigEndian.Uint64(k), 10)
		}
		return m, &DecodeError{Bucket: "mail", Key: id, Err: err}
	}
	return m, nil
}

// DueMail returns up to limit mails (<= 0: all) that are not given up
// and whose NextAttempt is not after now: first the mails without one
// (never tried), oldest first, then the others in the order they became
// due. It walks
// the due-time index (mail_due/), so it costs what is due, not what the
// outbox holds.
func (db *DB) DueMail(ctx context.Context, now time.Time, limit int) ([]Mail, error) {
	var out []Mail
	var bad []error
	end := mailTimeKey(now, math.MaxUint64)
	err := db.view(ctx, func(root *bolt.Bucket) error {
		due, b := root.Bucket(bucketMailDue), root.Bucket(bucketMail)
		if due == nil || b == nil {
			return nil
		}
		c := due.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, end) <= 0 && (limit <= 0 || len(out) < limit); k, _ = c.Next() {
			if len(k) != 16 {
				continue
			}
			sk := k[8:]
			v := b.Get(sk)
			if v == nil {
				continue
			}
			m, err := decodeMail(sk, v)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			if !m.Failed {
				out = append(out, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(bad...)
}

// Mails returns up to limit mails of the outbox (<= 0: all), waiting and
// given up, newest first, starting below ID before ("": from the newest):
// what the API lists, page by page.
func (db *DB) Mails(ctx context.Context, before string, limit int) ([]Mail, error) {
	var start uint64 // exclusive upper bound; 0 = none
	if before != "" {
		seq, err := strconv.ParseUint(before, 10, 64)
		if err != nil || seq == 0 {
			return nil, fmt.Errorf("mails before %q: not a mail ID", before)
		}
		start = seq
	}
	var out []Mail
	var bad []error
	err := db.view(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketMail)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.Last()
		if start != 0 {
			if k, v = c.Seek(seqKey(start)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			m, err := decodeMail(k, v)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(bad...)
}

// MailSent removes mail id from the outbox (the server accepted it): a
// sent mail is not kept.
func (db *DB) MailSent(ctx context.Context, id string) error {
	return db.updateMail(ctx, id, func(*Mail) bool { return false })
}

// RetryMail records a transient failure of mail id: one more attempt, the
// error, and when to try again.
func (db *DB) RetryMail(ctx context.Context, id string, next time.Time, errMsg string) error {
	return db.updateMail(ctx, id, func(m *Mail) bool {
		m.Attempts++
		m.NextAttempt, m.LastError = next.UTC().Round(0), errMsg
		return true
	})
}

// FailMail gives mail id up for good: it stays in the outbox, out of
// DueMail, with reason (no secret in it) for people to read, until
// retention prunes it (PruneMail).
func (db *DB) FailMail(ctx context.Context, id, reason string) error {
	now := time.Now().UTC().Round(0)
	return db.updateMail(ctx, id, func(m *Mail) bool {
		m.Attempts++
		m.Failed, m.LastError, m.GaveUp = true, reason, now
		return true
	})
}

// MailPrune says which given-up mails PruneMail removes.
type MailPrune struct {
	// KeepLast keeps the newest KeepLast given-up mails.
	KeepLast int
	// Before: only mails given up before it go (zero: any).
	Before time.Time
	// DryRun finds them and removes nothing.
	DryRun bool
}

// PruneMail removes the given-up mails p selects in one transaction and
// returns their IDs, oldest first. Waiting mails always stay, and so does
// a record that does not decode. It walks the give-up index
// (mail_failed/) from the newest, so it costs what it keeps of the
// given-up mails and what it removes.
func (db *DB) PruneMail(ctx context.Context, p MailPrune) ([]string, error) {
	var ids []string
	fn := func(root *bolt.Bucket) error {
		ids = nil
		failed, b := root.Bucket(bucketMailFailed), root.Bucket(bucketMail)
		if failed == nil || b == nil {
			return nil
		}
		var bound []byte
		if !p.Before.IsZero() {
			bound = mailTimeKey(p.Before, 0)
		}
		var keys [][]byte
		c := failed.Cursor()
		kept := 0
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			if kept < p.KeepLast || bound != nil && bytes.Compare(k, bound) >= 0 {
				kept++
				continue
			}
			keys = append(keys, bytes.Clone(k))
		}
		for i := len(keys) - 1; i >= 0; i-- {
			k := keys[i]
			if len(k) == 16 {
				ids = append(ids, strconv.FormatUint(binary.BigEndian.Uint64(k[8:]), 10))
			}
			if p.DryRun {
				continue
			}
			if err := failed.Delete(k); err != nil {
				return err
			}
			if len(k) == 16 {
				if err := b.Delete(k[8:]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var err error
	if p.DryRun {
		err = db.view(ctx, fn)
	} else {
		err = db.update(ctx, fn)
	}
	if err != nil {
		return nil, fmt.Errorf("prune mail: %w", err)
	}
	return ids, nil
}

func putMailRecord(b *bolt.Bucket, k []byte, m *Mail) error {
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode mail %s: %w", m.ID, err)
	}
	return b.Put(k, v)
}

// updateMail changes mail id with fn and keeps its index entry in step;
// fn returning false deletes the mail.
func (db *DB) updateMail(ctx context.Context, id string, fn func(m *Mail) (keep bool)) error {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("mail %q: %w", id, ErrNotFound)
	}
	return db.update(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketMail)
		k := seqKey(seq)
		var v []byte
		if b != nil {
			v = b.Get(k)
		}
		if v == nil {
			return fmt.Errorf("mail %s: %w", id, ErrNotFound)
		}
		m, err := decodeMail(k, v)
		if err != nil {
			return err
		}
		if err := unindexMail(root, seq, &m); err != nil {
			return err
		}
		if !fn(&m) {
			return b.Delete(k)
		}
		if err := indexMail(root, seq, &m); err != nil {
			return err
		}
		return putMailRecord(b, k, &m)
	})
}
