package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cccp-project/cccp/internal/types"
)

// Delivery links: which runs a webhook delivery's requests made, kept apart
// from the delivery records (deliveries.go) and written in the
// transaction that stores the run, so a delivery routed again after a
// crash, or redelivered by its forge with the same ID or retry key, is
// known to have acted whatever became of its runs since. The bucket is
// created by the first link:
//
//	v1/
//	  delivery_runs/
//	    <forge> 0x00 <delivery id> 0x00 <run seq>
//	                            -> JSON deliveryLink: the request's project, kind and
//	                               commit, and when it was linked
//
// A request folded into a queued run (Run.Folded) links its delivery to
// that run too. The link outlives its run's retention; PruneDeliveries
// forgets a delivery's links with the delivery, in one transaction.
var bucketDeliveryRuns = []byte("delivery_runs")

type deliveryLink struct {
	Project string
	Kind    types.RunKind `json:",omitempty"`
	Commit  string        `json:",omitempty"`
	At      time.Time
}

func deliveryLinkPrefix(forge, id string) []byte {
	k := make([]byte, 0, len(forge)+len(id)+2+8)
	k = append(k, forge...)
	k = append(k, sep)
	k = append(k, id...)
	return append(k, sep)
}

// linkable tells whether c names a forge delivery that can be linked.
func linkable(c Cause) bool {
	return c.Forge != "" && c.DeliveryID != "" &&
		strings.IndexByte(c.Forge, sep) < 0 && strings.IndexByte(c.DeliveryID, sep) < 0
}

// linkDelivery records that c's delivery made (or was folded into) run
// seq of project and kind.
func linkDelivery(root *bolt.Bucket, c Cause, project string, kind types.RunKind, seq uint64, now time.Time) error {
	if !linkable(c) {
		return nil
	}
	b, err := root.CreateBucketIfNotExists(bucketDeliveryRuns)
	if err != nil {
		return err
	}
	v, err := json.Marshal(deliveryLink{Project: project, Kind: kind, Commit: c.Commit, At: now})
	if err != nil {
		return err
	}
	return b.Put(binary.BigEndian.AppendUint64(deliveryLinkPrefix(c.Forge, c.DeliveryID), seq), v)
}

// requestKey names one delivery's request among a run's causes.
func requestKey(c Cause) string { return c.Forge + "\x00" + c.DeliveryID + "\x00" + c.Commit }

// runRequests are the keys of the linkable causes of r (its cause and
// those folded into it).
func runRequests(r *Run) map[string]bool {
	var m map[string]bool
	add := func(c Cause) {
		if linkable(c) {
			if m == nil {
				m = map[string]bool{}
			}
			m[requestKey(c)] = true
		}
	}
	add(r.Cause)
	for _, f := range r.Folded {
		add(f.Cause)
	}
	return m
}

// linkNewRequests links the deliveries of r's causes that were not among
// before (runRequests of r before a change).
func linkNewRequests(root *bolt.Bucket, r *Run, seq uint64, before map[string]bool) error {
	now := time.Now().UTC()
	link := func(c Cause) error {
		if !linkable(c) || before[requestKey(c)] {
			return nil
		}
		return linkDelivery(root, c, r.Project, r.Kind, seq, now)
	}
	if err := link(r.Cause); err != nil {
		return err
	}
	for _, f := range r.Folded {
		if err := link(f.Cause); err != nil {
			return err
		}
	}
	return nil
}

// DeliveryRun returns the run that the request of c (its forge, delivery
// ID and commit) already made for project and kind, in whatever state it
// is now, or ErrNotFound. A run deleted by retention since is returned as
// a stub with its ID, Project and Kind.
func (db *DB) DeliveryRun(ctx context.Context, c Cause, project string, kind types.RunKind) (*Run, error) {
	if !linkable(c) {
		return nil, fmt.Errorf("delivery run of %s: %w", project, ErrNotFound)
	}
	var out *Run
	err := db.view(ctx, func(root *bolt.Bucket) error {
		b := root.Bucket(bucketDeliveryRuns)
		if b == nil {
			return nil
		}
		prefix := deliveryLinkPrefix(c.Forge, c.DeliveryID)
		cur := b.Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			if len(k) != len(prefix)+8 {
				continue
			}
			var l deliveryLink
			if err := json.Unmarshal(v, &l); err != nil {
				return &DecodeError{Bucket: "delivery_runs", Key: string(k[:len(prefix)-1]), Err: err}
			}
			if l.Project != project || l.Kind != kind || l.Commit != c.Commit {
				continue
			}
			sk := k[len(prefix):]
			seq := binary.BigEndian.Uint64(sk)
			rv := root.Bucket(bucketRuns).Get(sk)
			if rv == nil {
				out = &Run{ID: strconv.FormatUint(seq, 10), Project: l.Project, Kind: l.Kind}
				return nil
			}
			r, err := decodeRun(sk, rv)
			if err != nil {
				return err
			}
			out = r
			return nil
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delivery run of %s: %w", project, err)
	}
	if out == nil {
		return nil, fmt.Errorf("delivery %s %s: run of %s: %w", c.Forge, c.DeliveryID, project, ErrNotFound)
	}
	return out, nil
}

// unlinkDelivery forgets the links of the delivery whose delivery_ids key
// is idKey (<forge> 0x00 <delivery id>, the links' prefix but for its
// last separator): PruneDeliveries calls it for each delivery it prunes,
// so the links live exactly as long as the deliveries.
func unlinkDelivery(root *bolt.Bucket, idKey []byte) error {
	b := root.Bucket(bucketDeliveryRuns)
	if b == nil {
		return nil
	}
	prefix := append(bytes.Clone(idKey), sep)
	var keys [][]byte
	cur := b.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		if len(k) == len(prefix)+8 {
			keys = append(keys, bytes.Clone(k))
		}
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
