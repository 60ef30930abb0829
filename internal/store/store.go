package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrClosed is returned by calls on a closed DB.
var ErrClosed = errors.New("store closed")

// sep separates the parts of composite keys. Project names, kinds, forges
// and delivery IDs may not contain it.
const sep = 0x00

// DB is an open cccp state database. It is safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	log  *slog.Logger

	ingest    chan *writeReq // group-commit queue of AcceptDelivery and FinishDelivery
	stop      chan struct{}
	writerWG  sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	closedMu  sync.RWMutex
	closed    bool

	records sync.Pool // *recordBufs: AcceptDelivery's encoding buffers
}

// Open opens (creating if needed) the database at path and migrates it to
// the current schema.
func Open(path string, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.Timeout,
		// The freelist is rebuilt from the pages on open instead of being
		// written on every commit: commits of the ingest path stay small.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	from, to, err := migrate(bdb, migrations)
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if from != to {
		opts.Logger.Info("store schema migrated", "path", path, "from", from, "to", to)
	}
	db := &DB{
		bolt:   bdb,
		log:    opts.Logger,
		ingest: make(chan *writeReq, 1024),
		stop:   make(chan struct{}),
	}
	db.writerWG.Add(1)
	go db.deliveryWriter()
	return db, nil
}

// Close stops the delivery writer and closes the file. Calls waiting in
// AcceptDelivery finish first.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closedMu.Lock()
		db.closed = true
		db.closedMu.Unlock()
		close(db.stop)
		db.writerWG.Wait()
		db.closeErr = db.bolt.Close()
	})
	return db.closeErr
}

func (db *DB) view(ctx context.Context, fn func(root *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.View(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketV1)) })
}

func (db *DB) update(ctx context.Context, fn func(root *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketV1)) })
}

// DecodeError reports a stored record that cannot be decoded.
type DecodeError struct {
	Bucket string
	Key    string
	Err    error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode %s record %q: %v", e.Bucket, e.Key, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ---- runs

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func parseRunID(id string) (uint64, error) {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("run %q: %w", id, ErrNotFound)
	}
	return seq, nil
}

func projectKey(project string, seq uint64) []byte {
	k := make([]byte, 0, len(project)+9)
	k = append(k, project...)
	k = append(k, sep)
	return binary.BigEndian.AppendUint64(k, seq)
}

func latestKey(kind, project string) []byte {
	k := make([]byte, 0, len(kind)+len(project)+1)
	k = append(k, kind...)
	k = append(k, sep)
	return append(k, project...)
}

func checkName(what, s string) error {
	if strings.IndexByte(s, sep) >= 0 {
		return fmt.Errorf("%s %q: contains a NUL byte", what, s)
	}
	return nil
}

func decodeRun(k, v []byte) (*Run, error) {
	r := new(Run)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, &DecodeError{Bucket: "runs", Key: strconv.FormatUint(binary.BigEndian.Uint64(k), 10), Err: err}
	}
	return r, nil
}

// CreateRun stores a new run, assigning r.ID (the next decimal sequence
// number) and r.Created (when zero). r.State defaults to Queued.
func (db *DB) CreateRun(ctx context.Context, r *Run) error {
	if r.Project == "" {
		return errors.New("create run: empty project")
	}
	if err := errors.Join(checkName("project", r.Project), checkName("kind", string(r.Kind))); err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	return db.update(ctx, func(root *bolt.Bucket) error { return createRun(root, r) })
}

// createRun is CreateRun inside a transaction.
func createRun(root *bolt.Bucket, r *Run) error {
	runs := root.Bucket(bucketRuns)
	seq, err := runs.NextSequence()
	if err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	nr := *r
	nr.ID = strconv.FormatUint(seq, 10)
	if nr.Created.IsZero() {
		nr.Created = time.Now().UTC()
	}
	if nr.State == "" {
		nr.State = Queued
	}
	if err := putRun(root, seq, &nr); err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	sk := seqKey(seq)
	if err := root.Bucket(bucketByProject).Put(projectKey(nr.Project, seq), nil); err != nil {
		return err
	}
	latest := root.Bucket(bucketLatest)
	if err := latest.Put(latestKey("", nr.Project), sk); err != nil {
		return err
	}
	if nr.Kind != "" {
		if err := latest.Put(latestKey(string(nr.Kind), nr.Project), sk); err != nil {
			return err
		}
	}
	if err := linkNewRequests(root, &nr, seq, nil); err != nil {
		return fmt.Errorf("create run: link delivery: %w", err)
	}
	*r = nr
	return nil
}

