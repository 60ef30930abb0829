package store

import (
	"context"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole database to w while cccp
// keeps running: one read transaction (bbolt's Tx.WriteTo) sees a single
// committed state, and writers are not blocked. Copying the file with cp
// instead can tear a commit in half. It returns the bytes written.
func (db *DB) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("back up the store: %w", err)
	}
	return n, nil
}
