package store

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cccp-project/cccp/internal/types"
)

// LastDelivered returns the run whose image project's tags point at: the
// branch run that delivered last (Run.DeliveredDigest is not ""), or
// ErrNotFound when none did. It reads delivered/<project> and that one
// run, however many runs of other kinds (rescans, trials, pull requests)
// or up-to-date runs came after it. Where delivered/ has no record (runs
// finished with UpdateRun rather than FinishRun, or a database older than
// the bucket) or its run was removed, it walks the project's runs newest
// first to the first that delivered.
func (db *DB) LastDelivered(ctx context.Context, project string) (*Run, error) {
	if err := checkName("project", project); err != nil {
		return nil, err
	}
	var found *Run
	err := db.view(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketDelivered)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(project))
		if v == nil {
			return nil
		}
		var d delivered
		if err := json.Unmarshal(v, &d); err != nil {
			return &DecodeError{Bucket: "delivered", Key: project, Err: err}
		}
		seq, err := parseRunID(d.Run)
		if err != nil {
			return &DecodeError{Bucket: "delivered", Key: project, Err: err}
		}
		sk := seqKey(seq)
		rv := root.Bucket(bucketRuns).Get(sk)
		if rv == nil {
			return nil // removed by retention: walk
		}
		r, err := decodeRun(sk, rv)
		if err != nil {
			return err
		}
		if r.Project == project && r.DeliveredDigest() != "" {
			found = r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("last delivered run of %s: %w", project, err)
	}
	if found != nil {
		return found, nil
	}
	return db.walkDelivered(ctx, project)
}

// walkDelivered is LastDelivered without delivered/: the project's passed
// branch runs, newest first, a page at a time.
func (db *DB) walkDelivered(ctx context.Context, project string) (*Run, error) {
	const page = 50
	before := ""
	for {
		runs, err := db.Runs(ctx, RunFilter{Project: project, Kind: types.KindBranch, States: []State{Passed}, Limit: page, Before: before})
		if err != nil && len(runs) == 0 {
			return nil, fmt.Errorf("last delivered run of %s: %w", project, err)
		}
		for _, r := range runs {
			if r.DeliveredDigest() != "" {
				return r, nil
			}
		}
		if len(runs) < page {
			return nil, fmt.Errorf("last delivered run of %s: %w", project, ErrNotFound)
		}
		before = runs[len(runs)-1].ID
	}
}
