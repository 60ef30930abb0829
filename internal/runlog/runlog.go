// Package runlog keeps stage logs on disk, one file per stage:
//
//	<dir>/<runID>/<stage>.log            the log, append-only, readable while written
//	<dir>/<runID>/<stage>.done           exists once the writer closed
//	<dir>/<runID>/<stage>.log.tail-<off> kept tail of an over-size log (while it runs)
//	<dir>/<runID>/stages                 stage names in the order they were created
//
// Every line is prefixed with an RFC3339Nano UTC timestamp and a space.
//
// Size cap: a log is capped at maxBytes. The head, about the first half, is
// written to the log as it comes. Past the head, lines go to two rotating
// tail chunk files, so only the latest output is kept on disk and memory
// stays bounded. When the writer closes, a marker line
// "... [cccp: N bytes cut] ..." (when anything was cut) and the kept tail are
// appended to the log: the end of a log, which explains a failure, is always
// kept. The log file only ever grows, so a reader's offset stays valid; an
// over-size log shows its head live and its tail when the stage ends (Tail
// reads the kept tail while the stage still runs).
package runlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned when a log does not exist.
var ErrNotFound = errors.New("log not found")

// maxLine bounds a line held in memory: a longer line (a progress bar
// without newlines, a binary blob) is split.
const maxLine = 64 << 10

// markerRoom is what the size budget keeps free for the cut marker line.
const markerRoom = 128

// pollInterval is how often Follow looks for new data.
const pollInterval = 200 * time.Millisecond

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Logs is a folder of stage logs.
type Logs struct {
	dir      string
	maxBytes int64
	poll     time.Duration
}

// New returns the logs under dir, each capped at maxBytes (<= 0: no cap).
func New(dir string, maxBytes int64) *Logs {
	return &Logs{dir: dir, maxBytes: maxBytes, poll: pollInterval}
}

func (l *Logs) paths(runID, stage string) (dir, log string, err error) {
	for _, n := range []string{runID, stage} {
		if !nameRE.MatchString(n) || strings.Contains(n, "..") {
			return "", "", fmt.Errorf("log %s/%s: bad name %q: %w", runID, stage, n, ErrNotFound)
		}
	}
	dir = filepath.Join(l.dir, runID)
	return dir, filepath.Join(dir, stage+".log"), nil
}

func donePath(dir, stage string) string { return filepath.Join(dir, stage+".done") }

// Writer writes one stage log. It is safe for concurrent Write; partial
// lines are joined until their newline (or Close).
type Writer struct {
	mu        sync.Mutex
	dir       string
	stage     string
	path      string
	f         *os.File
	buf       *bufio.Writer // on f, or on the current tail chunk
	partial   []byte
	partialTS time.Time
	now       func() time.Time

	headLimit int64 // 0: no cap
	chunkSize int64
	written   int64 // bytes in f
	cutting   bool
	chunk     *os.File
	chunkOff  int64 // offset of chunk in the over-head stream
	chunkLen  int64
	closed    bool
	err       error
}

// Create starts the log of a stage, truncating an earlier one.
func (l *Logs) Create(runID, stage string) (*Writer, error) {
	dir, path, err := l.paths(runID, stage)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log %s/%s: %w", runID, stage, err)
	}
	if err := os.Remove(donePath(dir, stage)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("create log %s/%s: %w", runID, stage, err)
	}
	if err := removeChunks(path); err != nil {
		return nil, fmt.Errorf("create log %s/%s: %w", runID, stage, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create log %s/%s: %w", runID, stage, err)
	}
	if err := addStage(dir, stage); err != nil {
		f.Close()
		return nil, fmt.Errorf("create log %s/%s: %w", runID, stage, err)
	}
	w := &Writer{dir: dir, stage: stage, path: path, f: f, buf: bufio.NewWriterSize(f, 64<<10),
		now: func() time.Time { return time.Now().UTC() }}
	if l.maxBytes > 0 {
		w.headLimit = max(l.maxBytes/2, 1)
		w.chunkSize = max((l.maxBytes-w.headLimit-markerRoom)/2, 1)
	}
	return w, nil
}

