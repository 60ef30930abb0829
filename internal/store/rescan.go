package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cccp-project/cccp/internal/types"
)

// Rescan buckets (see the package comment). They are created by the first
// write, not by a migration: they are new, hold nothing a migration would
// move, and a reader treats a missing bucket as empty.
var (
	bucketRescans = []byte("rescans")
	bucketScans   = []byte("scans")
)

// Rescan is one rescan of every delivered image: its progress, entry by
// entry.
type Rescan struct {
	ID                string // assigned by CreateRescan: decimal sequence
	Started, Finished time.Time
	// Trigger says what started it: "schedule" or "manual by NAME".
	Trigger string
	Entries []RescanEntry
}

// RescanEntry is one entry's part in a rescan.
type RescanEntry struct {
	Project string // the entry's key
	// State: Queued (waiting for its turn), Running (its run is queued or
	// running), Passed/Failed (its run ended), Skipped (nothing to scan).
	State State
	RunID string `json:",omitempty"`
	// Note says why an entry was skipped or failed.
	Note string `json:",omitempty"`
	// Changed: its findings differ from its previous scan.
	Changed bool `json:",omitempty"`
	// Due is when its scan is to start: a scheduled rescan spreads its
	// entries over a window (zero: at once).
	Due time.Time `json:",omitzero"`
}

// Done is how many entries have ended (including skipped ones).
func (r *Rescan) Done() int {
	n := 0
	for _, e := range r.Entries {
		if e.State.Done() {
			n++
		}
	}
	return n
}

// Finding is one line a scan found, with the check that found it.
type Finding struct {
	Check types.CheckName
	Text  string
}

// Scan is what one scan of an entry's delivered image found, and what
// changed since the scan before it.
type Scan struct {
	ID       string // assigned by PutScan: decimal sequence, across projects
	Project  string
	RescanID string `json:",omitempty"`
	RunID    string
	Digest   string
	Time     time.Time
	// State is the run's: Failed when the scans could not run (then
	// Findings are empty and nothing is compared).
	State    State
	Findings []Finding `json:",omitempty"`
	// New and Resolved compare Findings with the previous scan (or, for
	// the first, with the delivering run's own scans).
	New      []Finding `json:",omitempty"`
	Resolved []Finding `json:",omitempty"`
}

// CreateRescan stores a new rescan, assigning r.ID and r.Started (when
// zero).
func (db *DB) CreateRescan(ctx context.Context, r *Rescan) error {
	return db.update(ctx, func(root *bolt.Bucket) error {
		b, err := root.CreateBucketIfNotExists(bucketRescans)
		if err != nil {
			return fmt.Errorf("create rescan: %w", err)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("create rescan: %w", err)
		}
		r.ID = strconv.FormatUint(seq, 10)
		if r.Started.IsZero() {
			r.Started = time.Now().UTC()
		}
		return putJSON(b, seqKey(seq), r, "rescan "+r.ID)
	})
}

// UpdateRescan changes rescan id with fn in one transaction and returns
// the stored result.
func (db *DB) UpdateRescan(ctx context.Context, id string, fn func(*Rescan) error) (*Rescan, error) {
	seq, err := parseRunID(id)
	if err != nil {
		return nil, fmt.Errorf("update rescan: %w", err)
	}
	var out *Rescan
	err = db.update(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketRescans)
		if b == nil || b.Get(seqKey(seq)) == nil {
			return fmt.Errorf("rescan %s: %w", id, ErrNotFound)
		}
		r, err := decodeRescan(seqKey(seq), b.Get(seqKey(seq)))
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
		out = r
		return putJSON(b, seqKey(seq), r, "rescan "+id)
	})
	return out, err
}

// Rescan returns rescan id, or ErrNotFound.
func (db *DB) Rescan(ctx context.Context, id string) (*Rescan, error) {
	seq, err := parseRunID(id)
	if err != nil {
		return nil, fmt.Errorf("rescan: %w", err)
	}
	var out *Rescan
	err = db.view(ctx, func(root *bolt.Bucket) error {
		var v []byte
		if b := root.Bucket(bucketRescans); b != nil {
			v = b.Get(seqKey(seq))
		}
		if v == nil {
			return fmt.Errorf("rescan %s: %w", id, ErrNotFound)
		}
		out, err = decodeRescan(seqKey(seq), v)
		return err
	})
	return out, err
}

