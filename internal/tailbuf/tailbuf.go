// Package tailbuf bounds what a repository's output can cost cccp: a
// Writer passes at most a fixed number of bytes on to the log, keeps the
// last lines in a ring, and cuts every line (a partial one too) at a cap,
// so a script printing a gigabyte, with or without newlines, holds a few
// kilobytes of cccp's memory.
package tailbuf

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Defaults for the zero fields of a Writer.
const (
	DefaultLimit   = 8 << 20 // bytes passed on
	DefaultLines   = 40      // lines kept
	DefaultLineCap = 4 << 10 // bytes kept of one line
)

// Writer is an io.Writer that is safe for concurrent use. Its zero value
// discards the output and keeps DefaultLines lines.
type Writer struct {
	// Out receives the output, up to Limit bytes; may be nil.
	Out io.Writer
	// Limit is how many bytes reach Out; then one note says the rest was
	// left out. Default DefaultLimit; negative passes nothing.
	Limit int64
	// Lines is how many last lines Tail keeps; LineCap how many bytes of
	// each.
	Lines, LineCap int

	mu        sync.Mutex
	written   int64
	total     int64
	truncated bool
	ring      []string
	next      int
	partial   []byte
	cut       bool // the current line went past LineCap
}

// Write never fails: output past the limit is counted and dropped, and an
// error from Out stops passing output on.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	w.total += int64(n)
	w.pass(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := w.lineCap() - len(w.partial); len(chunk) > room {
			w.partial = append(w.partial, chunk[:room]...)
			w.cut = true
		} else {
			w.partial = append(w.partial, chunk...)
		}
		if i < 0 {
			break
		}
		w.endLine()
		p = p[i+1:]
	}
	return n, nil
}

func (w *Writer) pass(p []byte) {
	if w.Out == nil || w.truncated {
		return
	}
	limit := w.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if room := limit - w.written; int64(len(p)) > room {
		if room > 0 {
			w.Out.Write(p[:room])
			w.written += room
		}
		w.truncated = true
		fmt.Fprintf(w.Out, "\ncccp: output cut after %d bytes; the rest is not kept\n", max(limit, 0))
		return
	}
	if _, err := w.Out.Write(p); err != nil {
		w.truncated = true
		return
	}
	w.written += int64(len(p))
}

func (w *Writer) lineCap() int {
	if w.LineCap > 0 {
		return w.LineCap
	}
	return DefaultLineCap
}

func (w *Writer) endLine() {
	l := strings.TrimRight(string(w.partial), "\r")
	if w.cut {
		l += " [line cut]"
	}
	n := w.Lines
	if n <= 0 {
		n = DefaultLines
	}
	if len(w.ring) < n {
		w.ring = append(w.ring, l)
	} else {
		w.ring[w.next] = l
		w.next = (w.next + 1) % n
	}
	w.partial = w.partial[:0]
	w.cut = false
}

// Tail returns the last lines written, oldest first, with an unfinished
// last line.
func (w *Writer) Tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append(append([]string(nil), w.ring[w.next:]...), w.ring[:w.next]...)
	if len(w.partial) > 0 {
		l := string(w.partial)
		if w.cut {
			l += " [line cut]"
		}
		out = append(out, l)
	}
	return out
}

// Total is how many bytes were written; Truncated tells whether some of
// them did not reach Out.
func (w *Writer) Total() (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total, w.truncated
}
