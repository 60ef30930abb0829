// Package runlog keeps stage logs on disk, one file per stage:
// <dir>/<runID>/<stage>.log, with a sibling <stage>.done once the writer
// closed. Every line is prefixed with an RFC3339Nano UTC timestamp and a
// space. A log is capped at maxBytes: past the cap the head (about the first
// half) is kept, then a marker line "... [cccp: N bytes cut] ...", then the
// latest tail, so the end of the log that explains a failure is always kept.
package runlog

import (
	"context"
	"errors"
	"io"
	"os"
)

// ErrNotFound is returned when a log does not exist.
var ErrNotFound = errors.New("log not found")

// Logs is a folder of stage logs.
type Logs struct{}

// New returns the logs under dir, each capped at maxBytes (<= 0: no cap).
func New(dir string, maxBytes int64) *Logs { panic("TODO") }

// Writer writes one stage log. It is safe for concurrent Write; partial
// lines are joined until their newline (or Close).
type Writer struct{}

// Create starts the log of a stage, truncating an earlier one.
func (l *Logs) Create(runID, stage string) (*Writer, error) { panic("TODO") }

// Write timestamps each complete line of p and appends it to the log.
func (w *Writer) Write(p []byte) (int, error) { panic("TODO") }

// Close flushes a pending partial line, stitches the kept tail on a capped
// log, and marks the log done.
func (w *Writer) Close() error { panic("TODO") }

// Open opens a stage log for reading, or returns ErrNotFound.
func (l *Logs) Open(runID, stage string) (*os.File, error) { panic("TODO") }

// Tail returns the last n lines of a stage log, reading backwards from the
// end of the file.
func (l *Logs) Tail(runID, stage string, n int) ([]string, error) { panic("TODO") }

// Follow returns the log from byte offset from, like tail -f: reads block
// until more data is written and return io.EOF once the writer closed and
// everything was read, or when ctx ends.
func (l *Logs) Follow(ctx context.Context, runID, stage string, from int64) (io.ReadCloser, error) {
	panic("TODO")
}

// Stages lists the stages that have a log in a run, sorted by name.
func (l *Logs) Stages(runID string) ([]string, error) { panic("TODO") }

// Done reports whether the writer of a stage log has closed.
func (l *Logs) Done(runID, stage string) bool { panic("TODO") }