// Rescans returns the newest rescans first, at most limit (0: all).
func (db *DB) Rescans(ctx context.Context, limit int) ([]*Rescan, error) {
	var out []*Rescan
	err := db.view(ctx, func(root *bolt.Bucket) error {
		var err error
		out, err = newest(root.Bucket(bucketRescans), limit, decodeRescan)
		return err
	})
	return out, err
}

func decodeRescan(k, v []byte) (*Rescan, error) {
	r := new(Rescan)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, &DecodeError{Bucket: "rescans", Key: strconv.FormatUint(binary.BigEndian.Uint64(k), 10), Err: err}
	}
	return r, nil
}

// PutScan stores a new scan of s.Project, assigning s.ID.
func (db *DB) PutScan(ctx context.Context, s *Scan) error {
	if s.Project == "" {
		return errors.New("put scan: empty project")
	}
	if err := checkName("project", s.Project); err != nil {
		return fmt.Errorf("put scan: %w", err)
	}
	return db.update(ctx, func(root *bolt.Bucket) error {
		b, err := root.CreateBucketIfNotExists(bucketScans)
		if err != nil {
			return fmt.Errorf("put scan: %w", err)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("put scan: %w", err)
		}
		s.ID = strconv.FormatUint(seq, 10)
		return putJSON(b, projectKey(s.Project, seq), s, "scan of "+s.Project)
	})
}

// Scans returns project's scans, newest first, at most limit (0: all).
func (db *DB) Scans(ctx context.Context, project string, limit int) ([]*Scan, error) {
	var out []*Scan
	err := db.view(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketScans)
		if b == nil {
			return nil
		}
		prefix := append([]byte(project), sep)
		c := b.Cursor()
		// Seek past the project's last key, then walk back.
		end := append(bytes.Clone(prefix), bytes.Repeat([]byte{0xff}, 9)...)
		k, v := c.Seek(end)
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			s := new(Scan)
			if err := json.Unmarshal(v, s); err != nil {
				return &DecodeError{Bucket: "scans", Key: string(k[:len(prefix)-1]) + "/" + strconv.FormatUint(binary.BigEndian.Uint64(k[len(prefix):]), 10), Err: err}
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

func putJSON(b *bolt.Bucket, k []byte, v any, what string) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	return b.Put(k, raw)
}

// SaveRescan writes r's progress and end (its Entries and Finished) and
// stores scans, in one transaction: a rescan of hundreds of images writes
// its findings in a few batches, not one transaction each. Each scan gets
// its ID.
func (db *DB) SaveRescan(ctx context.Context, r *Rescan, scans []*Scan) error {
	seq, err := parseRunID(r.ID)
	if err != nil {
		return fmt.Errorf("save rescan: %w", err)
	}
	for _, s := range scans {
		if s.Project == "" {
			return errors.New("save rescan: a scan with an empty project")
		}
		if err := checkName("project", s.Project); err != nil {
			return fmt.Errorf("save rescan: %w", err)
		}
	}
	return db.update(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketRescans)
		if b == nil || b.Get(seqKey(seq)) == nil {
			return fmt.Errorf("rescan %s: %w", r.ID, ErrNotFound)
		}
		stored, err := decodeRescan(seqKey(seq), b.Get(seqKey(seq)))
		if err != nil {
			return err
		}
		stored.Entries, stored.Finished = r.Entries, r.Finished
		if err := putJSON(b, seqKey(seq), stored, "rescan "+r.ID); err != nil {
			return err
		}
		if len(scans) == 0 {
			return nil
		}
		sb, err := root.CreateBucketIfNotExists(bucketScans)
		if err != nil {
			return fmt.Errorf("save rescan: %w", err)
		}
		for _, s := range scans {
			sseq, err := sb.NextSequence()
			if err != nil {
				return fmt.Errorf("save rescan: %w", err)
			}
			s.ID = strconv.FormatUint(sseq, 10)
			if err := putJSON(sb, projectKey(s.Project, sseq), s, "scan of "+s.Project); err != nil {
				return err
			}
		}
		return nil
	})
}
