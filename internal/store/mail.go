package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The mail outbox: v1/runs_finished and v1/mail (see the package comment).
// Both buckets are created on first write, so a database of an older cccp
// needs no schema step; readers treat a missing bucket as empty.
var (
	bucketFinished = []byte("runs_finished")
	bucketMail     = []byte("mail")
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
		m.Attempts, m.LastError, m.Failed = 0, "", false
		v, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("queue mail %s: %w", m.ID, err)
		}
		if err := b.Put(seqKey(seq), v); err != nil {
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

// DueMail returns up to limit mails that are not given up and whose
// NextAttempt is not after now, oldest first.
func (db *DB) DueMail(ctx context.Context, now time.Time, limit int) ([]Mail, error) {
	return db.mails(ctx, limit, func(m Mail) bool { return !m.Failed && !m.NextAttempt.After(now) })
}

// Mails returns up to limit mails of the outbox (<= 0: all), waiting and
// given up, oldest first: what the API lists.
func (db *DB) Mails(ctx context.Context, limit int) ([]Mail, error) {
	return db.mails(ctx, limit, func(Mail) bool { return true })
}

func (db *DB) mails(ctx context.Context, limit int, keep func(Mail) bool) ([]Mail, error) {
	var out []Mail
	var bad []error
	err := db.view(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketMail)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			m, err := decodeMail(k, v)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			if keep(m) {
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

// MailSent removes mail id from the outbox (the server accepted it).
func (db *DB) MailSent(ctx context.Context, id string) error {
	return db.updateMail(ctx, id, func(b *bolt.Bucket, k []byte, _ *Mail) error { return b.Delete(k) })
}

// RetryMail records a transient failure of mail id: one more attempt, the
// error, and when to try again.
func (db *DB) RetryMail(ctx context.Context, id string, next time.Time, errMsg string) error {
	return db.updateMail(ctx, id, func(b *bolt.Bucket, k []byte, m *Mail) error {
		m.Attempts++
		m.NextAttempt, m.LastError = next.UTC().Round(0), errMsg
		return putMailRecord(b, k, m)
	})
}

// FailMail gives mail id up for good: it stays in the outbox, out of
// DueMail, with reason (no secret in it) for people to read.
func (db *DB) FailMail(ctx context.Context, id, reason string) error {
	return db.updateMail(ctx, id, func(b *bolt.Bucket, k []byte, m *Mail) error {
		m.Attempts++
		m.Failed, m.LastError = true, reason
		return putMailRecord(b, k, m)
	})
}

func putMailRecord(b *bolt.Bucket, k []byte, m *Mail) error {
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode mail %s: %w", m.ID, err)
	}
	return b.Put(k, v)
}

func (db *DB) updateMail(ctx context.Context, id string, fn func(b *bolt.Bucket, k []byte, m *Mail) error) error {
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
		return fn(b, k, &m)
	})
}
