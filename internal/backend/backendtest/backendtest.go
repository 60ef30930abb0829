// Package backendtest is the conformance suite of stage backends, in the
// spirit of go-containerregistry's validate: given a backend and a fixture
// (sources that build, fail and run long), it checks what the pipeline
// relies on — Start returns a handle before the work is done, Wait gives a
// result with a digest, a failure is a *backend.StageError, Cancel stops
// the work, Log returns the right bytes from offset 0 and from the middle,
// and a stored handle can be waited for again by a restarted backend (or
// is reported lost, for a backend that says it cannot reattach).
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/types"
)

// Source is one entry at one commit.
type Source struct {
	Entry *index.Entry
	Src   backend.Source
}

// Fixture is what the suite builds and tests.
type Fixture struct {
	// Good builds (and its image passes the Tester's blocking checks).
	Good Source
	// Failing fails to build (a RUN step that exits non-zero).
	Failing Source
	// Slow builds for minutes (a RUN step that sleeps), so that it can be
	// seen running, followed and cancelled.
	Slow Source
	// Push returns the reference a build of runID pushes to.
	Push func(runID string) string
	// SlowRunning, when set, tells whether the Slow build's own process
	// (its RUN step) still runs anywhere: after Cancel it must stop.
	SlowRunning func() bool
}

// Config is a backend under test.
type Config struct {
	Builder backend.Builder
	Tester  backend.Tester // optional: the test-stage checks run when set
	Fixture Fixture
	// Restart returns a new instance of the backend over the same state,
	// as a restarted cccp would make it.
	Restart func(t *testing.T) (backend.Builder, backend.Tester)
	// CanReattach says whether a restarted backend knows the handles of
	// the one before; when false, they must be reported as
	// backend.ErrLost.
	CanReattach bool
	// Timeout bounds each wait of the suite; default 5 minutes.
	Timeout time.Duration
}

type suite struct {
	cfg Config
	seq int
}

func (s *suite) runID() string {
	s.seq++
	return fmt.Sprintf("ct%d", s.seq)
}

