package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	bolt "go.etcd.io/bbolt"
)

// Durable webhook ingest.
//
// AcceptDelivery compresses the delivery with S2 in the caller's goroutine
// (so compression runs on every core; webhook JSON shrinks about 7x, S2
// measured faster here than zstd's fastest level and than no compression), then hands it to one writer goroutine.
// FinishDelivery hands its request to the same writer. The writer takes
// everything that is waiting, accepts and finishes in arrival order, into
// ONE update transaction and commits it (one fsync for the batch), then
// answers every caller. No fixed delay: the next batch starts as soon as
// the previous commit is done, so under load the batch grows and the fsync
// cost is shared. A finish thus never takes bbolt's writer lock between two
// ingest commits.
//
// Record in deliveries/<seq>: s2 block( uvarint(len(header)) header body ),
// header being the JSON of deliveryHeader.

// maxBatchBytes caps one ingest transaction, so a burst never builds one
// huge commit.
const maxBatchBytes = 16 << 20

type deliveryHeader struct {
	Forge    string            `json:"f"`
	ID       string            `json:"i"`
	Event    string            `json:"e,omitempty"`
	Headers  map[string]string `json:"h,omitempty"`
	Received time.Time         `json:"r"`
}

// writeReq is one AcceptDelivery or FinishDelivery waiting for the writer.
type writeReq struct {
	finish bool
	idKey  []byte
	record []byte // accept only
	done   chan writeRes
}

type writeRes struct {
	duplicate bool
	err       error
}

func deliveryIDKey(forge, id string) []byte {
	k := make([]byte, 0, len(forge)+len(id)+1)
	k = append(k, forge...)
	k = append(k, sep)
	return append(k, id...)
}

func encodeDelivery(d Delivery) ([]byte, error) {
	h, err := json.Marshal(deliveryHeader{d.Forge, d.ID, d.Event, d.Headers, d.Received})
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 0, binary.MaxVarintLen64+len(h)+len(d.Body))
	raw = binary.AppendUvarint(raw, uint64(len(h)))
	raw = append(raw, h...)
	raw = append(raw, d.Body...)
	return s2.Encode(nil, raw), nil
}

func decodeDelivery(v []byte) (Delivery, error) {
	raw, err := s2.Decode(nil, v)
	if err != nil {
		return Delivery{}, err
	}
	n, w := binary.Uvarint(raw)
	if w <= 0 || uint64(len(raw)-w) < n {
		return Delivery{}, errors.New("bad header length")
	}
	var h deliveryHeader
	if err := json.Unmarshal(raw[w:w+int(n)], &h); err != nil {
		return Delivery{}, err
	}
	return Delivery{Forge: h.Forge, ID: h.ID, Event: h.Event, Headers: h.Headers,
		Body: raw[w+int(n):], Received: h.Received}, nil
}

// AcceptDelivery stores d durably and returns only after the data is
// fsynced. Deliveries are deduplicated by (Forge, ID): a known ID returns
// duplicate=true and stores nothing. Concurrent calls are group-committed.
// Received defaults to now. Headers must not hold signatures or tokens.
func (db *DB) AcceptDelivery(ctx context.Context, d Delivery) (duplicate bool, err error) {
	if d.Forge == "" || d.ID == "" {
		return false, errors.New("accept delivery: empty forge or id")
	}
	if err := errors.Join(checkName("forge", d.Forge), checkName("delivery id", d.ID)); err != nil {
		return false, fmt.Errorf("accept delivery: %w", err)
	}
	if d.Received.IsZero() {
		d.Received = time.Now().UTC()
	}
	rec, err := encodeDelivery(d)
	if err != nil {
		return false, fmt.Errorf("accept delivery %s/%s: %w", d.Forge, d.ID, err)
	}
	res, err := db.write(ctx, &writeReq{idKey: deliveryIDKey(d.Forge, d.ID), record: rec})
	if err != nil {
		return false, err
	}
	if res.err != nil {
		return false, fmt.Errorf("accept delivery %s/%s: %w", d.Forge, d.ID, res.err)
	}
	return res.duplicate, nil
}

// write hands req to the writer and waits for its commit.
func (db *DB) write(ctx context.Context, req *writeReq) (writeRes, error) {
	if err := ctx.Err(); err != nil {
		return writeRes{}, err
	}
	req.done = make(chan writeRes, 1)
	db.closedMu.RLock()
	if db.closed {
		db.closedMu.RUnlock()
		return writeRes{}, ErrClosed
	}
	select {
	case db.ingest <- req:
	case <-ctx.Done():
		db.closedMu.RUnlock()
		return writeRes{}, ctx.Err()
	}
	db.closedMu.RUnlock()

	select {
	case res := <-req.done:
		return res, nil
	case <-ctx.Done():
		// The write may still land: a redelivery is then a duplicate, a
		// finish is then done.
		return writeRes{}, ctx.Err()
	}
}

