package web

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
)

// What a page shows of one stage log: the first headLines and the last
// tailLines lines (with a note of how many were left out between), each cut
// at maxLineBytes. The whole log is always in log.txt.
const (
	headLines    = 200
	tailLines    = 3000
	maxLineBytes = 4096
)

// logLine is one line shown on a page.
type logLine struct {
	N    int    // 1-based line number in the stage log
	Time string // the line's timestamp, HH:MM:SS
	Text string // masked, without ANSI codes
	Hl   bool   // explains the failure
}

// stageLog is what a page shows of one stage's log.
type stageLog struct {
	Head, Tail []logLine // Tail follows Head after Omitted lines
	Omitted    int
	Lines      int   // lines in the log
	Offset     int64 // bytes of complete lines read: where a live stream continues
	Done       bool
	First      int // number of the first highlighted line, 0 when none
	Highlights []logLine
}

// rawLine is a line as read, before cleaning.
type rawLine struct {
	n    int
	text []byte
}

// readStageLog reads a stage log from r for a page, in one pass with
// bounded memory: it keeps the first headLines lines and a ring of the last
// tailLines, and cleans only those.
func (s *Server) readStageLog(r io.Reader, failed bool) (*stageLog, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var head []rawLine
	ring := make([]rawLine, 0, 64)
	next := 0 // ring write position once full
	n := 0
	var offset int64
	for {
		line, size, complete, err := readLine(br, maxLineBytes)
		if size > 0 && complete {
			n++
			offset += int64(size)
			rl := rawLine{n: n}
			if len(head) < headLines {
				rl.text = append([]byte(nil), line...)
				head = append(head, rl)
			} else if len(ring) < tailLines {
				rl.text = append([]byte(nil), line...)
				ring = append(ring, rl)
			} else {
				ring[next].n = n
				ring[next].text = append(ring[next].text[:0], line...)
				next = (next + 1) % tailLines
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	tail := append(ring[next:len(ring):len(ring)], ring[:next]...)
	sl := &stageLog{Lines: n, Offset: offset}
	all := make([]logLine, 0, len(head)+len(tail))
	for _, rl := range head {
		all = append(all, s.cleanLine(rl.n, rl.text))
	}
	for _, rl := range tail {
		all = append(all, s.cleanLine(rl.n, rl.text))
	}
	texts := make([]string, len(all))
	for i, l := range all {
		texts[i] = l.Text
	}
	for _, i := range Explain(texts, failed) {
		all[i].Hl = true
		if sl.First == 0 {
			sl.First = all[i].N
		}
		sl.Highlights = append(sl.Highlights, all[i])
	}
	sl.Head, sl.Tail = all[:len(head)], all[len(head):]
	if len(tail) > 0 {
		sl.Omitted = tail[0].n - len(head) - 1
	}
	return sl, nil
}

// readLine reads one line, keeping at most max bytes of it (the rest is
// read and dropped). size counts every byte read, newline included;
// complete is false for a last line without a newline.
func readLine(br *bufio.Reader, max int) (line []byte, size int, complete bool, err error) {
	var buf []byte
	for {
		chunk, e := br.ReadSlice('\n')
		size += len(chunk)
		if room := max - len(buf); room > 0 {
			buf = append(buf, chunk[:min(room, len(chunk))]...)
		}
		switch {
		case e == nil:
			return trimEOL(buf), size, true, nil
		case errors.Is(e, bufio.ErrBufferFull):
			continue
		default:
			return buf, size, false, e
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// cleanLine splits off the line's timestamp, strips terminal codes and
// masks secrets.
func (s *Server) cleanLine(n int, b []byte) logLine {
	text := string(b)
	l := logLine{N: n}
	if t, rest, ok := runlog.SplitLine(text); ok {
		l.Time = t.UTC().Format("15:04:05")
		text = rest
	}
	l.Text = s.mask.String(redact.StripANSI(text))
	return l
}

// stageOf finds a run's stage by name.
func stageOf(r *store.Run, name string) (*store.Stage, bool) {
	for i := range r.Stages {
		if string(r.Stages[i].Name) == name {
			return &r.Stages[i], true
		}
	}
	return nil, false
}

// runStage loads the run and checks the stage exists, or writes a 404.
func (s *Server) runStage(w http.ResponseWriter, r *http.Request) (*store.Run, string, bool) {
	run, ok := s.loadRun(w, r)
	if !ok {
		return nil, "", false
	}
	stage := r.PathValue("stage")
	if _, ok := stageOf(run, stage); !ok {
		s.notFound(w, r, fmt.Sprintf("run %s has no stage %q", run.ID, stage))
		return nil, "", false
	}
	return run, stage, true
}

// logText streams a stage log as plain text through the masker, without
// reading it into memory. ?from=N starts at byte N.
func (s *Server) logText(w http.ResponseWriter, r *http.Request) {
	run, stage, ok := s.runStage(w, r)
	if !ok {
		return
	}
	f, err := s.cfg.Logs.Open(run.ID, stage)
	if err != nil {
		s.notFound(w, r, fmt.Sprintf("stage %s of run %s has no log yet", stage, run.ID))
		return
	}
	defer f.Close()
	if from, err := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64); err == nil && from > 0 {
		if _, err := f.Seek(from, io.SeekStart); err != nil {
			s.apiError(w, http.StatusBadRequest, "bad from offset")
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Disposition", fmt.Sprintf(`inline; filename="run-%s-%s.log"`, run.ID, stage))
	h.Set("Cache-Control", "no-cache")
	mw := s.mask.Writer(w)
	if _, err := io.Copy(mw, f); err != nil {
		s.log.Debug("log download cut", "run", run.ID, "stage", stage, "err", err)
		return
	}
	_ = mw.Close()
}

// sseLine is one log line as sent to the page.
type sseLine struct {
	N    int    `json:"n"`
	Time string `json:"time,omitempty"`
	Text string `json:"text"`
}

// logEvents streams a stage's log as Server-Sent Events while it is
// written: one "line" event per line (id "offset:line", so a reconnecting
// browser resumes where it was), then a "done" event once the stage's log
// is closed. ?from=OFFSET&n=LINES continue from what the page showed.
func (s *Server) logEvents(w http.ResponseWriter, r *http.Request) {
	run, stage, ok := s.runStage(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	from, _ := strconv.ParseInt(q.Get("from"), 10, 64)
	n, _ := strconv.Atoi(q.Get("n"))
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		o, l, _ := strings.Cut(last, ":")
		if v, err := strconv.ParseInt(o, 10, 64); err == nil {
			from = v
		}
		if v, err := strconv.Atoi(l); err == nil {
			n = v
		}
	}
	if from < 0 || n < 0 {
		from, n = 0, 0
	}
	rc, err := s.cfg.Logs.Follow(r.Context(), run.ID, stage, from)
	if err != nil {
		s.notFound(w, r, fmt.Sprintf("stage %s of run %s has no log yet", stage, run.ID))
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	rctl := http.NewResponseController(w)
	bw := bufio.NewWriter(w)
	fmt.Fprint(bw, "retry: 2000\n\n")
	flush := func() bool {
		if bw.Flush() != nil {
			return false
		}
		return rctl.Flush() == nil
	}
	if !flush() {
		return
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	for {
		line, size, complete, err := readLine(br, maxLineBytes)
		if size > 0 && (complete || err == io.EOF) {
			n++
			from += int64(size)
			l := s.cleanLine(n, line)
			data, _ := json.Marshal(sseLine{N: l.N, Time: l.Time, Text: l.Text})
			fmt.Fprintf(bw, "event: line\nid: %d:%d\ndata: %s\n\n", from, n, data)
		}
		if err != nil {
			if err == io.EOF {
				fmt.Fprintf(bw, "event: done\ndata: {\"lines\":%d}\n\n", n)
				flush()
			}
			return
		}
		// Flush when the reader has nothing more at hand, so a burst of
		// lines goes out in one write.
		if br.Buffered() == 0 && !flush() {
			return
		}
	}
}