// addStage records stage in the run's stage list, once.
func addStage(dir, stage string) error {
	list := filepath.Join(dir, "stages")
	b, err := os.ReadFile(list)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if slices.Contains(strings.Fields(string(b)), stage) {
		return nil
	}
	f, err := os.OpenFile(list, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(stage + "\n")
	return errors.Join(err, f.Close())
}

// Write timestamps each complete line of p and appends it to the log.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, fmt.Errorf("write log %s: %w", w.path, os.ErrClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	rest := p
	for len(rest) > 0 {
		if len(w.partial) == 0 {
			w.partialTS = w.now()
		}
		i := indexNL(rest)
		if i < 0 {
			take := min(len(rest), maxLine-len(w.partial))
			w.partial = append(w.partial, rest[:take]...)
			rest = rest[take:]
			if len(w.partial) >= maxLine {
				w.line(w.partial)
				w.partial = w.partial[:0]
			}
			continue
		}
		if len(w.partial) > 0 {
			w.partial = append(w.partial, rest[:i]...)
			w.line(w.partial)
			w.partial = w.partial[:0]
		} else {
			w.line(rest[:i])
		}
		rest = rest[i+1:]
	}
	if w.err == nil {
		if err := w.buf.Flush(); err != nil {
			w.err = fmt.Errorf("write log %s: %w", w.path, err)
		}
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func indexNL(p []byte) int {
	for i, c := range p {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// line writes one timestamped line to the head or the tail chunks.
func (w *Writer) line(text []byte) {
	if w.err != nil {
		return
	}
	var ts [40]byte
	stamp := w.partialTS.AppendFormat(ts[:0], time.RFC3339Nano)
	n := int64(len(stamp) + 1 + len(text) + 1)
	if w.headLimit > 0 && !w.cutting && w.written+n > w.headLimit {
		w.cutting = true
		if err := w.buf.Flush(); err != nil {
			w.err = fmt.Errorf("write log %s: %w", w.path, err)
			return
		}
	}
	if w.cutting {
		if w.chunk == nil || w.chunkLen > 0 && w.chunkLen+n > w.chunkSize {
			if err := w.rotate(); err != nil {
				w.err = fmt.Errorf("write log %s: %w", w.path, err)
				return
			}
		}
		w.chunkLen += n
	} else {
		w.written += n
	}
	w.buf.Write(stamp)
	w.buf.WriteByte(' ')
	w.buf.Write(text)
	w.buf.WriteByte('\n')
}

// rotate starts a new tail chunk and drops every chunk but the one it
// just closed.
func (w *Writer) rotate() error {
	prev := int64(-1)
	if w.chunk != nil {
		if err := w.buf.Flush(); err != nil {
			return err
		}
		if err := w.chunk.Close(); err != nil {
			return err
		}
		prev = w.chunkOff
		w.chunkOff += w.chunkLen
	}
	chunks, err := listChunks(w.path)
	if err != nil {
		return err
	}
	for _, c := range chunks {
		if c.off != prev {
			if err := os.Remove(c.path); err != nil {
				return err
			}
		}
	}
	f, err := os.OpenFile(fmt.Sprintf("%s.tail-%d", w.path, w.chunkOff), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	w.chunk, w.chunkLen = f, 0
	w.buf.Reset(f)
	return nil
}

type chunkFile struct {
	path string
	off  int64
}

// listChunks returns the tail chunks of the log at path, by offset.
func listChunks(path string) ([]chunkFile, error) {
	matches, err := filepath.Glob(path + ".tail-*")
	if err != nil {
		return nil, err
	}
	var out []chunkFile
	for _, m := range matches {
		off, err := strconv.ParseInt(strings.TrimPrefix(m, path+".tail-"), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, chunkFile{m, off})
	}
	slices.SortFunc(out, func(a, b chunkFile) int { return int(a.off - b.off) })
	return out, nil
}

func removeChunks(path string) error {
	chunks, err := listChunks(path)
	if err != nil {
		return err
	}
	for _, c := range chunks {
		if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Close flushes a pending partial line, stitches the kept tail on a capped
// log, syncs it and marks the log done. Closing twice is a no-op.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if len(w.partial) > 0 {
		w.line(w.partial)
		w.partial = nil
	}
	err := w.err
	if err == nil {
		err = w.buf.Flush()
	}
	if w.chunk != nil {
		err = errors.Join(err, w.chunk.Close())
	}
	if err == nil {
		err = stitch(w.f, w.path, w.now)
	}
	err = errors.Join(err, w.f.Sync(), w.f.Close())
	if err == nil {
		err = markDone(w.dir, w.stage)
	}
	if err != nil {
		return fmt.Errorf("close log %s: %w", w.path, err)
	}
	return nil
}

func markDone(dir, stage string) error {
	f, err := os.Create(donePath(dir, stage))
	if err != nil {
		return err
	}
	return f.Close()
}

// stitch appends the cut marker and the kept tail chunks to f (open for
// writing at its end), then removes the chunks.
func stitch(f *os.File, path string, now func() time.Time) error {
	chunks, err := listChunks(path)
	if err != nil || len(chunks) == 0 {
		return err
	}
	if len(chunks) > 2 {
		chunks = chunks[len(chunks)-2:]
	}
	cut := chunks[0].off // everything before the oldest kept chunk
	if cut > 0 {
		if _, err := fmt.Fprintf(f, "%s ... [cccp: %d bytes cut] ...\n", now().Format(time.RFC3339Nano), cut); err != nil {
			return err
		}
	}
	for _, c := range chunks {
		src, err := os.Open(c.path)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return removeChunks(path)
}

// Seal finishes a log whose writer is gone without closing it (cccp was
// killed mid-stage): it stitches any kept tail onto the log and marks it
// done. It must not be called while a Writer of that log is open.
func (l *Logs) Seal(runID, stage string) error {
	dir, path, err := l.paths(runID, stage)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("seal log %s/%s: %w", runID, stage, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("seal log %s/%s: %w", runID, stage, err)
	}
	err = stitch(f, path, func() time.Time { return time.Now().UTC() })
	if err = errors.Join(err, f.Close()); err == nil {
		err = markDone(dir, stage)
	}
	if err != nil {
		return fmt.Errorf("seal log %s/%s: %w", runID, stage, err)
	}
	return nil
}

// Open opens a stage log for reading, or returns ErrNotFound.
func (l *Logs) Open(runID, stage string) (*os.File, error) {
	_, path, err := l.paths(runID, stage)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("log %s/%s: %w", runID, stage, ErrNotFound)
	}
	return f, err
}

// Stages lists the stages that have a log in a run, in the order they were
// created. An unknown run has no stages.
func (l *Logs) Stages(runID string) ([]string, error) {
	if !nameRE.MatchString(runID) || strings.Contains(runID, "..") {
		return nil, fmt.Errorf("run %q: bad name", runID)
	}
	dir := filepath.Join(l.dir, runID)
	b, err := os.ReadFile(filepath.Join(dir, "stages"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stages of run %s: %w", runID, err)
	}
	var out []string
	for _, s := range strings.Fields(string(b)) {
		if _, err := os.Stat(filepath.Join(dir, s+".log")); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// Done reports whether the writer of a stage log has closed.
func (l *Logs) Done(runID, stage string) bool {
	dir, _, err := l.paths(runID, stage)
	if err != nil {
		return false
	}
	_, err = os.Stat(donePath(dir, stage))
	return err == nil
}

// Tail returns the last n lines of a stage log (without newlines), reading
// backwards from the end of the file. While an over-size log is still
// being written, the lines come from its kept tail, with the cut marker
// where the head ends.
func (l *Logs) Tail(runID, stage string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	_, path, err := l.paths(runID, stage)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("log %s/%s: %w", runID, stage, ErrNotFound)
	}
	var files []string
	var cut int64
	if !l.Done(runID, stage) {
		chunks, err := listChunks(path)
		if err != nil {
			return nil, err
		}
		if len(chunks) > 2 {
			chunks = chunks[len(chunks)-2:]
		}
		for i := len(chunks) - 1; i >= 0; i-- {
			files = append(files, chunks[i].path)
		}
		if len(chunks) > 0 {
			cut = chunks[0].off
		}
	}
	var out []string // newest first
	for i, p := range files {
		lines, err := tailFile(p, n-len(out))
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // a chunk may rotate away
			return nil, err
		}
		out = append(out, lines...)
		if i == len(files)-1 && cut > 0 && len(out) < n {
			out = append(out, fmt.Sprintf("... [cccp: %d bytes cut so far] ...", cut))
		}
		if len(out) >= n {
			break
		}
	}
	if len(out) < n {
		lines, err := tailFile(path, n-len(out))
		if err != nil {
			return nil, fmt.Errorf("tail log %s/%s: %w", runID, stage, err)
		}
		out = append(out, lines...)
	}
	slices.Reverse(out)
	return out, nil
}

// tailFile returns up to n last lines of the file, newest first, reading
// blocks backwards from the end. A final newline ends the last line.
func tailFile(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	const block = 32 << 10
	var out []string
	var carry []byte // the end part of a line whose start is further back
	pos := end
	for pos > 0 && len(out) < n {
		size := min(int64(block), pos)
		pos -= size
		buf := make([]byte, size, int(size)+len(carry))
		if _, err := f.ReadAt(buf, pos); err != nil {
			return nil, err
		}
		buf = append(buf, carry...)
		if pos+size == end && buf[len(buf)-1] == '\n' {
			buf = buf[:len(buf)-1]
		}
		for len(out) < n {
			i := lastNL(buf)
			if i < 0 {
				break
			}
			out = append(out, string(buf[i+1:]))
			buf = buf[:i]
		}
		carry = buf
	}
	if len(out) < n && pos == 0 && end > 0 {
		out = append(out, string(carry))
	}
	return out, nil
}

func lastNL(p []byte) int {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '\n' {
			return i
		}
	}
	return -1
}

// Follow returns the log from byte offset from, like tail -f: Read returns
// data as it is written, blocks (polling) while the writer is still open
// and there is nothing new, and returns io.EOF once the writer closed and
// everything was read. When ctx ends, Read returns ctx.Err().
func (l *Logs) Follow(ctx context.Context, runID, stage string, from int64) (io.ReadCloser, error) {
	dir, _, err := l.paths(runID, stage)
	if err != nil {
		return nil, err
	}
	f, err := l.Open(runID, stage)
	if err != nil {
		return nil, err
	}
	if from < 0 {
		from = 0
	}
	return &follower{ctx: ctx, f: f, off: from, done: donePath(dir, stage), poll: l.poll}, nil
}

type follower struct {
	ctx  context.Context
	f    *os.File
	off  int64
	done string
	poll time.Duration
}

func (r *follower) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var timer *time.Timer
	for {
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		// Look at the done marker before reading: the writer marks done only
		// after its last byte is on disk, so a read that follows a seen
		// marker and finds nothing is the real end.
		_, statErr := os.Stat(r.done)
		finished := statErr == nil
		n, err := r.f.ReadAt(p, r.off)
		r.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
		if finished {
			return 0, io.EOF
		}
		if timer == nil {
			timer = time.NewTimer(r.poll)
			defer timer.Stop()
		} else {
			timer.Reset(r.poll)
		}
		select {
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		case <-timer.C:
		}
	}
}

func (r *follower) Close() error { return r.f.Close() }

// SplitLine splits a log line into its timestamp and text. ok is false
// when the line does not start with an RFC3339Nano timestamp and a space
// (then text is the whole line).
// It is cccp's one timestamp splitter: the web UI's log view and the bot's
// comment use it.
func SplitLine(line string) (ts time.Time, text string, ok bool) {
	stamp, rest, found := strings.Cut(line, " ")
	// A stamp is at least "2006-01-02T15:04:05Z": most other lines are
	// passed over without parsing.
	if !found || len(stamp) < len("2006-01-02T15:04:05Z") || stamp[0] < '0' || stamp[0] > '9' {
		return time.Time{}, line, false
	}
	t, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil {
		return time.Time{}, line, false
	}
	return t, rest, true
}

// StageLogs gives Logs to consumers that create logs as io.WriteClosers
// (the pipeline); Seal and the rest are Logs' own.
type StageLogs struct{ *Logs }

// Create starts the log of a stage, truncating an earlier one.
func (s StageLogs) Create(runID, stage string) (io.WriteCloser, error) {
	return s.Logs.Create(runID, stage)
}
