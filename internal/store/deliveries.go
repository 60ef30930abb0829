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

// writeReq is one AcceptDelivery or FinishDeliveries waiting for the writer.
type writeReq struct {
	finish [][]byte // finish: the ID keys to finish
	idKey  []byte   // accept
	record []byte   // accept
	done   chan writeRes
}

type writeRes struct {
	duplicate bool
	err       error   // accept: its own failure, or the transaction's
	errs      []error // finish: each key's own failure (nil entries for success)
}

func deliveryIDKey(forge, id string) []byte {
	k := make([]byte, 0, len(forge)+len(id)+1)
	k = append(k, forge...)
	k = append(k, sep)
	return append(k, id...)
}

func encodeDelivery(d Delivery) ([]byte, error) {
	var bufs recordBufs
	return bufs.encode(d)
}

// recordBufs are the buffers a delivery record is encoded in. AcceptDelivery
// reuses them once the record is committed (bbolt has copied it into its
// pages by then), so the ingest path allocates no body-sized buffers.
type recordBufs struct{ raw, rec []byte }

// maxPooledRecord is the largest record whose buffers are kept for reuse.
const maxPooledRecord = 1 << 20

// encode returns d's record, in b.rec.
func (b *recordBufs) encode(d Delivery) ([]byte, error) {
	h, err := json.Marshal(deliveryHeader{d.Forge, d.ID, d.Event, d.Headers, d.Received})
	if err != nil {
		return nil, err
	}
	raw := b.raw[:0]
	raw = binary.AppendUvarint(raw, uint64(len(h)))
	raw = append(raw, h...)
	raw = append(raw, d.Body...)
	b.raw = raw
	if n := s2.MaxEncodedLen(len(raw)); cap(b.rec) < n {
		b.rec = make([]byte, n)
	}
	b.rec = s2.Encode(b.rec[:cap(b.rec)], raw)
	return b.rec, nil
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
	bufs, _ := db.records.Get().(*recordBufs)
	if bufs == nil {
		bufs = new(recordBufs)
	}
	rec, err := bufs.encode(d)
	if err != nil {
		return false, fmt.Errorf("accept delivery %s/%s: %w", d.Forge, d.ID, err)
	}
	res, err := db.write(ctx, &writeReq{idKey: deliveryIDKey(d.Forge, d.ID), record: rec})
	if err != nil {
		// The writer may still hold the record: its buffers are not reused.
		return false, err
	}
	if cap(bufs.raw) <= maxPooledRecord && cap(bufs.rec) <= maxPooledRecord {
		db.records.Put(bufs)
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
		size := len(batch[0].idKey) + len(batch[0].record) + 16*len(batch[0].finish)
	drain:
		for size < maxBatchBytes {
			select {
			case req := <-db.ingest:
				batch = append(batch, req)
				size += len(req.idKey) + len(req.record) + 16*len(req.finish)
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
		b := deliveryBuckets(root)
		now := uint64(time.Now().UnixNano())
		for i, req := range batch {
			var err error
			if req.finish != nil {
				results[i].errs = make([]error, len(req.finish))
				for j, k := range req.finish {
					if results[i].errs[j], err = finishDelivery(b, k, now); err != nil {
						return err
					}
				}
				continue
			}
			if results[i].duplicate, err = acceptDelivery(b, req); err != nil {
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

// dBuckets are the buckets of the delivery records.
type dBuckets struct{ ids, bodies, attempts *bolt.Bucket }

func deliveryBuckets(root *bolt.Bucket) dBuckets {
	b := dBuckets{root.Bucket(bucketDeliveryID), root.Bucket(bucketDeliveries), root.Bucket(bucketAttempts)}
	b.bodies.FillPercent = 1.0 // append-only keys: pack pages full
	return b
}

// acceptDelivery stores req unless its ID is known. A known ID whose
// delivery was given up (Failed) is stored again as a new delivery: that is
// the forge's manual redelivery after cccp gave up. err fails the batch.
func acceptDelivery(b dBuckets, req *writeReq) (duplicate bool, err error) {
	if v := b.ids.Get(req.idKey); v != nil {
		if len(v) < 16 || !attemptOf(b.attempts, v[:8]).Failed {
			return true, nil
		}
		if err := dropDelivery(b, v[:8]); err != nil {
			return false, err
		}
	}
	seq, err := b.bodies.NextSequence()
	if err != nil {
		return false, err
	}
	if err := b.bodies.Put(seqKey(seq), req.record); err != nil {
		return false, err
	}
	// seq + finished time (0 = pending)
	return false, b.ids.Put(req.idKey, binary.BigEndian.AppendUint64(seqKey(seq), 0))
}

// dropDelivery removes the body and attempt record of seq.
func dropDelivery(b dBuckets, seq []byte) error {
	if err := b.bodies.Delete(seq); err != nil {
		return err
	}
	return b.attempts.Delete(seq)
}

// idValue reads a delivery_ids value: seq key, finished unix-nano.
func idValue(idKey, v []byte) (seq []byte, finished uint64, err error) {
	if len(v) != 16 {
		return nil, 0, &DecodeError{Bucket: "delivery_ids", Key: strings.Replace(string(idKey), "\x00", "/", 1),
			Err: fmt.Errorf("%d bytes", len(v))}
	}
	return v[:8], binary.BigEndian.Uint64(v[8:]), nil
}

// finishDelivery drops the body of idKey and stamps it finished at now.
// res is the request's own answer; err fails the batch.
func finishDelivery(b dBuckets, idKey []byte, now uint64) (res, err error) {
	v := b.ids.Get(idKey)
	if v == nil {
		return ErrNotFound, nil
	}
	seq, fin, err := idValue(idKey, v)
	if err != nil {
		return err, nil
	}
	if fin != 0 {
		return nil, nil // finished (or given up) before
	}
	if err := dropDelivery(b, seq); err != nil {
		return nil, err
	}
	return nil, b.ids.Put(idKey, binary.BigEndian.AppendUint64(bytes.Clone(seq), now))
}

// PendingDeliveries returns up to limit accepted, unfinished deliveries
// accepted after the one with Seq after, oldest first, whether due or
// waiting for their next attempt; limit <= 0 means no limit. Page through
// all of them with after = 0, then the last Seq returned, until a page
// holds fewer than limit. Records that fail to decode are skipped (they do
// not count toward limit) and named in the returned error; they stay
// stored.
func (db *DB) PendingDeliveries(ctx context.Context, after uint64, limit int) ([]Delivery, error) {
	ds, _, err := db.pending(ctx, time.Time{}, after, limit)
	return ds, err
}

// DueDeliveries is PendingDeliveries without the deliveries whose next
// attempt is after now (their bodies are not even read). next is the
// earliest next attempt of those it left out in the pages it read (zero
// when none).
func (db *DB) DueDeliveries(ctx context.Context, now time.Time, after uint64, limit int) (ds []Delivery, next time.Time, err error) {
	if now.IsZero() {
		now = time.Now()
	}
	return db.pending(ctx, now, after, limit)
}

func (db *DB) pending(ctx context.Context, now time.Time, after uint64, limit int) ([]Delivery, time.Time, error) {
	var out []Delivery
	var bad []error
	var next time.Time
	err := db.view(ctx, func(root *bolt.Bucket) error {
		if after == math.MaxUint64 {
			return nil
		}
		attempts := root.Bucket(bucketAttempts)
		c := root.Bucket(bucketDeliveries).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			a := attemptOf(attempts, k)
			if a.Failed {
				continue // kept for a replay, not pending
			}
			if !now.IsZero() && a.NextAttempt.After(now) {
				if next.IsZero() || a.NextAttempt.Before(next) {
					next = a.NextAttempt
				}
				continue
			}
			d, err := decodeDelivery(v)
			if err != nil {
				bad = append(bad, &DecodeError{Bucket: "deliveries", Key: fmt.Sprint(seq), Err: err})
				continue
			}
			d.Seq = seq
			d.Attempts, d.NextAttempt, d.LastError = a.Attempts, a.NextAttempt, a.LastError
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	return out, next, errors.Join(bad...)
}

// FinishDelivery marks a delivery processed and drops its body, and returns
// only after that is fsynced; it joins the next group commit of
// AcceptDelivery. Its ID is kept for deduplication until PruneDeliveries
// removes it. Finishing an unknown delivery returns ErrNotFound; finishing
// twice is not an error.
func (db *DB) FinishDelivery(ctx context.Context, forge, id string) error {
	return db.FinishDeliveries(ctx, []DeliveryRef{{forge, id}})[0]
}

// DeliveryRef names a delivery.
type DeliveryRef struct{ Forge, ID string }

// FinishDeliveries finishes many deliveries in one request to the writer
// (one commit, shared with whatever else is waiting) and returns each
// one's error, in order, as FinishDelivery would.
func (db *DB) FinishDeliveries(ctx context.Context, refs []DeliveryRef) []error {
	errs := make([]error, len(refs))
	if len(refs) == 0 {
		return errs
	}
	keys := make([][]byte, len(refs))
	for i, r := range refs {
		keys[i] = deliveryIDKey(r.Forge, r.ID)
	}
	res, err := db.write(ctx, &writeReq{finish: keys})
	for i, r := range refs {
		e := err
		if e == nil && res.err != nil {
			e = res.err
		}
		if e == nil && i < len(res.errs) {
			e = res.errs[i]
		}
		if e != nil {
			errs[i] = fmt.Errorf("finish delivery %s/%s: %w", r.Forge, r.ID, e)
		}
	}
	return errs
}

// PruneDeliveries forgets finished deliveries finished before olderThan
// (and given-up ones given up before it, with their bodies), and the links
// to the runs their requests made (delivery_runs.go) in the same
// transaction, and returns how many deliveries were removed. Pending
// deliveries are never pruned.
func (db *DB) PruneDeliveries(ctx context.Context, olderThan time.Time) (int, error) {
	n := 0
	err := db.update(ctx, func(root *bolt.Bucket) error {
		b := deliveryBuckets(root)
		var old [][]byte
		err := b.ids.ForEach(func(k, v []byte) error {
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
			if err := dropDelivery(b, b.ids.Get(k)[:8]); err != nil {
				return err
			}
			if err := b.ids.Delete(k); err != nil {
				return err
			}
			if err := unlinkDelivery(root, k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	return n, err
}
