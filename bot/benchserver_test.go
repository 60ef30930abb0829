package bot

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/github"
	"github.com/cccp-project/cccp/internal/store"
)

// TestIngestServer is the server hack/bench-ingest.sh loads with wrk. It
// runs only when CCCP_BENCH_ADDR is set: it serves the bot on that address
// with a real bbolt file in CCCP_BENCH_DIR and the GitHub secret "s3cret"
// until SIGTERM. CCCP_BENCH_DISCARD=1 switches storage off;
// CCCP_BENCH_DISPATCH=1 also runs the dispatcher (parse, route, finish).
func TestIngestServer(t *testing.T) {
	addr := os.Getenv("CCCP_BENCH_ADDR")
	if addr == "" {
		t.Skip("benchmark server for hack/bench-ingest.sh; set CCCP_BENCH_ADDR to run it")
	}
	dir := os.Getenv("CCCP_BENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := store.Open(filepath.Join(dir, "bench.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wh, err := github.NewWebhook([]byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{
		Store:             db,
		Pipeline:          &fakePipeline{db: db},
		Forges:            map[string]Forge{event.GitHub: {Webhook: wh, Client: newFakeForge(), Secret: "s3cret"}},
		Entries:           noEntries,
		DiscardDeliveries: os.Getenv("CCCP_BENCH_DISCARD") == "1",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if os.Getenv("CCCP_BENCH_DISPATCH") == "1" {
		go b.Run(ctx)
	}
	if f := os.Getenv("CCCP_BENCH_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		pprof.StartCPUProfile(out)
		defer pprof.StopCPUProfile()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: b}
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	t.Logf("serving on %s", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		t.Fatal(err)
	}
	pend, _ := db.PendingDeliveries(context.Background())
	t.Logf("pending deliveries at exit: %d", len(pend))
}
