package checks

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cccp-project/cccp/internal/safefs"
	"github.com/cccp-project/cccp/internal/types"
)

// StageSpec is what the test stage checks: an image that is already in the
// local container storage, and the checkout it was built from.
type StageSpec struct {
	Image      string // immutable reference (digest or local image ID)
	Dockerfile string // the Dockerfile in the checkout, for the lint
	// Root is the checkout: the Dockerfile is read only as a regular file
	// beneath it (no symlink out); default the Dockerfile's folder.
	Root    string
	RepoDir string // where the test script runs
	// TestScript is cccp.yaml's test-script, relative to RepoDir; "" when
	// there is none. TestSkip is cccp.yaml's test-skip.
	TestScript string
	TestSkip   bool
	// Hold is how long the smoke run must keep running (or exit 0 before);
	// DefaultHold when 0.
	Hold time.Duration
	// Only, when set, are the only checks run (a rescan's scans); the
	// others are neither run nor reported. Empty runs every check.
	Only []types.CheckName
}

// wants tells whether spec asks for check n.
func (spec StageSpec) wants(n types.CheckName) bool {
	return len(spec.Only) == 0 || slices.Contains(spec.Only, n)
}

// NeedsSource tells whether any check spec asks for reads the checkout (the
// lint reads the Dockerfile, the user's script runs in it); the scans,
// the capability labels and the smoke run need only the image.
func NeedsSource(only []types.CheckName) bool {
	if len(only) == 0 {
		return true
	}
	return slices.Contains(only, types.CheckLint) || slices.Contains(only, types.CheckUserScript)
}

// State is a check's outcome. Its values are those of store.State and
// backend.CheckState, so either converts with a type conversion.
type State string

// Check outcomes.
const (
	Passed  State = "passed"
	Failed  State = "failed"
	Skipped State = "skipped"
)

// Outcome is one check of the test stage.
type Outcome struct {
	Name     types.CheckName
	State    State
	Summary  string
	Findings []string
	// Explain are the lines of the check's own output that explain its
	// failure (what a run page highlights and a PR comment quotes); empty
	// when the check did not fail. They are lines of the check's block in
	// the stage log, never cccp's own progress or marker lines.
	Explain []string
}

// dockerfileMax bounds the Dockerfile the lint reads: the repository
// controls it, and may make it a symlink to /dev/zero.
const dockerfileMax = 1 << 20

// explainMax is how many lines an outcome's Explain holds at most.
const explainMax = logTail

