package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func delivery(id string, body string) Delivery {
	return Delivery{Forge: "github", ID: id, Event: "push",
		Headers: map[string]string{"X-GitHub-Event": "push"}, Body: []byte(body),
		Received: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func pendingIDs(t *testing.T, db *DB) []string {
	t.Helper()
	ds, err := db.PendingDeliveries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Forge+"/"+d.ID)
	}
	return out
}

func TestDeliveries(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	body, err := os.ReadFile("/work/shared/bench/push25k.json")
	if err != nil {
		body = bytes.Repeat([]byte(`{"ref":"refs/heads/main","commits":[]}`), 600)
	}
	steps := []struct {
		name    string
		d       Delivery
		wantDup bool
	}{
		{"first", delivery("a", string(body)), false},
		{"second", delivery("b", "{}"), false},
		{"redelivered", delivery("a", "other"), true},
		{"same id other forge", Delivery{Forge: "gitlab", ID: "a", Body: []byte("gl")}, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			dup, err := db.AcceptDelivery(ctx, s.d)
			if err != nil || dup != s.wantDup {
				t.Fatalf("AcceptDelivery = %v, %v; want dup %v", dup, err, s.wantDup)
			}
		})
	}
	db = reopen(t, db, path)
	if got, want := pendingIDs(t, db), []string{"github/a", "github/b", "gitlab/a"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pending after reopen = %v, want %v", got, want)
	}
	ds, _ := db.PendingDeliveries(ctx)
	want := delivery("a", string(body))
	if d := ds[0]; d.Event != want.Event || !bytes.Equal(d.Body, want.Body) || d.Headers["X-GitHub-Event"] != "push" || !d.Received.Equal(want.Received) {
		t.Errorf("round trip: got %s %q %v %v (body %d bytes)", d.ID, d.Event, d.Headers, d.Received, len(d.Body))
	}
	if ds[2].Received.IsZero() {
		t.Error("Received not defaulted")
	}

	if err := db.FinishDelivery(ctx, "github", "a"); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishDelivery(ctx, "github", "a"); err != nil {
		t.Errorf("second finish: %v", err)
	}
	if err := db.FinishDelivery(ctx, "github", "zzz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("finish unknown: %v", err)
	}
	if got := pendingIDs(t, db); fmt.Sprint(got) != "[github/b gitlab/a]" {
		t.Errorf("pending after finish = %v", got)
	}
	if dup, _ := db.AcceptDelivery(ctx, delivery("a", "x")); !dup {
		t.Error("finished delivery accepted again")
	}

	// Prune: only finished ids older than the cut go; pending never.
	if n, err := db.PruneDeliveries(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("prune old = %d, %v; want 0", n, err)
	}
	if n, err := db.PruneDeliveries(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("prune = %d, %v; want 1", n, err)
	}
	if dup, _ := db.AcceptDelivery(ctx, delivery("a", "x")); dup {
		t.Error("pruned id still deduplicated")
	}
	if dup, _ := db.AcceptDelivery(ctx, delivery("b", "x")); !dup {
		t.Error("pending id lost its dedup after prune")
	}
}

func TestAcceptDeliveryConcurrentDuplicates(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	const ids, copies = 50, 8
	var fresh [ids]atomic.Int32
	var wg sync.WaitGroup
	for c := range copies {
		for i := range ids {
			wg.Go(func() {
				dup, err := db.AcceptDelivery(ctx, delivery(fmt.Sprint(i), fmt.Sprint("copy ", c)))
				if err != nil {
					t.Error(err)
				}
				if !dup {
					fresh[i].Add(1)
				}
			})
		}
	}
	wg.Wait()
	for i := range fresh {
		if n := fresh[i].Load(); n != 1 {
			t.Errorf("delivery %d stored %d times", i, n)
		}
	}
	if n := len(pendingIDs(t, db)); n != ids {
		t.Errorf("%d pending, want %d", n, ids)
	}
}

func TestDeliveryBadRecord(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := db.AcceptDelivery(ctx, delivery(id, "{}")); err != nil {
			t.Fatal(err)
		}
	}
	db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketV1).Bucket(bucketDeliveries).Put(seqKey(2), []byte("garbage"))
	})
	got, err := db.PendingDeliveries(ctx)
	var de *DecodeError
	if !errors.As(err, &de) || de.Key != "2" {
		t.Errorf("err = %v, want DecodeError for key 2", err)
	}
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" {
		t.Errorf("good deliveries = %+v", got)
	}
}

func TestAcceptAfterClose(t *testing.T) {
	db, _ := openTest(t)
	db.Close()
	if _, err := db.AcceptDelivery(context.Background(), delivery("a", "{}")); !errors.Is(err, ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", err)
	}
}

// BenchmarkAcceptDelivery: 64 concurrent writers (SetParallelism over
// GOMAXPROCS) storing the 25 KB push payload with a fresh ID each, every
// call returning only after fsync.
func BenchmarkAcceptDelivery(b *testing.B) {
	body, err := os.ReadFile("/work/shared/bench/push25k.json")
	if err != nil {
		b.Skip("benchmark payload missing:", err)
	}
	db, _ := openTest(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetBytes(int64(len(body)))
	b.SetParallelism(max(1, 64/runtimeProcs()))
	b.ResetTimer()
	start := time.Now()
	var mu sync.Mutex
	var lat []time.Duration
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
		for pb.Next() {
			t0 := time.Now()
			id := fmt.Sprintf("%016x", n.Add(1))
			d := Delivery{Forge: "github", ID: id, Event: "push", Body: body,
				Headers: map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": id}}
			if _, err := db.AcceptDelivery(ctx, d); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "deliveries/s")
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
