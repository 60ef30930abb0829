package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
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
	ds, err := db.PendingDeliveries(context.Background(), 0, 0)
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
	body, err := os.ReadFile("../../../shared/bench/push25k.json")
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
	ds, _ := db.PendingDeliveries(ctx, 0, 0)
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
	got, err := db.PendingDeliveries(ctx, 0, 0)
	var de *DecodeError
	if !errors.As(err, &de) || de.Key != "2" {
		t.Errorf("err = %v, want DecodeError for key 2", err)
	}
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" {
		t.Errorf("good deliveries = %+v", got)
	}
}

// lastTxID is the ID of the last committed write transaction.
func lastTxID(t *testing.T, db *DB) int {
	t.Helper()
	var id int
	if err := db.bolt.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDeliveryBatch feeds the writer's commit one batch of accepts and
// finishes: one transaction, applied in order, each request answered on
// its own.
func TestDeliveryBatch(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	for _, id := range []string{"a", "bad"} {
		if _, err := db.AcceptDelivery(ctx, delivery(id, "{}")); err != nil {
			t.Fatal(err)
		}
	}
	db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketV1).Bucket(bucketDeliveryID).Put(deliveryIDKey("github", "bad"), []byte("short"))
	})
	rec := func(id string) []byte {
		r, err := encodeDelivery(delivery(id, "{}"))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	steps := []struct {
		name    string
		req     *writeReq
		wantDup bool
		wantErr error
	}{
		{"accept b", &writeReq{idKey: deliveryIDKey("github", "b"), record: rec("b")}, false, nil},
		{"finish a", &writeReq{finish: [][]byte{deliveryIDKey("github", "a")}}, false, nil},
		{"finish b accepted earlier in the batch", &writeReq{finish: [][]byte{deliveryIDKey("github", "b")}}, false, nil},
		{"finish unknown", &writeReq{finish: [][]byte{deliveryIDKey("github", "zzz")}}, false, ErrNotFound},
		{"finish unreadable id", &writeReq{finish: [][]byte{deliveryIDKey("github", "bad")}}, false, &DecodeError{}},
		{"accept c after failed finishes", &writeReq{idKey: deliveryIDKey("github", "c"), record: rec("c")}, false, nil},
		{"accept a again", &writeReq{idKey: deliveryIDKey("github", "a"), record: rec("a")}, true, nil},
		{"accept c again", &writeReq{idKey: deliveryIDKey("github", "c"), record: rec("c")}, true, nil},
		{"finish a again", &writeReq{finish: [][]byte{deliveryIDKey("github", "a")}}, false, nil},
	}
	batch := make([]*writeReq, len(steps))
	for i, s := range steps {
		s.req.done = make(chan writeRes, 1)
		batch[i] = s.req
	}
	tx0 := lastTxID(t, db)
	db.commitDeliveries(batch)
	if n := lastTxID(t, db) - tx0; n != 1 {
		t.Errorf("batch took %d transactions, want 1", n)
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			res := <-s.req.done
			if len(res.errs) == 1 {
				res.err = res.errs[0]
			}
			switch {
			case s.wantErr == nil && res.err != nil:
				t.Errorf("err = %v", res.err)
			case s.wantErr != nil && !errors.As(res.err, new(*DecodeError)) && !errors.Is(res.err, s.wantErr):
				t.Errorf("err = %v, want %v", res.err, s.wantErr)
			}
			if res.duplicate != s.wantDup {
				t.Errorf("duplicate = %v, want %v", res.duplicate, s.wantDup)
			}
		})
	}
	// "bad" keeps its body: its ID record could not be read.
	if got := pendingIDs(t, db); fmt.Sprint(got) != "[github/bad github/c]" {
		t.Errorf("pending = %v, want [github/bad github/c]", got)
	}
}

