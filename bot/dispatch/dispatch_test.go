package dispatch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/store"
)

// TestOutcomes runs the dispatcher on a real store: each delivery's
// Process answer decides whether it is finished, put off to a stored next
// attempt (with the forge held when it asked to wait), or given up.
func TestOutcomes(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	errDown := errors.New("forge down")
	tests := []struct {
		name      string
		err       error
		outcome   string
		wantDone  bool          // finished: no longer pending, no trouble
		wantNext  time.Duration // put off by this much (0: not put off)
		wantGiven bool          // given up
		wantHeld  time.Duration // the forge held for this long
	}{
		{name: "routed", outcome: "routed", wantDone: true},
		{name: "ignored", outcome: "ignored", wantDone: true},
		{name: "transient error backs off", err: errDown, wantNext: 5 * time.Second},
		{name: "forge asks to wait", err: &event.RetryableError{Op: "x", After: time.Hour, Err: errDown},
			wantNext: time.Hour, wantHeld: time.Hour},
		{name: "wait error puts off to its time", err: &WaitError{Until: now.Add(10 * time.Minute), Err: errDown},
			wantNext: 10 * time.Minute},
		{name: "marked permanent", err: Permanent(errDown), wantGiven: true},
		{name: "forge refused", err: &event.PermanentError{Op: "x", Status: 404, Err: errDown}, wantGiven: true},
		{name: "classified permanent by the config", err: fmt.Errorf("route: %w", errBadForTest), wantGiven: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(filepath.Join(t.TempDir(), "cccp.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.AcceptDelivery(ctx, store.Delivery{Forge: "github", ID: "d1", Event: "push", Body: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			calls := 0
			processed := make(chan struct{}, 1)
			d := New(Config{Store: db, Now: func() time.Time { return now },
				Permanent: func(err error) bool { return errors.Is(err, errBadForTest) },
				Process: func(ctx context.Context, del store.Delivery) (string, error) {
					mu.Lock()
					calls++
					mu.Unlock()
					defer func() { processed <- struct{}{} }()
					return tt.outcome, tt.err
				}})
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- d.Run(runCtx) }()
			select {
			case <-processed:
			case <-time.After(10 * time.Second):
				t.Fatal("the stored delivery was not processed")
			}
			<-d.Ready()
			// The outcome is stored after Process returns (a finish in a
			// batch): wait for it before stopping, which would leave the
			// delivery pending as cut off.
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				ds, _, _ := db.DueDeliveries(ctx, now, 0, 10)
				tr, _ := db.TroubledDeliveries(ctx, 0)
				if tt.wantDone && len(ds) == 0 || !tt.wantDone && len(tr) == 1 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			<-done

			due, next, err := db.DueDeliveries(ctx, now.Add(2*time.Hour), 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			trouble, err := db.TroubledDeliveries(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantDone:
				if len(due) != 0 || len(trouble) != 0 {
					t.Errorf("finished delivery still pending (%d) or in trouble (%+v)", len(due), trouble)
				}
			case tt.wantGiven:
				if len(trouble) != 1 || !trouble[0].Failed || trouble[0].LastError == "" {
					t.Errorf("trouble = %+v, want one given up with its reason", trouble)
				}
			default:
				if len(trouble) != 1 || trouble[0].Failed || !trouble[0].NextAttempt.Equal(now.Add(tt.wantNext)) {
					t.Errorf("trouble = %+v, want pending with the next attempt at +%v", trouble, tt.wantNext)
				}
				if len(due) != 1 {
					t.Errorf("put-off delivery is not due later (%d due, next %v)", len(due), next)
				}
			}
			held := d.Held("github")
			if tt.wantHeld == 0 && !held.IsZero() || tt.wantHeld != 0 && !held.Equal(now.Add(tt.wantHeld)) {
				t.Errorf("Held = %v, want +%v", held, tt.wantHeld)
			}
			if calls != 1 {
				t.Errorf("Process called %d times, want 1", calls)
			}
		})
	}
}

var errBadForTest = errors.New("bad event")

// TestReplay: a given-up delivery is processed again after Replay.
func TestReplay(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.AcceptDelivery(ctx, store.Delivery{Forge: "gitea", ID: "d1", Event: "push", Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	seen := make(chan int, 4)
	n := 0
	d := New(Config{Store: db, Process: func(context.Context, store.Delivery) (string, error) {
		n++
		seen <- n
		if n == 1 {
			return "", Permanent(errors.New("no such project"))
		}
		return "routed", nil
	}})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go d.Run(runCtx)
	if got := <-seen; got != 1 {
		t.Fatalf("first call %d", got)
	}
	// The give-up is stored by the worker after Process returns.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if tr, _ := db.TroubledDeliveries(ctx, 0); len(tr) == 1 && tr[0].Failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not given up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.Replay(ctx, "gitea", "d1"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-seen:
		if got != 2 {
			t.Fatalf("call %d after replay", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the replayed delivery was not processed again")
	}
}