// putRun writes the run record and keeps the unfinished index in step.
func putRun(root *bolt.Bucket, seq uint64, r *Run) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode run %s: %w", r.ID, err)
	}
	sk := seqKey(seq)
	runs := root.Bucket(bucketRuns)
	runs.FillPercent = 0.9 // keys grow; pages fill almost fully
	if err := runs.Put(sk, v); err != nil {
		return err
	}
	if r.Cause.Forge != "" {
		if err := markChange(root, sk); err != nil {
			return err
		}
	}
	unf := root.Bucket(bucketUnfinished)
	if r.State.Done() {
		if unf.Get(sk) != nil { // it finishes now: its mail is to be decided (mail.go)
			if err := markFinished(root, sk); err != nil {
				return err
			}
		}
		return unf.Delete(sk)
	}
	return unf.Put(sk, nil)
}

// UpdateRun reads run id, calls fn on it and stores the result, all in one
// transaction. If fn returns an error nothing is written and the error is
// returned. fn must not change ID, Project or Kind.
func (db *DB) UpdateRun(ctx context.Context, id string, fn func(*Run) error) (*Run, error) {
	seq, err := parseRunID(id)
	if err != nil {
		return nil, err
	}
	var out *Run
	err = db.update(ctx, func(root *bolt.Bucket) error {
		out, err = updateRun(root, id, seq, fn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// updateRun is UpdateRun inside a transaction.
func updateRun(root *bolt.Bucket, id string, seq uint64, fn func(*Run) error) (*Run, error) {
	sk := seqKey(seq)
	v := root.Bucket(bucketRuns).Get(sk)
	if v == nil {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	r, err := decodeRun(sk, v)
	if err != nil {
		return nil, err
	}
	id, project, kind := r.ID, r.Project, r.Kind
	// The requests linked so far, to link only new ones: a copy of the
	// causes (no copy at all for a run without folds), made a set only
	// when the update changed them.
	before := Run{Cause: r.Cause, Folded: slices.Clone(r.Folded)}
	if err := fn(r); err != nil {
		return nil, err
	}
	if r.ID != id || r.Project != project || r.Kind != kind {
		return nil, fmt.Errorf("update run %s: ID, Project and Kind cannot change", id)
	}
	if err := putRun(root, seq, r); err != nil {
		return nil, fmt.Errorf("update run %s: %w", id, err)
	}
	if r.Cause != before.Cause || !slices.EqualFunc(r.Folded, before.Folded, func(a, b Fold) bool { return a.Cause == b.Cause }) {
		if err := linkNewRequests(root, r, seq, runRequests(&before)); err != nil {
			return nil, fmt.Errorf("update run %s: link delivery: %w", id, err)
		}
	}
	return r, nil
}

// Run returns run id, or ErrNotFound.
func (db *DB) Run(ctx context.Context, id string) (*Run, error) {
	seq, err := parseRunID(id)
	if err != nil {
		return nil, err
	}
	var r *Run
	err = db.view(ctx, func(root *bolt.Bucket) error {
		sk := seqKey(seq)
		v := root.Bucket(bucketRuns).Get(sk)
		if v == nil {
			return fmt.Errorf("run %s: %w", id, ErrNotFound)
		}
		r, err = decodeRun(sk, v)
		return err
	})
	return r, err
}

// Runs returns the runs f selects, newest first. With Project set it walks
// only that project's index. Records that fail to decode are skipped; the
// others are returned together with an error naming each bad key.
func (db *DB) Runs(ctx context.Context, f RunFilter) ([]*Run, error) {
	var before uint64 // exclusive upper bound; 0 = none
	if f.Before != "" {
		seq, err := parseRunID(f.Before)
		if err != nil {
			return nil, fmt.Errorf("runs before: %w", err)
		}
		before = seq
	}
	if err := checkName("project", f.Project); err != nil {
		return nil, err
	}
	var out []*Run
	var bad []error
	err := db.view(ctx, func(root *bolt.Bucket) error {
		runs := root.Bucket(bucketRuns)
		consider := func(sk []byte) bool { // false: stop
			r, err := decodeRun(sk, runs.Get(sk))
			if err != nil {
				bad = append(bad, err)
				return true
			}
			if len(f.States) > 0 && !slices.Contains(f.States, r.State) {
				return true
			}
			if f.Kind != "" && r.Kind != f.Kind {
				return true
			}
			out = append(out, r)
			return f.Limit <= 0 || len(out) < f.Limit
		}
		if f.Project == "" {
			c := runs.Cursor()
			var k []byte
			if before > 0 {
				k, _ = c.Seek(seqKey(before))
				if k == nil {
					k, _ = c.Last()
				} else {
					k, _ = c.Prev()
				}
			} else {
				k, _ = c.Last()
			}
			for ; k != nil; k, _ = c.Prev() {
				if before > 0 && binary.BigEndian.Uint64(k) >= before {
					continue
				}
				if !consider(k) {
					break
				}
			}
			return nil
		}
		prefix := append([]byte(f.Project), sep)
		c := root.Bucket(bucketByProject).Cursor()
		// Seek just past the last key of this project (or to before),
		// then walk backwards while the prefix holds.
		var start []byte
		if before > 0 {
			start = projectKey(f.Project, before)
		} else {
			start = append([]byte(f.Project), sep+1)
		}
		k, _ := c.Seek(start)
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
			if len(k) != len(prefix)+8 {
				continue
			}
			if !consider(k[len(prefix):]) {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(bad...)
}

// LatestRuns returns the newest run of each project with the given kind
// ("" = any kind), keyed by project. It reads one record per project.
func (db *DB) LatestRuns(ctx context.Context, kind string) (map[string]*Run, error) {
	if err := checkName("kind", kind); err != nil {
		return nil, err
	}
	out := make(map[string]*Run)
	var bad []error
	err := db.view(ctx, func(root *bolt.Bucket) error {
		runs := root.Bucket(bucketRuns)
		prefix := append([]byte(kind), sep)
		c := root.Bucket(bucketLatest).Cursor()
		for k, sk := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, sk = c.Next() {
			v := runs.Get(sk)
			if v == nil {
				bad = append(bad, fmt.Errorf("latest %q: run missing", k[len(prefix):]))
				continue
			}
			r, err := decodeRun(sk, v)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			out[string(k[len(prefix):])] = r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(bad...)
}

// UnfinishedRuns returns the queued and running runs, oldest first, for
// resuming after a restart.
func (db *DB) UnfinishedRuns(ctx context.Context) ([]*Run, error) {
	var out []*Run
	var bad []error
	err := db.view(ctx, func(root *bolt.Bucket) error {
		runs := root.Bucket(bucketRuns)
		return root.Bucket(bucketUnfinished).ForEach(func(sk, _ []byte) error {
			r, err := decodeRun(sk, runs.Get(sk))
			if err != nil {
				bad = append(bad, err)
				return nil
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(bad...)
}

// ---- report outbox

// PutReport stores r, replacing any report with the same key (a newer
// report of a target supersedes the older one). Updated is set to now
// (strictly increasing per key); zero NextAttempt means due at once.
func (db *DB) PutReport(ctx context.Context, r Report) error {
	if r.Key == "" {
		return errors.New("put report: empty key")
	}
	return db.update(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketReports)
		return putReport(b, r, time.Now())
	})
}

// putReport stores r in the outbox bucket b. A report replacing one that
// waits for a retry keeps its attempts and next attempt: a newer report
// does not reset the backoff of a target the forge refused or rate-limited.
// One replacing a given-up report starts afresh (its content differs).
func putReport(b *bolt.Bucket, r Report, now time.Time) error {
	if r.Key == "" {
		return errors.New("put report: empty key")
	}
	r.Updated = now.UTC().Round(0)
	if old := b.Get([]byte(r.Key)); old != nil {
		var prev Report
		if err := json.Unmarshal(old, &prev); err == nil {
			if !r.Updated.After(prev.Updated) {
				r.Updated = prev.Updated.Add(time.Nanosecond)
			}
			if !prev.Failed && prev.Attempts > 0 {
				r.Attempts, r.LastError = prev.Attempts, prev.LastError
				if prev.NextAttempt.After(r.NextAttempt) {
					r.NextAttempt = prev.NextAttempt
				}
			}
		}
	}
	r.Failed = false
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("put report %s: %w", r.Key, err)
	}
	return b.Put([]byte(r.Key), v)
}

// markChange bumps the change version of run sk.
func markChange(root *bolt.Bucket, sk []byte) error {
	b := root.Bucket(bucketChanges)
	n := uint64(1)
	if v := b.Get(sk); len(v) == 8 {
		n = binary.BigEndian.Uint64(v) + 1
	}
	return b.Put(sk, binary.BigEndian.AppendUint64(nil, n))
}

// RunChange is a change of a run caused by a forge event whose reports are
// not yet in the outbox.
type RunChange struct {
	Run     *Run
	Version uint64
}

// RunChanges returns up to limit (<= 0: all) runs changed since their
// reports were last put, oldest run first. Every CreateRun and UpdateRun of
// a run with Cause.Forge set records a change in the run's own
// transaction, so no change is lost to a crash.
func (db *DB) RunChanges(ctx context.Context, limit int) ([]RunChange, error) {
	var out []RunChange
	var bad []error
	err := db.view(ctx, func(root *bolt.Bucket) error {
		runs := root.Bucket(bucketRuns)
		c := root.Bucket(bucketChanges).Cursor()
		for sk, v := c.First(); sk != nil && (limit <= 0 || len(out) < limit); sk, v = c.Next() {
			rv := runs.Get(sk)
			if rv == nil || len(v) != 8 {
				continue
			}
			r, err := decodeRun(sk, rv)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			out = append(out, RunChange{Run: r, Version: binary.BigEndian.Uint64(v)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(bad...)
}

// PutReports stores reports (as PutReport does) and acknowledges the run
// changes they were rendered from, in one transaction. A change whose run
// changed again since it was read stays, so the newer state is reported
// too.
func (db *DB) PutReports(ctx context.Context, reports []Report, ack []RunChange) error {
	return db.update(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketReports)
		now := time.Now()
		for _, r := range reports {
			if err := putReport(b, r, now); err != nil {
				return err
			}
		}
		changes := root.Bucket(bucketChanges)
		for _, ch := range ack {
			seq, err := parseRunID(ch.Run.ID)
			if err != nil {
				continue
			}
			sk := seqKey(seq)
			if v := changes.Get(sk); len(v) == 8 && binary.BigEndian.Uint64(v) == ch.Version {
				if err := changes.Delete(sk); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func decodeReport(k, v []byte) (Report, error) {
	var r Report
	if err := json.Unmarshal(v, &r); err != nil {
		return r, &DecodeError{Bucket: "reports", Key: string(k), Err: err}
	}
	return r, nil
}

// DueReports returns up to limit reports whose NextAttempt is not after
// now, earliest first. limit <= 0 means no limit. Records that fail to
// decode are skipped and named in the returned error.
func (db *DB) DueReports(ctx context.Context, now time.Time, limit int) ([]Report, error) {
	var out []Report
	var bad []error
	err := db.view(ctx, func(root *bolt.Bucket) error {
		return root.Bucket(bucketReports).ForEach(func(k, v []byte) error {
			r, err := decodeReport(k, v)
			if err != nil {
				bad = append(bad, err)
				return nil
			}
			if !r.Failed && !r.NextAttempt.After(now) {
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b Report) int { return a.NextAttempt.Compare(b.NextAttempt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, errors.Join(bad...)
}

// RetryReport records a failed attempt: Attempts+1, NextAttempt=next and
// LastError=errMsg (which must not hold secrets). ErrNotFound if gone.
// Updated is left alone, so DeleteReport still matches this version.
func (db *DB) RetryReport(ctx context.Context, key string, next time.Time, errMsg string) error {
	return db.update(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketReports)
		v := b.Get([]byte(key))
		if v == nil {
			return fmt.Errorf("report %s: %w", key, ErrNotFound)
		}
		r, err := decodeReport([]byte(key), v)
		if err != nil {
			return err
		}
		r.Attempts++
		r.NextAttempt = next
		r.LastError = errMsg
		nv, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("retry report %s: %w", key, err)
		}
		return b.Put([]byte(key), nv)
	})
}

// FailReport gives up report key at version updated (the forge refused it
// for good): it stays, with reason (no secret in it), out of DueReports,
// until a newer report of the same target replaces it.
func (db *DB) FailReport(ctx context.Context, key string, updated time.Time, reason string) error {
	return db.reportVersion(ctx, key, updated, func(b *bolt.Bucket, r *Report) error {
		r.Attempts++
		r.Failed, r.LastError = true, reason
		nv, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("give up report %s: %w", key, err)
		}
		return b.Put([]byte(key), nv)
	})
}

// reportVersion calls fn in a write transaction with the report key, if it
// is still the version updated; a report that is gone or was replaced by a
// newer one meanwhile is left alone.
func (db *DB) reportVersion(ctx context.Context, key string, updated time.Time, fn func(b *bolt.Bucket, r *Report) error) error {
	return db.update(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketReports)
		v := b.Get([]byte(key))
		if v == nil {
			return nil
		}
		r, err := decodeReport([]byte(key), v)
		if err != nil {
			return err
		}
		if !r.Updated.Equal(updated) {
			return nil
		}
		return fn(b, &r)
	})
}

// GivenUpReports returns the reports the forge refused for good, at most
// limit (<= 0: all).
func (db *DB) GivenUpReports(ctx context.Context, limit int) ([]Report, error) {
	var out []Report
	var bad []error
	err := db.view(ctx, func(root *bolt.Bucket) error {
		return root.Bucket(bucketReports).ForEach(func(k, v []byte) error {
			r, err := decodeReport(k, v)
			if err != nil {
				bad = append(bad, err)
				return nil
			}
			if r.Failed && (limit <= 0 || len(out) < limit) {
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(bad...)
}

// DeleteReport removes the report key if its Updated still equals updated,
// that is, if it was not replaced by a newer report since it was read.
// It returns nil when the report is already gone or was replaced.
func (db *DB) DeleteReport(ctx context.Context, key string, updated time.Time) error {
	return db.reportVersion(ctx, key, updated, func(b *bolt.Bucket, _ *Report) error {
		return b.Delete([]byte(key))
	})
}

// ---- small bot state

// PutMeta stores val under (ns, key).
func (db *DB) PutMeta(ctx context.Context, ns, key string, val []byte) error {
	if ns == "" || key == "" {
		return errors.New("put meta: empty namespace or key")
	}
	return db.update(ctx, func(root *bolt.Bucket) error {
		b, err := root.Bucket(bucketKV).CreateBucketIfNotExists([]byte(ns))
		if err != nil {
			return fmt.Errorf("put meta %s/%s: %w", ns, key, err)
		}
		return b.Put([]byte(key), val)
	})
}

// GetMeta returns the value under (ns, key), or ErrNotFound.
func (db *DB) GetMeta(ctx context.Context, ns, key string) ([]byte, error) {
	var out []byte
	err := db.view(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketKV).Bucket([]byte(ns))
		var v []byte
		if b != nil && key != "" {
			v = b.Get([]byte(key))
		}
		if v == nil {
			return fmt.Errorf("meta %s/%s: %w", ns, key, ErrNotFound)
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// DeleteMeta removes (ns, key); removing a missing key is not an error.
func (db *DB) DeleteMeta(ctx context.Context, ns, key string) error {
	return db.update(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketKV).Bucket([]byte(ns))
		if b == nil || key == "" {
			return nil
		}
		return b.Delete([]byte(key))
	})
}

// PruneMeta removes the keys of namespace ns for which drop returns true,
// in one transaction, and returns how many it removed.
func (db *DB) PruneMeta(ctx context.Context, ns string, drop func(key string, val []byte) bool) (int, error) {
	n := 0
	err := db.update(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketKV).Bucket([]byte(ns))
		if b == nil {
			return nil
		}
		var gone [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			if drop(string(k), v) {
				gone = append(gone, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range gone {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(gone)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune meta %s: %w", ns, err)
	}
	return n, nil
}

// newest decodes the records of b from its last key backwards, at most
// limit of them (<= 0: all); a nil b (a bucket made on first use) has none.
func newest[T any](b *bolt.Bucket, limit int, decode func(k, v []byte) (T, error)) ([]T, error) {
	var out []T
	if b == nil {
		return out, nil
	}
	c := b.Cursor()
	for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
		r, err := decode(k, v)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}