// TestFinishJoinsAcceptBatch holds bbolt's writer lock while a full batch
// waits for it, queues two accepts and a finish behind it, and checks that
// the three are committed together in one transaction.
func TestFinishJoinsAcceptBatch(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	if _, err := db.AcceptDelivery(ctx, delivery("a", "{}")); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
		}
	}
	locked, release := make(chan struct{}), make(chan struct{})
	go db.bolt.Update(func(*bolt.Tx) error { close(locked); <-release; return nil })
	<-locked
	unlock := sync.OnceFunc(func() { close(release) })
	defer unlock() // also when the test fails while holding the lock
	tx0 := lastTxID(t, db)

	// A batch that is full on its own: once the writer has taken it, it
	// waits for the lock and what comes next queues for the following batch.
	big := make([]byte, maxBatchBytes)
	rand.Read(big)
	rec, err := encodeDelivery(delivery("big", string(big)))
	if err != nil {
		t.Fatal(err)
	}
	full := &writeReq{idKey: deliveryIDKey("github", "big"), record: rec, done: make(chan writeRes, 1)}
	db.ingest <- full
	waitFor("the writer takes the full batch", func() bool { return len(db.ingest) == 0 })
	var wg sync.WaitGroup
	for _, id := range []string{"b", "c"} {
		wg.Go(func() {
			if _, err := db.AcceptDelivery(ctx, delivery(id, "{}")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Go(func() {
		if err := db.FinishDelivery(ctx, "github", "a"); err != nil {
			t.Error(err)
		}
	})
	waitFor("two accepts and a finish queued", func() bool { return len(db.ingest) == 3 })
	unlock()
	wg.Wait()
	if res := <-full.done; res.err != nil {
		t.Fatal(res.err)
	}
	// The test's own transaction, the full batch, then one for the three.
	if n := lastTxID(t, db) - tx0; n != 3 {
		t.Errorf("%d transactions, want 3", n)
	}
	if got := pendingIDs(t, db); fmt.Sprint(got) != "[github/big github/b github/c]" &&
		fmt.Sprint(got) != "[github/big github/c github/b]" {
		t.Errorf("pending = %v", got)
	}
}

// TestFinishDeliveryDurable copies the file while the DB is still open,
// right after FinishDelivery returned (what a crash would leave), and
// checks the copy has the finish.
func TestFinishDeliveryDurable(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := db.AcceptDelivery(ctx, delivery(id, "{}")); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, id := range []string{"a", "c"} {
		wg.Go(func() {
			if err := db.FinishDelivery(ctx, "github", id); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	if err := os.WriteFile(crashed, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(crashed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if got := pendingIDs(t, db2); fmt.Sprint(got) != "[github/b]" {
		t.Errorf("pending in the copy = %v, want [github/b]", got)
	}
	for _, id := range []string{"a", "b", "c"} {
		if dup, err := db2.AcceptDelivery(ctx, delivery(id, "{}")); err != nil || !dup {
			t.Errorf("redelivery of %s in the copy: duplicate %v, %v", id, dup, err)
		}
	}
}

// TestAcceptFinishConcurrent accepts and finishes through the writer at the
// same time: every finish is kept, every ID stays deduplicated.
func TestAcceptFinishConcurrent(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprint(i)
			if _, err := db.AcceptDelivery(ctx, delivery(id, "{}")); err != nil {
				t.Error(err)
				return
			}
			if i%2 == 0 {
				if err := db.FinishDelivery(ctx, "github", id); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	db = reopen(t, db, path)
	got := pendingIDs(t, db)
	if len(got) != n/2 {
		t.Errorf("%d pending, want %d", len(got), n/2)
	}
	for _, id := range got {
		var i int
		fmt.Sscanf(id, "github/%d", &i)
		if i%2 == 0 {
			t.Errorf("finished %s still pending", id)
		}
	}
	for i := range n {
		if dup, err := db.AcceptDelivery(ctx, delivery(fmt.Sprint(i), "{}")); err != nil || !dup {
			t.Errorf("redelivery of %d: duplicate %v, %v", i, dup, err)
		}
	}
}

// TestAcceptedBodiesIntact: AcceptDelivery reuses its encoding buffers
// once a record is committed; every stored body is still its own.
func TestAcceptedBodiesIntact(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	const n = 300
	body := func(i int) string {
		return fmt.Sprintf(`{"n":%d,"pad":%q}`, i, bytes.Repeat([]byte{byte('a' + i%26)}, 100+i*37%5000))
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := db.AcceptDelivery(ctx, delivery(fmt.Sprint(i), body(i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	db = reopen(t, db, path)
	ds, err := db.PendingDeliveries(ctx, 0, 0)
	if err != nil || len(ds) != n {
		t.Fatalf("%d pending, %v; want %d", len(ds), err, n)
	}
	for _, d := range ds {
		var i int
		fmt.Sscan(d.ID, &i)
		if string(d.Body) != body(i) {
			t.Fatalf("delivery %s holds %.60q…, want %.60q…", d.ID, d.Body, body(i))
		}
	}
}

func TestFinishDeliveryCanceled(t *testing.T) {
	db, _ := openTest(t)
	if _, err := db.AcceptDelivery(context.Background(), delivery("a", "{}")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := db.FinishDelivery(ctx, "github", "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if got := pendingIDs(t, db); fmt.Sprint(got) != "[github/a]" {
		t.Errorf("pending = %v", got)
	}
}

// TestPendingDeliveriesPaging pages with several limits while deliveries
// are finished and accepted between pages: every delivery pending for the
// whole walk comes exactly once, in order of acceptance.
func TestPendingDeliveriesPaging(t *testing.T) {
	ctx := context.Background()
	for _, limit := range []int{1, 2, 3, 7, 10, 11, 0} {
		t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
			db, _ := openTest(t)
			for i := range 10 {
				if _, err := db.AcceptDelivery(ctx, delivery(fmt.Sprint(i), "{}")); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.FinishDelivery(ctx, "github", "4"); err != nil {
				t.Fatal(err)
			}
			var got []string
			var after uint64
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatal("paging does not end")
				}
				ds, err := db.PendingDeliveries(ctx, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if limit > 0 && len(ds) > limit {
					t.Fatalf("page of %d, limit %d", len(ds), limit)
				}
				for _, d := range ds {
					got = append(got, d.ID)
				}
				if pages == 0 {
					// Between pages: one accepted (comes later), one finished.
					db.AcceptDelivery(ctx, delivery("late", "{}"))
					db.FinishDelivery(ctx, "github", "8")
				}
				if limit <= 0 || len(ds) < limit {
					break
				}
				after = ds[len(ds)-1].Seq
			}
			// "8" is finished after the first page: seen there or not at all.
			// "late" is seen unless the first page (9 pending) was the last.
			want := []string{"0", "1", "2", "3", "5", "6", "7", "8", "9", "late"}
			if limit > 0 && limit < 8 {
				want = slices.DeleteFunc(want, func(id string) bool { return id == "8" })
			}
			if limit <= 0 || limit >= 9 {
				want = want[:len(want)-1]
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("paged = %v, want %v", got, want)
			}
		})
	}
}

func TestPendingDeliveriesPageSkipsBad(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := db.AcceptDelivery(ctx, delivery(id, "{}")); err != nil {
			t.Fatal(err)
		}
	}
	db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketV1).Bucket(bucketDeliveries)
		return errors.Join(b.Put(seqKey(2), []byte("garbage")), b.Put(seqKey(3), []byte("garbage")))
	})
	tests := []struct {
		name    string
		after   uint64
		limit   int
		want    string
		wantBad int
	}{
		{"bad ones do not fill the page", 0, 2, "[a d]", 2},
		{"after the last", 4, 2, "[]", 0},
		{"after everything", math.MaxUint64, 2, "[]", 0},
		{"from the middle", 2, 0, "[d]", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := db.PendingDeliveries(ctx, tt.after, tt.limit)
			var got []string
			for _, d := range ds {
				got = append(got, d.ID)
			}
			if fmt.Sprint(got) != tt.want {
				t.Errorf("page = %v, want %s", got, tt.want)
			}
			bad := 0
			if err != nil {
				bad = len(err.(interface{ Unwrap() []error }).Unwrap())
			}
			if bad != tt.wantBad {
				t.Errorf("%d bad records named (%v), want %d", bad, err, tt.wantBad)
			}
		})
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
func BenchmarkAcceptDelivery(b *testing.B) { benchAccept(b, 0) }

// BenchmarkAcceptDeliveryWhileFinishing is BenchmarkAcceptDelivery with
// finishers finishing accepted deliveries at the same time, as the bot's
// dispatcher workers do (2 by default); finishes/s is how many they got done.
func BenchmarkAcceptDeliveryWhileFinishing(b *testing.B) {
	for _, n := range []int{2, 8} {
		b.Run(fmt.Sprint("finishers=", n), func(b *testing.B) { benchAccept(b, n) })
	}
}

func benchAccept(b *testing.B, finishers int) {
	body, err := os.ReadFile("../../../shared/bench/push25k.json")
	if err != nil {
		b.Skip("benchmark payload missing:", err)
	}
	db, _ := openTest(b)
	ctx := context.Background()
	accepted := make(chan string, 1<<16)
	var finished atomic.Int64
	var fwg sync.WaitGroup
	for range finishers {
		fwg.Go(func() {
			for id := range accepted {
				if err := db.FinishDelivery(ctx, "github", id); err != nil {
					b.Error(err)
				}
				finished.Add(1)
			}
		})
	}
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
			if finishers > 0 {
				select {
				case accepted <- id:
				default: // finishers behind: leave it pending
				}
			}
		}
	})
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	fin := finished.Load()
	close(accepted)
	fwg.Wait()
	b.ReportMetric(float64(n.Load())/elapsed, "deliveries/s")
	if finishers > 0 {
		b.ReportMetric(float64(fin)/elapsed, "finishes/s")
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
