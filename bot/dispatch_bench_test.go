package bot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/store"
)

// BenchmarkDispatch measures the dispatcher alone: stored 25 KB GitHub
// pushes (../shared/bench/push25k.json) read back, parsed, routed (to an
// entry of another repository) and finished, b.N of them, from a real
// bbolt file. deliveries/s is what it routes with the machine to itself.
func BenchmarkDispatch(b *testing.B) {
	body, err := os.ReadFile("/work/shared/bench/push25k.json")
	if err != nil {
		b.Skip("no push25k.json:", err)
	}
	db := openDB(b, filepath.Join(b.TempDir(), "cccp.db"))
	defer db.Close()
	ctx := context.Background()
	for i := range b.N {
		if _, err := db.AcceptDelivery(ctx, store.Delivery{Forge: "github", ID: fmt.Sprint("d", i), Event: "push",
			Headers: map[string]string{"X-GitHub-Event": "push"}, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	tb := newTestBotOn(b, db, "", newFakeForge(), func(c *Config) {
		c.Entries = func() []*index.Entry { return helloEntries[3:] }
		c.Now = time.Now
	})
	b.ResetTimer()
	start := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tb.Run(rctx) }()
	<-tb.ready // the first rescan handed everything over
	for {
		ds, _ := db.PendingDeliveries(ctx, 0, 1)
		if len(ds) == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}
