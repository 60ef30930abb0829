package store

import (
	"context"
	"time"
)

// DB is an open cccp state database. It is safe for concurrent use.
type DB struct{}

// Open opens (creating if needed) the database at path and migrates it to
// the current schema.
func Open(path string, opts Options) (*DB, error) { panic("TODO") }

// Close stops the delivery writer and closes the file.
func (db *DB) Close() error { panic("TODO") }

// CreateRun stores a new run, assigning r.ID (the next decimal sequence
// number) and r.Created (when zero). r.State defaults to Queued.
func (db *DB) CreateRun(ctx context.Context, r *Run) error { panic("TODO") }

// UpdateRun reads run id, calls fn on it and stores the result, all in one
// transaction. If fn returns an error nothing is written and the error is
// returned. fn must not change ID or Project.
func (db *DB) UpdateRun(ctx context.Context, id string, fn func(*Run) error) (*Run, error) {
	panic("TODO")
}

// Run returns run id, or ErrNotFound.
func (db *DB) Run(ctx context.Context, id string) (*Run, error) { panic("TODO") }

// Runs returns the runs f selects, newest first.
func (db *DB) Runs(ctx context.Context, f RunFilter) ([]*Run, error) { panic("TODO") }

// LatestRuns returns the newest run of each project with the given kind
// ("" = any kind), keyed by project.
func (db *DB) LatestRuns(ctx context.Context, kind string) (map[string]*Run, error) {
	panic("TODO")
}

// UnfinishedRuns returns the queued and running runs, oldest first, for
// resuming after a restart.
func (db *DB) UnfinishedRuns(ctx context.Context) ([]*Run, error) { panic("TODO") }

// AcceptDelivery stores d durably and returns only after the data is
// fsynced. Deliveries are deduplicated by (Forge, ID): a known ID returns
// duplicate=true and stores nothing. Concurrent calls are group-committed.
func (db *DB) AcceptDelivery(ctx context.Context, d Delivery) (duplicate bool, err error) {
	panic("TODO")
}

// PendingDeliveries returns accepted, unfinished deliveries, oldest first.
func (db *DB) PendingDeliveries(ctx context.Context) ([]Delivery, error) { panic("TODO") }

// FinishDelivery marks a delivery processed and drops its body. Its ID is
// kept for deduplication until PruneDeliveries removes it.
func (db *DB) FinishDelivery(ctx context.Context, forge, id string) error { panic("TODO") }

// PruneDeliveries forgets finished deliveries finished before olderThan and
// returns how many were removed. Pending deliveries are never pruned.
func (db *DB) PruneDeliveries(ctx context.Context, olderThan time.Time) (int, error) {
	panic("TODO")
}

// PutReport stores r, replacing any report with the same key (a newer
// report of a target supersedes the older one). Updated is set to now
// (strictly increasing per key); zero NextAttempt means due at once.
func (db *DB) PutReport(ctx context.Context, r Report) error { panic("TODO") }

// DueReports returns up to limit reports whose NextAttempt is not after
// now, earliest first. limit <= 0 means no limit.
func (db *DB) DueReports(ctx context.Context, now time.Time, limit int) ([]Report, error) {
	panic("TODO")
}

// RetryReport records a failed attempt: Attempts+1, NextAttempt=next and
// LastError=errMsg (which must not hold secrets). ErrNotFound if gone.
func (db *DB) RetryReport(ctx context.Context, key string, next time.Time, errMsg string) error {
	panic("TODO")
}

// DeleteReport removes the report key if its Updated still equals updated,
// that is, if it was not replaced by a newer report since it was read.
// It returns nil when the report is already gone or was replaced.
func (db *DB) DeleteReport(ctx context.Context, key string, updated time.Time) error {
	panic("TODO")
}

// PutMeta stores val under (ns, key).
func (db *DB) PutMeta(ctx context.Context, ns, key string, val []byte) error { panic("TODO") }

// GetMeta returns the value under (ns, key), or ErrNotFound.
func (db *DB) GetMeta(ctx context.Context, ns, key string) ([]byte, error) { panic("TODO") }

// DeleteMeta removes (ns, key); removing a missing key is not an error.
func (db *DB) DeleteMeta(ctx context.Context, ns, key string) error { panic("TODO") }
