package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Routing attempts.
//
// A delivery whose routing failed stays pending with a stored next-attempt
// time (RetryDelivery), so no worker waits for a forge to come back: the
// dispatcher asks DueDeliveries for what is due. On a permanent error the
// dispatcher gives up (FailDelivery): the delivery stops being pending, its
// body and the reason stay until a replay (ReplayDelivery, or the forge's
// own redelivery under the same ID, which AcceptDelivery takes) or until
// PruneDeliveries drops it.

// Attempt is the routing history of a delivery whose routing failed.
type Attempt struct {
	Attempts    int       `json:"n"`
	NextAttempt time.Time `json:"next,omitzero"`
	LastError   string    `json:"err,omitempty"` // masked by the caller
	Failed      bool      `json:"failed,omitempty"`
	FailedAt    time.Time `json:"failed_at,omitzero"`
}

// ErrNotReplayable is returned by ReplayDelivery for a delivery that was
// not given up (pending, or finished and its body dropped).
var ErrNotReplayable = errors.New("delivery was not given up")

// attemptOf reads the attempt record of seq; the zero Attempt when there is
// none or it cannot be read (an unreadable record never blocks a delivery).
func attemptOf(b *bolt.Bucket, seq []byte) Attempt {
	var a Attempt
	if b == nil {
		return a
	}
	if v := b.Get(seq); v != nil {
		_ = json.Unmarshal(v, &a)
	}
	return a
}

// deliveryAttempt runs fn on the attempt record of (forge, id) in one
// transaction. fn sees the delivery's seq key and its finished stamp.
func (db *DB) deliveryAttempt(ctx context.Context, forge, id, what string, fn func(b dBuckets, idKey, seq []byte, fin uint64, a *Attempt) error) error {
	err := db.update(ctx, func(root *bolt.Bucket) error {
		b := deliveryBuckets(root)
		k := deliveryIDKey(forge, id)
		v := b.ids.Get(k)
		if v == nil {
			return ErrNotFound
		}
		seq, fin, err := idValue(k, v)
		if err != nil {
			return err
		}
		a := attemptOf(b.attempts, seq)
		if err := fn(b, k, seq, fin, &a); err != nil {
			return err
		}
		if a == (Attempt{}) {
			return b.attempts.Delete(seq)
		}
		nv, err := json.Marshal(a)
		if err != nil {
			return err
		}
		return b.attempts.Put(seq, nv)
	})
	if err != nil {
		return fmt.Errorf("%s delivery %s/%s: %w", what, forge, id, err)
	}
	return nil
}

// RetryDelivery records a failed routing attempt of a pending delivery: it
// stays pending, due again at next. errMsg must hold no secret.
func (db *DB) RetryDelivery(ctx context.Context, forge, id string, next time.Time, errMsg string) error {
	return db.deliveryAttempt(ctx, forge, id, "retry", func(_ dBuckets, _, _ []byte, fin uint64, a *Attempt) error {
		if fin != 0 {
			return nil // finished meanwhile
		}
		a.Attempts++
		a.NextAttempt, a.LastError = next.UTC().Round(0), errMsg
		return nil
	})
}

// FailDelivery gives a pending delivery up for reason (no secret in it):
// it is no longer pending, and its body is kept for a replay until
// PruneDeliveries drops it.
func (db *DB) FailDelivery(ctx context.Context, forge, id, reason string) error {
	return db.deliveryAttempt(ctx, forge, id, "give up", func(b dBuckets, k, seq []byte, fin uint64, a *Attempt) error {
		if fin != 0 {
			return nil
		}
		now := time.Now().UTC()
		a.Attempts++
		a.NextAttempt, a.LastError, a.Failed, a.FailedAt = time.Time{}, reason, true, now
		return b.ids.Put(k, binary.BigEndian.AppendUint64(append([]byte(nil), seq...), uint64(now.UnixNano())))
	})
}

// ReplayDelivery makes a given-up delivery pending again, due at once, with
// its attempts forgotten. ErrNotFound for an unknown delivery,
// ErrNotReplayable for one that was not given up.
func (db *DB) ReplayDelivery(ctx context.Context, forge, id string) error {
	return db.deliveryAttempt(ctx, forge, id, "replay", func(b dBuckets, k, seq []byte, fin uint64, a *Attempt) error {
		if !a.Failed || b.bodies.Get(seq) == nil {
			return ErrNotReplayable
		}
		*a = Attempt{}
		return b.ids.Put(k, binary.BigEndian.AppendUint64(append([]byte(nil), seq...), 0))
	})
}

// DeliveryTrouble is a delivery whose routing failed: waiting for its next
// attempt, or given up (Failed).
type DeliveryTrouble struct {
	Forge, ID, Event string
	Received         time.Time
	Attempt
}

// TroubledDeliveries returns the deliveries whose routing failed at least
// once and that are not finished, given-up ones included, oldest first, at
// most limit (<= 0: all).
func (db *DB) TroubledDeliveries(ctx context.Context, limit int) ([]DeliveryTrouble, error) {
	var out []DeliveryTrouble
	var bad []error
	err := db.view(ctx, func(root *bolt.Bucket) error {
		bodies := root.Bucket(bucketDeliveries)
		return root.Bucket(bucketAttempts).ForEach(func(seq, v []byte) error {
			if limit > 0 && len(out) >= limit {
				return nil
			}
			var a Attempt
			if err := json.Unmarshal(v, &a); err != nil {
				bad = append(bad, &DecodeError{Bucket: "delivery_attempts", Key: fmt.Sprint(binary.BigEndian.Uint64(seq)), Err: err})
				return nil
			}
			d, err := decodeDelivery(bodies.Get(seq))
			if err != nil {
				bad = append(bad, &DecodeError{Bucket: "deliveries", Key: fmt.Sprint(binary.BigEndian.Uint64(seq)), Err: err})
				return nil
			}
			out = append(out, DeliveryTrouble{Forge: d.Forge, ID: d.ID, Event: d.Event, Received: d.Received, Attempt: a})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(bad...)
}