// RunStage runs every check of the test stage on spec's image, the
// independent ones at the same time: the lint and the capability labels
// (no container), the scans (one container, see probes), the smoke run and
// the user's test script. Each check's output is kept apart and written to
// log as one block when the check ends, the blocks in the order of
// types.Checks:
//
//	cccp: ---- NAME ----
//	<the check's own output>
//	cccp: check NAME: STATE: SUMMARY (TIME TAKEN)
//
// A check that could not run at all (podman failed) is a failed outcome
// with the reason. The error is ctx's when the stage was interrupted; the
// outcomes are then those of the checks that had ended.
func (s *Suite) RunStage(ctx context.Context, spec StageSpec, log io.Writer) ([]Outcome, error) {
	var blocks []*block
	byName := map[types.CheckName]*block{}
	for _, name := range types.Checks {
		if spec.wants(name) {
			b := newBlock(ctx, name)
			blocks = append(blocks, b)
			byName[name] = b
		}
	}
	fmt.Fprintf(log, "cccp: running %d checks at the same time; each check's output follows when it ends\n", len(blocks))
	// run starts check name's work unless spec leaves it out.
	run := func(name types.CheckName, fn func(b *block)) {
		if b := byName[name]; b != nil {
			go fn(b)
		}
	}

	// The smoke run is usually the longest check: it starts first.
	run(types.CheckSmoke, func(b *block) {
		b.finish(s.Smoke(ctx, spec.Image, spec.Hold, b))
	})
	run(types.CheckUserScript, func(b *block) {
		switch {
		case spec.TestScript == "":
			b.finish(Result{Skipped: true, Summary: "no test-script in cccp.yaml"}, nil)
		case spec.TestSkip:
			b.finish(Result{Skipped: true, Summary: "test-skip is set in cccp.yaml"}, nil)
		default:
			script := filepath.Join(spec.RepoDir, filepath.Clean("/"+spec.TestScript))
			b.finish(s.UserScript(ctx, script, spec.RepoDir, spec.Image, b))
		}
	})
	run(types.CheckLint, func(b *block) {
		b.finish(s.lint(spec.Root, spec.Dockerfile, b))
	})
	run(types.CheckCapabilities, func(b *block) {
		labels, err := s.Containers.ImageLabels(ctx, spec.Image)
		if err != nil {
			b.finish(Result{}, err)
			return
		}
		b.finish(Capabilities(labels, b), nil)
	})
	var wanted []scan
	for _, sc := range scans {
		if byName[sc.name] != nil {
			wanted = append(wanted, sc)
		}
	}
	if len(wanted) > 0 {
		go func() {
			logs := make([]io.Writer, len(wanted))
			for i, sc := range wanted {
				logs[i] = byName[sc.name]
			}
			for i, r := range s.probes(ctx, spec.Image, wanted, logs) {
				byName[wanted[i].name].finish(r.Result, r.err)
			}
		}()
	}

	// Every check ends when ctx does, so waiting in order cannot hang
	// past a cancellation.
	out := make([]Outcome, 0, len(blocks))
	for _, b := range blocks {
		<-b.done
		if b.cut {
			// What an interrupted check says is not its result.
			continue
		}
		b.writeTo(log)
		out = append(out, b.outcome)
	}
	return out, ctx.Err()
}

// lint reads the Dockerfile (a regular file beneath root, bounded) and
// lints it.
func (s *Suite) lint(root, path string, log io.Writer) (Result, error) {
	if root == "" {
		root = filepath.Dir(path)
	}
	df, err := safefs.ReadFile(root, path, dockerfileMax)
	if err != nil {
		err = fmt.Errorf("read Dockerfile: %w", err)
		fmt.Fprintln(log, err)
		return Result{}, err
	}
	return Lint(filepath.Base(path), df, log), nil
}

// outcomeOf turns a check's Result (or its could-not-run error) into an
// Outcome.
func outcomeOf(name types.CheckName, r Result, err error) Outcome {
	o := Outcome{Name: name, Summary: r.Summary, Findings: r.Findings}
	switch {
	case err != nil:
		o.State = Failed
		o.Summary = "could not run: " + err.Error()
	case r.Skipped:
		o.State = Skipped
	case r.Passed:
		o.State = Passed
	default:
		o.State = Failed
	}
	return o
}

// Block sizes: what is kept of one check's output. A repository's script
// or image may print without end; the stage log gets the start and the
// end of it, and cccp's memory stays bounded.
const (
	blockHead = 64 << 10
	blockTail = 192 << 10
)

// block collects one check's output while it runs (checks write to it from
// several goroutines: a command's stdout and stderr are copied apart).
type block struct {
	ctx   context.Context // the stage's
	name  types.CheckName
	done  chan struct{}
	start time.Time
	took  time.Duration

	mu      sync.Mutex
	head    []byte
	tail    []byte // the last bytes written after head filled up
	dropped int64  // bytes between head and tail that were not kept

	outcome Outcome // set by finish, read after done
	cut     bool    // the check ended after the stage's ctx did: no result
}

func newBlock(ctx context.Context, name types.CheckName) *block {
	return &block{ctx: ctx, name: name, done: make(chan struct{}), start: time.Now()}
}

func (b *block) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if room := blockHead - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if b.tail == nil {
		b.tail = make([]byte, 0, 2*blockTail)
	}
	if len(p) >= blockTail {
		b.dropped += int64(len(b.tail) + len(p) - blockTail)
		b.tail = append(b.tail[:0], p[len(p)-blockTail:]...)
		return n, nil
	}
	if len(b.tail)+len(p) > cap(b.tail) {
		// Keep the last blockTail-len(p) bytes, so that p fits.
		cut := len(b.tail) - (blockTail - len(p))
		b.dropped += int64(cut)
		b.tail = b.tail[:copy(b.tail, b.tail[cut:])]
	}
	b.tail = append(b.tail, p...)
	return n, nil
}

