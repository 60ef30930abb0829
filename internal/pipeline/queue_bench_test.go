package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
)

// BenchmarkEnqueueWith10kQueued stores one more push (a new run of a
// target with nothing queued) while 10,000 runs of 300 projects wait, with
// the real store: what a webhook costs on a long queue.
func BenchmarkEnqueueWith10kQueued(b *testing.B) {
	r, ctx := longQueue(b, 10000, func(db *store.DB) Store { return db })
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := r.Enqueue(ctx, push(fmt.Sprintf("new%03d/j%d:latest", i%300, i), "c")); err != nil {
			b.Fatal(err)
		}
	}
}

// longQueue is a Runner over a real store (wrapped by wrap) with one
// worker kept busy and queued runs of 300 projects waiting.
func longQueue(b *testing.B, queued int, wrap func(*store.DB) Store) (*Runner, context.Context) {
	b.Helper()
	dir := b.TempDir()
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	fb := &fakeBackend{rec: &recorder{}, name: "fake"}
	fb.block = make(chan struct{}) // the one worker stays busy: the queue only grows
	b.Cleanup(func() { close(fb.block) })
	r, err := New(Config{
		Resolver: fakeResolver{commit: "c0ffee"}, Builder: fb, Tester: fb, Images: &fakeImages{rec: fb.rec},
		Target: target{}, Store: wrap(db), Logs: runlog.StageLogs{Logs: runlog.New(filepath.Join(dir, "logs"), 1<<20)},
		Entries: func(key string) (*index.Entry, bool) {
			name, _, _ := strings.Cut(key, ":")
			app, job, _ := strings.Cut(name, "/")
			return entry(app, job, "file:///git/"+app+"-"+job), true
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for i := range queued {
		if _, err := r.Enqueue(ctx, push(fmt.Sprintf("p%03d/j%d:latest", i%300, i/300), "c")); err != nil {
			b.Fatal(err)
		}
	}
	return r, ctx
}
