package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cccp-project/cccp/internal/types"
)

// fillFinished stores n finished deliveries, each linked to the run its
// request made, straight into the buckets (one transaction): the first
// old of them finished and linked before cut, the others after.
func fillFinished(tb testing.TB, db *DB, n, old int, cut time.Time) {
	tb.Helper()
	err := db.update(context.Background(), func(root *bolt.Bucket) error {
		b := deliveryBuckets(root)
		for i := range n {
			at := cut.Add(time.Minute)
			if i < old {
				at = cut.Add(-time.Minute)
			}
			id := fmt.Sprintf("%s-%08d", at.Format("150405"), i)
			seq, err := b.bodies.NextSequence()
			if err != nil {
				return err
			}
			v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, seq), uint64(at.UnixNano()))
			if err := b.ids.Put(deliveryIDKey("github", id), v); err != nil {
				return err
			}
			c := Cause{Kind: types.CausePush, Commit: fmt.Sprint("c", i), Forge: "github", DeliveryID: id}
			if err := linkDelivery(root, c, "org/app:latest", types.KindBranch, uint64(i+1), at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkPruneDeliveries is the hourly prune of the deliveries and their
// run links with 20,000 of each kept and 1% of them past the window. (It
// was PruneDeliveries and then PruneDeliveryRuns, a second transaction
// that decoded every link: 150-220 ms/op before, 15-27 ms/op now, on two
// shared cores.)
func BenchmarkPruneDeliveries(b *testing.B) {
	const n, old = 20000, 200
	ctx := context.Background()
	cut := time.Now().Add(-time.Hour)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, _ := openTest(b)
		fillFinished(b, db, n, old, cut)
		b.StartTimer()
		d, err := db.PruneDeliveries(ctx, cut)
		if err != nil || d != old {
			b.Fatalf("pruned %d deliveries (%v); want %d", d, err, old)
		}
		b.StopTimer()
		db.Close()
	}
}
