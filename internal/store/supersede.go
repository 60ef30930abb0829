package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/cccp-project/cccp/internal/types"
)

// Supersede says which older runs a new run of the same target replaces,
// and how they end (CreateRunSuperseding, SupersedeRuns). The store does
// not know what a target is; the pipeline does.
type Supersede struct {
	// Older are the IDs of the candidate runs; nil reads every
	// unfinished run. A candidate that is finished, newer than the new
	// run or gone is passed over.
	Older []string
	// Match tells whether an unfinished candidate is to end (same
	// target). Required.
	Match func(old *Run) bool
	// End changes a matched run into its final state (cancelled, with a
	// reason that names by, whose ID is set). Required.
	End func(old, by *Run)
}

// CreateRunSuperseding is CreateRun that also ends the older runs s
// matches, in the same transaction: a crash leaves either the old runs
// alone and no new run, or the new run and the old ones ended, never two
// live runs of one target. Each ended run's change is recorded for its
// reports in that transaction too (run_changes), as every run change is.
//
// A branch run that ends an older run of an open cascade's node takes the
// old run's place there: the node's run becomes r, r joins the cascade
// (Cause.Cascade) and waits on the parents the old run still waited on,
// so the node settles with r's result and its descendants wait on r
// instead of being stopped by the cancellation.
//
// It returns the runs it ended, as stored.
func (db *DB) CreateRunSuperseding(ctx context.Context, r *Run, s Supersede) ([]*Run, error) {
	if r.Project == "" {
		return nil, errors.New("create run: empty project")
	}
	if err := errors.Join(checkName("project", r.Project), checkName("kind", string(r.Kind))); err != nil {
		return nil, fmt.Errorf("create run: %w", err)
	}
	if s.Match == nil || s.End == nil {
		return nil, errors.New("create run: Supersede needs Match and End")
	}
	var ended []*Run
	err := db.update(ctx, func(root *bolt.Bucket) error {
		nr := *r
		older, err := supersedable(root, ^uint64(0), s)
		if err != nil {
			return err
		}
		node, err := takeOver(root, &nr, older)
		if err != nil {
			return err
		}
		if err := createRun(root, &nr); err != nil {
			return err
		}
		if ended, err = endOlder(root, &nr, older, s, node); err != nil {
			return err
		}
		*r = nr
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create run of %s: %w", r.Project, err)
	}
	return ended, nil
}

// SupersedeRuns is CreateRunSuperseding for a run that is stored already
// (by): it ends the runs older than by that s matches and lets by take
// over a cascade node of one, in one transaction. Start uses it to
// reconcile two live runs of one target that an older cccp, or a crash
// between two transactions, left.
func (db *DB) SupersedeRuns(ctx context.Context, by string, s Supersede) ([]*Run, error) {
	seq, err := parseRunID(by)
	if err != nil {
		return nil, err
	}
	if s.Match == nil || s.End == nil {
		return nil, errors.New("supersede runs: Supersede needs Match and End")
	}
	var ended []*Run
	err = db.update(ctx, func(root *bolt.Bucket) error {
		sk := seqKey(seq)
		v := root.Bucket(bucketRuns).Get(sk)
		if v == nil {
			return fmt.Errorf("run %s: %w", by, ErrNotFound)
		}
		byRun, err := decodeRun(sk, v)
		if err != nil {
			return err
		}
		if byRun.State.Done() {
			return nil
		}
		older, err := supersedable(root, seq, s)
		if err != nil {
			return err
		}
		if len(older) == 0 {
			return nil
		}
		want := *byRun
		node, err := takeOver(root, &want, older)
		if err != nil {
			return err
		}
		if node != nil {
			if byRun, err = updateRun(root, by, seq, func(r *Run) error {
				r.Cause.Cascade, r.WaitsOn = want.Cause.Cascade, want.WaitsOn
				return nil
			}); err != nil {
				return err
			}
		}
		ended, err = endOlder(root, byRun, older, s, node)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("supersede runs older than %s: %w", by, err)
	}
	return ended, nil
}

// supersedable reads the unfinished runs s names, older than seq, that s
// matches.
func supersedable(root *bolt.Bucket, seq uint64, s Supersede) ([]*Run, error) {
	unf := root.Bucket(bucketUnfinished)
	var keys [][]byte
	if s.Older == nil {
		c := unf.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			keys = append(keys, slices.Clone(k))
		}
	} else {
		for _, id := range s.Older {
			n, err := strconv.ParseUint(id, 10, 64)
			if err != nil || n == 0 {
				continue
			}
			keys = append(keys, seqKey(n))
		}
	}
	runs := root.Bucket(bucketRuns)
	var out []*Run
	for _, sk := range keys {
		if len(sk) != 8 || binary.BigEndian.Uint64(sk) >= seq || unf.Get(sk) == nil {
			continue
		}
		v := runs.Get(sk)
		if v == nil {
			continue
		}
		old, err := decodeRun(sk, v)
		if err != nil {
			return nil, err
		}
		if !old.State.Done() && s.Match(old) {
			out = append(out, old)
		}
	}
	return out, nil
}

// heldNode is the cascade node a new run takes over from an ended run.
type heldNode struct {
	sk  []byte // the cascade's key
	rec *nodeRecord
}

// takeOver finds the open cascade node held by one of older that r, a
// branch run outside any cascade, takes over, and makes r part of that
// cascade (Cause.Cascade, and the parents the node still waits on). The
// node is rebound by endOlder, once r has its ID.
func takeOver(root *bolt.Bucket, r *Run, older []*Run) (*heldNode, error) {
	if r.Kind != types.KindBranch || r.Cause.Cascade != "" {
		return nil, nil
	}
	for _, old := range older {
		if old.Cause.Cascade == "" || old.Project != r.Project {
			continue
		}
		part, err := openPart(root, old.Cause.Cascade)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		if part == nil {
			continue
		}
		rec, err := getNode(root, part.sk, old.Project)
		if err != nil {
			return nil, err
		}
		if rec == nil || rec.Run != old.ID || !openState(rec.State) {
			continue
		}
		r.Cause.Cascade = old.Cause.Cascade
		if rec.State == CascadeWaiting && r.State != Running {
			r.WaitsOn = slices.Clone(old.WaitsOn)
		}
		return &heldNode{sk: part.sk, rec: rec}, nil
	}
	return nil, nil
}

// endOlder ends each of older for by with s.End and rebinds the node by
// took over.
func endOlder(root *bolt.Bucket, by *Run, older []*Run, s Supersede, node *heldNode) ([]*Run, error) {
	var ended []*Run
	for _, old := range older {
		seq, err := parseRunID(old.ID)
		if err != nil {
			return nil, err
		}
		r, err := updateRun(root, old.ID, seq, func(r *Run) error {
			if r.State.Done() {
				return errNoChange
			}
			s.End(r, by)
			return nil
		})
		if errors.Is(err, errNoChange) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ended = append(ended, r)
	}
	if node != nil {
		node.rec.Run = by.ID
		if err := putNode(root, node.sk, node.rec); err != nil {
			return nil, fmt.Errorf("cascade %s: hand %s to run %s: %w", by.Cause.Cascade, node.rec.Project, by.ID, err)
		}
	}
	return ended, nil
}