// deliveryWriter is the group-commit loop.
func (db *DB) deliveryWriter() {
	defer db.writerWG.Done()
	var batch []*writeReq
	for {
		batch = batch[:0]
		select {
		case req := <-db.ingest:
			batch = append(batch, req)
		case <-db.stop:
			// Close holds closedMu, so nothing new arrives; drain what is queued.
			for {
				select {
				case req := <-db.ingest:
					db.commitDeliveries([]*writeReq{req})
				default:
					return
				}
			}
		}
		size := len(batch[0].idKey) + len(batch[0].record)
	drain:
		for size < maxBatchBytes {
			select {
			case req := <-db.ingest:
				batch = append(batch, req)
				size += len(req.idKey) + len(req.record)
			default:
				break drain
			}
		}
		db.commitDeliveries(batch)
	}
}

// commitDeliveries writes batch in one transaction, in order, so a finish
// sees an accept of the same batch. A request's own failure (unknown or
// unreadable ID) is its answer alone; a failing transaction fails them all.
func (db *DB) commitDeliveries(batch []*writeReq) {
	results := make([]writeRes, len(batch))
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketV1)
		ids := root.Bucket(bucketDeliveryID)
		bodies := root.Bucket(bucketDeliveries)
		bodies.FillPercent = 1.0 // append-only keys: pack pages full
		now := uint64(time.Now().UnixNano())
		for i, req := range batch {
			var err error
			if req.finish {
				results[i].err, err = finishDelivery(ids, bodies, req.idKey, now)
			} else {
				results[i].duplicate, err = acceptDelivery(ids, bodies, req)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	for i, req := range batch {
		if err != nil {
			results[i] = writeRes{err: err}
		}
		req.done <- results[i]
	}
	if err != nil {
		db.log.Error("store deliveries", "count", len(batch), "err", err)
	}
}

// acceptDelivery stores req unless its ID is known. err fails the batch.
func acceptDelivery(ids, bodies *bolt.Bucket, req *writeReq) (duplicate bool, err error) {
	if ids.Get(req.idKey) != nil {
		return true, nil
	}
	seq, err := bodies.NextSequence()
	if err != nil {
		return false, err
	}
	if err := bodies.Put(seqKey(seq), req.record); err != nil {
		return false, err
	}
	// seq + finished time (0 = pending)
	return false, ids.Put(req.idKey, binary.BigEndian.AppendUint64(seqKey(seq), 0))
}

// finishDelivery drops the body of idKey and stamps it finished at now.
// res is the request's own answer; err fails the batch.
func finishDelivery(ids, bodies *bolt.Bucket, idKey []byte, now uint64) (res, err error) {
	v := ids.Get(idKey)
	if v == nil {
		return ErrNotFound, nil
	}
	if len(v) != 16 {
		return &DecodeError{Bucket: "delivery_ids", Key: strings.Replace(string(idKey), "\x00", "/", 1),
			Err: fmt.Errorf("%d bytes", len(v))}, nil
	}
	if binary.BigEndian.Uint64(v[8:]) != 0 {
		return nil, nil // finished before
	}
	if err := bodies.Delete(v[:8]); err != nil {
		return nil, err
	}
	return nil, ids.Put(idKey, binary.BigEndian.AppendUint64(bytes.Clone(v[:8]), now))
}

// PendingDeliveries returns up to limit accepted, unfinished deliveries
// accepted after the one with Seq after, oldest first; limit <= 0 means no
// limit. Page through all of them with after = 0, then the last Seq
// returned, until a page holds fewer than limit. Records that fail to
// decode are skipped (they do not count toward limit) and named in the
// returned error; they stay stored.
func (db *DB) PendingDeliveries(ctx context.Context, after uint64, limit int) ([]Delivery, error) {
	var out []Delivery
	var bad []error
	err := db.view(ctx, func(root *bolt.Bucket) error {
		if after == math.MaxUint64 {
			return nil
		}
		c := root.Bucket(bucketDeliveries).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			d, err := decodeDelivery(v)
			if err != nil {
				bad = append(bad, &DecodeError{Bucket: "deliveries", Key: fmt.Sprint(seq), Err: err})
				continue
			}
			d.Seq = seq
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(bad...)
}

// FinishDelivery marks a delivery processed and drops its body, and returns
// only after that is fsynced; it joins the next group commit of
// AcceptDelivery. Its ID is kept for deduplication until PruneDeliveries
// removes it. Finishing an unknown delivery returns ErrNotFound; finishing
// twice is not an error.
func (db *DB) FinishDelivery(ctx context.Context, forge, id string) error {
	res, err := db.write(ctx, &writeReq{finish: true, idKey: deliveryIDKey(forge, id)})
	if err == nil {
		err = res.err
	}
	if err != nil {
		return fmt.Errorf("finish delivery %s/%s: %w", forge, id, err)
	}
	return nil
}

// PruneDeliveries forgets finished deliveries finished before olderThan and
// returns how many were removed. Pending deliveries are never pruned.
func (db *DB) PruneDeliveries(ctx context.Context, olderThan time.Time) (int, error) {
	n := 0
	err := db.update(ctx, func(root *bolt.Bucket) error {
		ids := root.Bucket(bucketDeliveryID)
		var old [][]byte
		err := ids.ForEach(func(k, v []byte) error {
			if len(v) != 16 {
				return nil // leave what we cannot read
			}
			fin := binary.BigEndian.Uint64(v[8:])
			if fin != 0 && int64(fin) < olderThan.UnixNano() {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := ids.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	return n, err
}
