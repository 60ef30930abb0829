package event

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestErrors(t *testing.T) {
	err := Ignored("action %q", "closed")
	if !errors.Is(err, ErrIgnored) || err.Error() != `event ignored: action "closed"` {
		t.Errorf("Ignored = %v", err)
	}
	base := errors.New("boom")
	var wrapped error = fmt.Errorf("report: %w", &RetryableError{Op: "set status", After: 3 * time.Second, Err: base})
	var re interface{ RetryAfter() time.Duration }
	if !errors.As(wrapped, &re) || re.RetryAfter() != 3*time.Second || !errors.Is(wrapped, base) {
		t.Errorf("RetryableError does not unwrap: %v", wrapped)
	}
}

func TestStateDone(t *testing.T) {
	for s, want := range map[State]bool{StateQueued: false, StateRunning: false, StateSuccess: true, StateFailure: true, StateCancelled: true, StateError: true} {
		if s.Done() != want {
			t.Errorf("%s.Done() = %v", s, !want)
		}
	}
}

func TestBodyID(t *testing.T) {
	if BodyID([]byte("a")) != BodyID([]byte("a")) || BodyID([]byte("a")) == BodyID([]byte("b")) {
		t.Error("BodyID not stable or not distinct")
	}
}
