package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Bucket and key names; see the package comment for the tree.
var (
	bucketMeta       = []byte("meta")
	keySchema        = []byte("schema")
	bucketV1         = []byte("v1")
	bucketRuns       = []byte("runs")
	bucketByProject  = []byte("runs_by_project")
	bucketUnfinished = []byte("runs_unfinished")
	bucketLatest     = []byte("latest")
	bucketDeliveries = []byte("deliveries")
	bucketDeliveryID = []byte("delivery_ids")
	bucketReports    = []byte("reports")
	bucketKV         = []byte("kv")
	bucketAttempts   = []byte("delivery_attempts")
	bucketChanges    = []byte("run_changes")
)

// migration moves the database from schema version-1 to version.
type migration struct {
	version int
	name    string
	apply   func(tx *bolt.Tx) error
}

// migrations is the ordered list of schema steps. Append only: never edit or
// reorder a released step; a new layout is a new step (and, for an
// incompatible one, a new root bucket such as v2/).
var migrations = []migration{
	{1, "create v1 buckets", func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketV1)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketRuns, bucketByProject, bucketUnfinished, bucketLatest,
			bucketDeliveries, bucketDeliveryID, bucketReports, bucketKV} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	}},
	{2, "delivery attempts (next-attempt times, give-up reasons) and run changes to report", func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketAttempts, bucketChanges} {
			if _, err := tx.Bucket(bucketV1).CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	}},
	{3, "mail indexes by due time (mail_due) and by give-up time (mail_failed)", func(tx *bolt.Tx) error {
		return indexMails(tx.Bucket(bucketV1))
	}},
}

// schemaVersion reads meta/schema; 0 for a new database.
func schemaVersion(tx *bolt.Tx) (int, error) {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0, nil
	}
	v := b.Get(keySchema)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("meta/schema: bad value of %d bytes", len(v))
	}
	return int(binary.BigEndian.Uint64(v)), nil
}

// migrate applies every step of list above the stored version in one
// transaction, so a failed step leaves the database as it was.
func migrate(db *bolt.DB, list []migration) (from, to int, err error) {
	err = db.Update(func(tx *bolt.Tx) error {
		cur, err := schemaVersion(tx)
		if err != nil {
			return err
		}
		from, to = cur, cur
		latest := 0
		if len(list) > 0 {
			latest = list[len(list)-1].version
		}
		if cur > latest {
			return fmt.Errorf("database schema %d is newer than this cccp knows (%d)", cur, latest)
		}
		for _, m := range list {
			if m.version <= cur {
				continue
			}
			if m.version != to+1 {
				return fmt.Errorf("migration list: version %d after %d", m.version, to)
			}
			if err := m.apply(tx); err != nil {
				return fmt.Errorf("migrate to schema %d (%s): %w", m.version, m.name, err)
			}
			to = m.version
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keySchema, binary.BigEndian.AppendUint64(nil, uint64(to)))
	})
	if err != nil {
		return from, from, err
	}
	return from, to, nil
}