// text is the kept output; a gap in it is said in one line, between whole
// lines.
func (b *block) text() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	head, tail := string(b.head), string(b.tail)
	dropped := b.dropped
	if len(tail) > blockTail {
		dropped += int64(len(tail) - blockTail)
		tail = tail[len(tail)-blockTail:]
	}
	if dropped == 0 {
		return head + tail
	}
	// Cut the lines broken by the gap: the head's last, the tail's first.
	if i := strings.LastIndexByte(head, '\n'); i >= 0 {
		dropped += int64(len(head) - i - 1)
		head = head[:i+1]
	}
	if i := strings.IndexByte(tail, '\n'); i >= 0 {
		dropped += int64(i + 1)
		tail = tail[i+1:]
	}
	return fmt.Sprintf("%scccp: ... %d bytes of output left out ...\n%s", head, dropped, tail)
}

// finish records the check's result and marks the block done.
func (b *block) finish(r Result, err error) {
	b.cut = b.ctx.Err() != nil
	b.took = time.Since(b.start)
	b.outcome = outcomeOf(b.name, r, err)
	if b.outcome.State == Failed {
		b.outcome.Explain = explain(lines(b.text()), b.outcome.Findings)
	}
	close(b.done)
}

// writeTo writes the whole block to log in one Write, so that it stays
// together even when something else writes to the same log.
func (b *block) writeTo(log io.Writer) {
	var w strings.Builder
	fmt.Fprintf(&w, "cccp: ---- %s ----\n", b.name)
	t := b.text()
	w.WriteString(t)
	if t != "" && !strings.HasSuffix(t, "\n") {
		w.WriteString("\n")
	}
	fmt.Fprintf(&w, "cccp: check %s: %s: %s (%s)\n", b.name, b.outcome.State, b.outcome.Summary, b.took.Round(100*time.Millisecond))
	io.WriteString(log, w.String())
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	ls := strings.Split(s, "\n")
	for i, l := range ls {
		ls[i] = strings.TrimRight(l, "\r")
	}
	return ls
}

// explain picks the lines of a failed check's output that explain it: the
// output lines its findings were taken from (in output order), else its
// last non-empty lines that are not cccp's own bookkeeping (the command
// line it ran, a container ID, a note of left-out output).
func explain(out, findings []string) []string {
	var picked []string
	used := make([]bool, len(out))
	for _, f := range findings {
		nf := strings.Join(strings.Fields(f), " ")
		if nf == "" {
			continue
		}
		for i, l := range out {
			if !used[i] && strings.Join(strings.Fields(l), " ") == nf {
				used[i] = true
				break
			}
		}
	}
	for i, l := range out {
		if used[i] {
			picked = append(picked, l)
		}
	}
	if len(picked) > 0 {
		if len(picked) > explainMax {
			picked = picked[len(picked)-explainMax:]
		}
		return picked
	}
	const n = 3
	for i := len(out) - 1; i >= 0 && len(picked) < n; i-- {
		if l := strings.TrimSpace(out[i]); l == "" || ownLine(l) {
			continue
		}
		picked = append(picked, out[i])
	}
	for i, j := 0, len(picked)-1; i < j; i, j = i+1, j-1 {
		picked[i], picked[j] = picked[j], picked[i]
	}
	return picked
}

// ownLine tells cccp's own lines inside a check's output: the command line
// of the user's script ("$ ..."), a container ID printed by a detached
// podman run, and the note that output was left out.
func ownLine(l string) bool {
	if strings.HasPrefix(l, "$ ") || strings.HasPrefix(l, "cccp: ") {
		return true
	}
	if len(l) == 64 && strings.Trim(l, "0123456789abcdef") == "" {
		return true
	}
	return false
}
