package backendtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/types"
)

// TesterConfig is a backend that runs only the test stage (Jenkins), under
// test on its own.
type TesterConfig struct {
	Tester backend.Tester
	// Good is a test that ends with checks; Slow one that runs until it is
	// cancelled.
	Good, Slow backend.TestSpec
	// Unknown is a well-formed handle the backend never gave out; empty
	// skips that check.
	Unknown backend.Handle
	// Restart returns a new instance over the same state, as a restarted
	// cccp would make it; CanReattach as in Config.
	Restart     func(t *testing.T) backend.Tester
	CanReattach bool
	// Timeout bounds each wait of the suite; default 5 minutes.
	Timeout time.Duration
}

// RunTester runs the Tester's part of the suite: Start returns a handle
// before the work is done, Wait gives known checks and gives them again,
// Log returns the log and, from the offset it returned, nothing more,
// Cancel stops the work (Wait then fails) and is no error on finished or
// unknown work, and a restarted backend reattaches (or reports the handle
// lost).
func RunTester(t *testing.T, cfg TesterConfig) {
	s := &suite{cfg: Config{Timeout: cfg.Timeout}}
	tr := cfg.Tester
	var good backend.Handle
	var goodRes backend.TestResult
	t.Run("Test", func(t *testing.T) {
		ctx := s.ctx(t)
		h, err := tr.StartTest(ctx, cfg.Good)
		if err != nil {
			t.Fatalf("StartTest: %v", err)
		}
		if h == "" {
			t.Fatal("StartTest returned an empty handle")
		}
		res, err := tr.WaitTest(ctx, h)
		if err != nil {
			t.Fatalf("WaitTest %s: %v", h, err)
		}
		checkResults(t, res)
		again, err := tr.WaitTest(ctx, h)
		if err != nil || !reflect.DeepEqual(again, res) {
			t.Errorf("second WaitTest = %+v, %v; want the same result", again, err)
		}
		good, goodRes = h, res
	})
	if good == "" {
		t.Fatal("the good test failed; the rest of the suite needs it")
	}
	t.Run("LogFromOffset", func(t *testing.T) {
		ctx := s.ctx(t)
		var full bytes.Buffer
		end, err := tr.Log(ctx, good, 0, &full)
		if err != nil {
			t.Fatalf("Log from 0: %v", err)
		}
		if full.Len() == 0 || end <= 0 {
			t.Fatalf("Log from 0: %d bytes, offset %d; want a log and where it ends", full.Len(), end)
		}
		var rest bytes.Buffer
		end2, err := tr.Log(ctx, good, end, &rest)
		if err != nil || end2 != end || rest.Len() != 0 {
			t.Errorf("Log from its end %d = %q, offset %d, %v; want nothing more", end, rest.String(), end2, err)
		}
	})
	t.Run("StartDoesNotWaitAndCancelStops", func(t *testing.T) {
		ctx := s.ctx(t)
		h, err := tr.StartTest(ctx, cfg.Slow)
		if err != nil {
			t.Fatalf("StartTest: %v", err)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = tr.WaitTest(wctx, h)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitTest right after StartTest of a slow test = %v; want it still running", err)
		}
		logDone := make(chan error, 1)
		go func() { _, err := tr.Log(ctx, h, 0, io.Discard); logDone <- err }()
		if err := tr.Cancel(ctx, h); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		res, err := tr.WaitTest(ctx, h)
		var se *backend.StageError
		if !errors.As(err, &se) {
			t.Fatalf("WaitTest after Cancel = %+v, %v; want a *backend.StageError", res, err)
		}
		select {
		case err := <-logDone:
			if err != nil {
				t.Errorf("Log of cancelled work: %v", err)
			}
		case <-ctx.Done():
			t.Errorf("Log kept following cancelled work")
		}
		if err := tr.Cancel(ctx, h); err != nil {
			t.Errorf("Cancel of finished work: %v", err)
		}
		if cfg.Unknown != "" {
			if err := tr.Cancel(ctx, cfg.Unknown); err != nil {
				t.Errorf("Cancel of an unknown handle: %v", err)
			}
		}
	})
	if cfg.Restart != nil {
		t.Run("Reattach", func(t *testing.T) {
			ctx := s.ctx(t)
			r := cfg.Restart(t)
			res, err := r.WaitTest(ctx, good)
			switch {
			case cfg.CanReattach && (err != nil || !reflect.DeepEqual(res, goodRes)):
				t.Errorf("restarted backend: WaitTest %s = %+v, %v; want %+v", good, res, err, goodRes)
			case !cfg.CanReattach && !errors.Is(err, backend.ErrLost):
				t.Errorf("restarted backend: WaitTest %s = %+v, %v; want backend.ErrLost", good, res, err)
			}
			if cfg.CanReattach {
				if n, err := r.Log(ctx, good, 0, io.Discard); err != nil || n == 0 {
					t.Errorf("restarted backend: Log %s = %d, %v; want its log", good, n, err)
				}
			}
		})
	}
}

func checkResults(t *testing.T, res backend.TestResult) {
	t.Helper()
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
}