func (s *suite) ctx(t *testing.T) context.Context {
	d := s.cfg.Timeout
	if d == 0 {
		d = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (s *suite) spec(t *testing.T, src Source) backend.BuildSpec {
	id := s.runID()
	return backend.BuildSpec{RunID: id, Kind: types.KindPR, Entry: src.Entry, Src: src.Src, Push: s.cfg.Fixture.Push(id)}
}

// Run runs the whole suite.
func Run(t *testing.T, cfg Config) {
	s := &suite{cfg: cfg}
	var good backend.Handle
	var goodRes backend.BuildResult
	var goodSpec backend.BuildSpec
	t.Run("Build", func(t *testing.T) {
		ctx := s.ctx(t)
		goodSpec = s.spec(t, cfg.Fixture.Good)
		h, err := cfg.Builder.StartBuild(ctx, goodSpec)
		if err != nil {
			t.Fatalf("StartBuild: %v", err)
		}
		if h == "" {
			t.Fatal("StartBuild returned an empty handle")
		}
		res, err := cfg.Builder.WaitBuild(ctx, h)
		if err != nil {
			t.Fatalf("WaitBuild %s: %v", h, err)
		}
		if !strings.HasPrefix(res.Digest, "sha256:") {
			t.Errorf("WaitBuild digest = %q, want sha256:...", res.Digest)
		}
		if len(res.Bases) == 0 {
			t.Errorf("WaitBuild reported no bases")
		}
		again, err := cfg.Builder.WaitBuild(ctx, h)
		if err != nil || again.Digest != res.Digest {
			t.Errorf("second WaitBuild = %q, %v; want the same result", again.Digest, err)
		}
		good, goodRes = h, res
	})
	if good == "" {
		t.Fatal("the good build failed; the rest of the suite needs it")
	}
	t.Run("LogFromOffset", func(t *testing.T) {
		ctx := s.ctx(t)
		var full bytes.Buffer
		end, err := cfg.Builder.Log(ctx, good, 0, &full)
		if err != nil {
			t.Fatalf("Log from 0: %v", err)
		}
		if full.Len() == 0 || end != int64(full.Len()) {
			t.Fatalf("Log from 0: %d bytes, offset %d; want a log and its length", full.Len(), end)
		}
		mid := int64(full.Len() / 2)
		var part bytes.Buffer
		end2, err := cfg.Builder.Log(ctx, good, mid, &part)
		if err != nil {
			t.Fatalf("Log from %d: %v", mid, err)
		}
		if !bytes.Equal(part.Bytes(), full.Bytes()[mid:]) || end2 != end {
			t.Errorf("Log from %d = %d bytes (offset %d), want the last %d bytes of the log (offset %d)",
				mid, part.Len(), end2, full.Len()-int(mid), end)
		}
	})
	t.Run("FailureIsStageError", func(t *testing.T) {
		ctx := s.ctx(t)
		h, err := cfg.Builder.StartBuild(ctx, s.spec(t, cfg.Fixture.Failing))
		if err != nil {
			t.Fatalf("StartBuild: %v", err)
		}
		res, err := cfg.Builder.WaitBuild(ctx, h)
		var se *backend.StageError
		if !errors.As(err, &se) {
			t.Fatalf("WaitBuild of a failing build = %+v, %v; want a *backend.StageError", res, err)
		}
		if se.Reason == "" || se.Message == "" {
			t.Errorf("StageError %+v: want a Reason and a Message", se)
		}
	})
	t.Run("StartDoesNotWaitAndCancelStops", func(t *testing.T) {
		ctx := s.ctx(t)
		h, err := cfg.Builder.StartBuild(ctx, s.spec(t, cfg.Fixture.Slow))
		if err != nil {
			t.Fatalf("StartBuild: %v", err)
		}
		// The slow build runs for minutes: Start returned before it ended.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = cfg.Builder.WaitBuild(wctx, h)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitBuild right after StartBuild of a slow build = %v; want it still running", err)
		}
		// A follower sees the work running and returns once it is cancelled.
		logDone := make(chan error, 1)
		go func() { _, err := cfg.Builder.Log(ctx, h, 0, io.Discard); logDone <- err }()
		if err := cfg.Builder.Cancel(ctx, h); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		res, err := cfg.Builder.WaitBuild(ctx, h)
		if err == nil {
			t.Fatalf("WaitBuild after Cancel = %+v; want an error", res)
		}
		if ctx.Err() != nil {
			t.Fatalf("the cancelled build did not stop in time")
		}
		if running := cfg.Fixture.SlowRunning; running != nil {
			deadline := time.Now().Add(15 * time.Second)
			for running() && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
			}
			if running() {
				t.Errorf("the cancelled build's RUN step still runs")
			}
		}
		select {
		case err := <-logDone:
			if err != nil {
				t.Errorf("Log of cancelled work: %v", err)
			}
		case <-ctx.Done():
			t.Errorf("Log kept following cancelled work")
		}
		if err := cfg.Builder.Cancel(ctx, h); err != nil {
			t.Errorf("Cancel of finished work: %v", err)
		}
		if err := cfg.Builder.Cancel(ctx, "no-such/handle"); err != nil {
			t.Errorf("Cancel of an unknown handle: %v", err)
		}
	})
	if cfg.Tester != nil {
		t.Run("Test", func(t *testing.T) {
			ctx := s.ctx(t)
			image := digestRef(goodSpec.Push, goodRes.Digest)
			h, err := cfg.Tester.StartTest(ctx, backend.TestSpec{RunID: goodSpec.RunID, Kind: types.KindPR,
				Entry: cfg.Fixture.Good.Entry, Src: cfg.Fixture.Good.Src, Image: image})
			if err != nil {
				t.Fatalf("StartTest: %v", err)
			}
			res, err := cfg.Tester.WaitTest(ctx, h)
			if err != nil {
				t.Fatalf("WaitTest %s: %v", h, err)
			}
			if len(res.Checks) == 0 {
				t.Fatal("WaitTest reported no checks")
			}
			for _, c := range res.Checks {
				if !types.KnownCheck(c.Name) {
					t.Errorf("check %q is not one of types.Checks", c.Name)
				}
				switch c.State {
				case backend.CheckPassed, backend.CheckFailed, backend.CheckSkipped:
				default:
					t.Errorf("check %s: state %q", c.Name, c.State)
				}
			}
			var log bytes.Buffer
			if _, err := cfg.Tester.Log(ctx, h, 0, &log); err != nil || log.Len() == 0 {
				t.Errorf("test log: %d bytes, %v", log.Len(), err)
			}
		})
	}
	if cfg.Restart != nil {
		t.Run("Reattach", func(t *testing.T) {
			ctx := s.ctx(t)
			b, _ := cfg.Restart(t)
			res, err := b.WaitBuild(ctx, good)
			var n int64
			if err == nil {
				n, err = b.Log(ctx, good, 0, io.Discard)
			}
			switch {
			case cfg.CanReattach && (err != nil || res.Digest != goodRes.Digest || n == 0):
				t.Errorf("restarted backend: WaitBuild %s = %q, log %d bytes, %v; want %s and its log", good, res.Digest, n, err, goodRes.Digest)
			case !cfg.CanReattach && !errors.Is(err, backend.ErrLost):
				t.Errorf("restarted backend: WaitBuild %s = %+v, %v; want backend.ErrLost", good, res, err)
			}
			if !cfg.CanReattach {
				if _, err := b.Log(ctx, good, 0, io.Discard); !errors.Is(err, backend.ErrLost) {
					t.Errorf("restarted backend: Log %s = %v; want backend.ErrLost", good, err)
				}
			}
		})
	}
}

// digestRef turns host/repo:tag and a digest into host/repo@digest.
func digestRef(ref, digest string) string {
	repo := ref
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		repo = ref[:i]
	}
	return repo + "@" + digest
}
