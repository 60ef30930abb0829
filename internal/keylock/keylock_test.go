package keylock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestMap(t *testing.T) {
	var l Map
	ctx := t.Context()
	unlockA, err := l.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}

	// Another tag is not held up by a.
	unlockB, err := l.Lock(ctx, "b")
	if err != nil {
		t.Fatalf("lock b while a is held: %v", err)
	}
	unlockB()

	// A waiter on a gives up with its context and leaves no entry.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(short, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock of a = %v, want the context's deadline", err)
	}

	// A waiter on a gets it once a is released.
	got := make(chan func(), 1)
	go func() {
		u, err := l.Lock(ctx, "a")
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("a was taken twice at once")
	case <-time.After(20 * time.Millisecond):
	}
	unlockA()
	unlockA() // a second release is a no-op, not a release of the waiter's hold
	u := <-got
	short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if _, err := l.Lock(short2, "a"); err == nil {
		t.Fatal("a taken while the waiter holds it")
	}
	u()

	if len(l.m) != 0 {
		t.Errorf("%d tags left in the map after every release, want none", len(l.m))
	}
}
