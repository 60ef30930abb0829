package buildah

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

const tailLines = 40

// maxLine is how much of one output line the watcher keeps.
const maxLine = 4 << 10

// watcher passes buildah's output on to a log while it keeps the last
// STEP line and the last lines, for the error.
type watcher struct {
	mu      sync.Mutex
	log     io.Writer
	partial []byte
	last    []string // ring of the last tailLines lines
	step    string   // last "STEP n/m: ..." line
	secrets []string
}

func newWatcher(log io.Writer) *watcher {
	if log == nil {
		log = io.Discard
	}
	return &watcher{log: log}
}

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.secrets) > 0 {
		if _, err := io.WriteString(w.log, redact(string(p), w.secrets)); err != nil {
			return 0, err
		}
	} else if _, err := w.log.Write(p); err != nil {
		return 0, err
	}
	n := len(p)
	// Lines are cut at maxLine: a RUN step that writes a gigabyte without
	// a newline costs maxLine bytes here.
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxLine - len(w.partial); room > 0 {
			w.partial = append(w.partial, chunk[:min(room, len(chunk))]...)
		}
		if i < 0 {
			break
		}
		w.line(string(w.partial))
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (w *watcher) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
}

func (w *watcher) line(l string) {
	l = strings.TrimRight(l, "\r")
	if stepRE.MatchString(l) {
		w.step = l
	}
	w.last = append(w.last, redact(l, w.secrets))
	if len(w.last) > tailLines {
		w.last = w.last[len(w.last)-tailLines:]
	}
}

func (w *watcher) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.last...)
}

func (w *watcher) tail(n int) string {
	l := w.lines()
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// stepRE matches buildah's step lines: "STEP 3/4: RUN false" and, in a
// multi-stage build, "[2/2] STEP 3/3: RUN false".
var stepRE = regexp.MustCompile(`^(?:\[(\d+)/\d+\] )?STEP (\d+)/\d+: (.*)$`)

// causeRE matches buildah's final error line.
var causeRE = regexp.MustCompile(`(?:Error|error): (?:error )?building at STEP "[^\n]*?": (.*)$`)

func newBuildError(dockerfile string, content []byte, w *watcher) *BuildError {
	e := &BuildError{Dockerfile: dockerfile, Output: w.tail(tailLines)}
	if m := stepRE.FindStringSubmatch(w.step); m != nil {
		e.Stage = 1
		if m[1] != "" {
			e.Stage, _ = strconv.Atoi(m[1])
		}
		e.Step, _ = strconv.Atoi(m[2])
		e.Instruction = m[3]
		e.Line = stepLine(content, e.Stage, e.Step)
	}
	lines := w.lines()
	for i := len(lines) - 1; i >= 0; i-- {
		if m := causeRE.FindStringSubmatch(lines[i]); m != nil {
			e.Cause = strings.TrimPrefix(strings.TrimPrefix(m[1], "error while running runtime: "), "while running runtime: ")
			break
		}
	}
	if e.Cause == "" {
		// Not a step failure (a Dockerfile buildah rejects, a missing
		// context): the last "Error:" line says why.
		for i := len(lines) - 1; i >= 0; i-- {
			if c, ok := strings.CutPrefix(lines[i], "Error: "); ok {
				e.Cause = c
				break
			}
		}
	}
	return e
}

// stepLine maps buildah's stage and step numbers to a Dockerfile line with
// BuildKit's parser: each FROM starts a stage, and step n is the stage's
// n-th instruction, FROM being step 1.
func stepLine(content []byte, stage, step int) int {
	if stage < 1 || step < 1 {
		return 0
	}
	res, err := parser.Parse(bytes.NewReader(content))
	if err != nil {
		return 0
	}
	cur, n := 0, 0
	for _, node := range res.AST.Children {
		if strings.EqualFold(node.Value, "from") {
			cur++
			n = 0
		}
		if cur == 0 {
			continue // ARG before the first FROM is not a step
		}
		n++
		if cur == stage && n == step {
			return node.StartLine
		}
	}
	return 0
}
