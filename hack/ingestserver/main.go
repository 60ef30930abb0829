// Command ingestserver is the server hack/bench-ingest.sh loads with wrk:
// cccp's real webhook handler (bot.Bot) with the real GitHub signature
// check (secret "s3cret") and a real bbolt file, and nothing else, so the
// figure is the ingest path's. -discard switches storage off (the limit the
// stored figure is compared to); -dispatch also runs the dispatcher, which
// parses, routes (to nothing: the index is empty) and finishes deliveries.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"

	"github.com/cccp-project/cccp/bot"
	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/github"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18087", "address to serve on")
	dir := flag.String("dir", "", "folder for the bbolt file (required)")
	discard := flag.Bool("discard", false, "verify and answer without storing (the comparison limit)")
	dispatch := flag.Bool("dispatch", false, "also run the dispatcher")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *dir == "" {
		log.Fatal("-dir is required")
	}
	if err := run(*addr, *dir, *discard, *dispatch, *cpuprofile); err != nil {
		log.Fatal(err)
	}
}

func run(addr, dir string, discard, dispatch bool, cpuprofile string) error {
	db, err := store.Open(filepath.Join(dir, "bench.db"), store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	wh, err := github.NewWebhook([]byte("s3cret"))
	if err != nil {
		return err
	}
	b, err := bot.New(bot.Config{
		Store:             db,
		Pipeline:          nopPipeline{},
		Forges:            map[string]bot.Forge{event.GitHub: {Webhook: wh, Client: nopClient{}, Secret: "s3cret"}},
		Entries:           func() []*index.Entry { return nil },
		DiscardDeliveries: discard,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if dispatch {
		go b.Run(ctx)
	}
	if cpuprofile != "" {
		out, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(out)
		defer pprof.StopCPUProfile()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: b}
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	log.Printf("serving on %s", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// nopPipeline and nopClient stand in for the pipeline and the forge: with
// an empty index no delivery reaches them.
type nopPipeline struct{}

func (nopPipeline) Enqueue(context.Context, pipeline.Request) (*store.Run, error) {
	return nil, errors.New("no pipeline in the ingest benchmark")
}
func (nopPipeline) Cancel(context.Context, string, string) error { return nil }

type nopClient struct{}

func (nopClient) SetStatus(context.Context, string, event.Status) error { return nil }
func (nopClient) UpsertComment(context.Context, string, int, string, string) (int64, error) {
	return 0, nil
}
func (nopClient) CanWrite(context.Context, string, string) (bool, error) { return false, nil }
func (nopClient) PullRequest(context.Context, string, int) (*event.PullRequest, error) {
	return nil, errors.New("no forge in the ingest benchmark")
}
func (nopClient) Limit() int { return 65535 }
