package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// ErrKept is returned (wrapped, per run) by DeleteRuns for a run it must
// keep: one that is not finished, that a latest/ entry points at, whose
// change is not yet reported, or whose mail is not yet decided.
var ErrKept = errors.New("run must be kept")

// DeleteRuns removes the runs ids, with every index entry that refers to
// them (runs_by_project, runs_unfinished, run_changes), in one
// transaction. A run it must keep (ErrKept) or cannot find stays and is
// named in the joined error; the others are deleted all the same. It
// returns the IDs it deleted. Reports are keyed by their forge target,
// not by run, and stay.
func (db *DB) DeleteRuns(ctx context.Context, ids []string) ([]string, error) {
	var deleted []string
	var skipped []error
	err := db.update(ctx, func(root *bolt.Bucket) error {
		deleted, skipped = nil, nil
		pointed := map[uint64]bool{} // seqs latest/ points at
		if err := root.Bucket(bucketLatest).ForEach(func(_, v []byte) error {
			if len(v) == 8 {
				pointed[binary.BigEndian.Uint64(v)] = true
			}
			return nil
		}); err != nil {
			return err
		}
		runs := root.Bucket(bucketRuns)
		for _, id := range ids {
			seq, err := parseRunID(id)
			if err != nil {
				skipped = append(skipped, err)
				continue
			}
			sk := seqKey(seq)
			v := runs.Get(sk)
			if v == nil {
				skipped = append(skipped, fmt.Errorf("run %s: %w", id, ErrNotFound))
				continue
			}
			r, err := decodeRun(sk, v)
			if err != nil {
				skipped = append(skipped, err)
				continue
			}
			switch {
			case !r.State.Done() || root.Bucket(bucketUnfinished).Get(sk) != nil:
				skipped = append(skipped, fmt.Errorf("run %s is %s: %w", id, r.State, ErrKept))
				continue
			case pointed[seq]:
				skipped = append(skipped, fmt.Errorf("run %s is the latest of its project: %w", id, ErrKept))
				continue
			case root.Bucket(bucketChanges).Get(sk) != nil:
				skipped = append(skipped, fmt.Errorf("run %s has a change not yet reported: %w", id, ErrKept))
				continue
			case mailPending(root, sk):
				skipped = append(skipped, fmt.Errorf("run %s has its mail not yet decided: %w", id, ErrKept))
				continue
			}
			if err := runs.Delete(sk); err != nil {
				return err
			}
			if err := root.Bucket(bucketByProject).Delete(projectKey(r.Project, seq)); err != nil {
				return err
			}
			deleted = append(deleted, strconv.FormatUint(seq, 10))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete runs: %w", err)
	}
	return deleted, errors.Join(skipped...)
}

// mailPending tells whether run sk finished and its mail is not yet decided
// (runs_finished/, mail.go).
func mailPending(root *bolt.Bucket, sk []byte) bool {
	fin := root.Bucket(bucketFinished)
	return fin != nil && fin.Get(sk) != nil
}
