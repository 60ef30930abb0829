package dispatch

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// hookedStore runs retried after a put-off is stored, and counts the
// rescans' reads of the due deliveries.
type hookedStore struct {
	*store.DB
	retried func()
	scans   atomic.Int32
}

func (s *hookedStore) RetryDelivery(ctx context.Context, forge, id string, next time.Time, msg string) error {
	err := s.DB.RetryDelivery(ctx, forge, id, next, msg)
	s.retried()
	return err
}

func (s *hookedStore) DueDeliveries(ctx context.Context, now time.Time, after uint64, limit int) ([]store.Delivery, time.Time, error) {
	ds, next, err := s.DB.DueDeliveries(ctx, now, after, limit)
	s.scans.Add(1)
	return ds, next, err
}

// TestRescanWhileInFlightLosesNoRetry: a rescan that finds a put-off
// delivery due while its worker still holds it (between storing the next
// attempt and leaving flight) passes it over; the delivery is still tried
// again at once when it leaves flight, not at the once-a-minute safety
// rescan. The rescan is made to come at that moment: when the worker asks
// the clock, right after the put-off is stored. Before, the worker set the
// next wake-up before it left flight, the rescan passed the delivery over
// and cleared that wake-up, and the retry waited a minute (seen as
// TestRoutingFailureKeepsDelivery timing out under load).
func TestRescanWhileInFlightLosesNoRetry(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.AcceptDelivery(ctx, store.Delivery{Forge: "github", ID: "d1", Event: "push", Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	var armed atomic.Bool // the next clock reading is the worker's, after the put-off
	st := &hookedStore{DB: db, retried: func() { armed.Store(true) }}
	var calls atomic.Int32
	second := make(chan struct{})
	var d *Dispatcher
	now := func() time.Time {
		if armed.CompareAndSwap(true, false) {
			time.Sleep(5 * time.Millisecond) // the put-off's 1 ms is over: the delivery is due
			n := st.scans.Load()
			d.dueAt(time.Unix(0, 1))
			notify(d.wake)
			for st.scans.Load() == n { // the rescan reads d1, due,
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // and hands it over, or passes it over while in flight
		}
		return time.Now()
	}
	d = New(Config{Store: st, Workers: 2, Now: now, RetryBase: time.Millisecond, RetryMax: time.Millisecond,
		Process: func(ctx context.Context, del store.Delivery) (string, error) {
			if calls.Add(1) == 1 {
				return "", errors.New("forge down")
			}
			close(second)
			return "routed", nil
		}})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-second:
	case <-time.After(20 * time.Second): // the safety rescan is a minute away
		t.Fatal("the put-off delivery was not tried again after a rescan passed it over in flight")
	}
}
