package store

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// TestBackupDuringWrites: a backup taken while runs are being written opens
// as a store, migrated and readable, with every run committed before it
// started and no torn record.
func TestBackupDuringWrites(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	newRun := func(i int) *Run {
		return &Run{Project: "org/app" + strconv.Itoa(i%5), Kind: "branch", GitURL: "https://example.com/r.git", Branch: "main", Commit: "c" + strconv.Itoa(i)}
	}
	const before = 50
	for i := range before {
		if err := db.CreateRun(ctx, newRun(i)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var written int
	go func() {
		defer wg.Done()
		for i := before; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := db.CreateRun(ctx, newRun(i)); err != nil {
				t.Error(err)
				return
			}
			written++
		}
	}()
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.Backup(ctx, f)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Size() != n {
		t.Errorf("backup wrote %d bytes, file has %d", n, fi.Size())
	}
	t.Logf("runs written during the backup: %d", written)

	b, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer b.Close()
	runs, err := b.Runs(ctx, RunFilter{})
	if err != nil {
		t.Fatalf("the backup's runs do not read: %v", err)
	}
	if len(runs) < before {
		t.Errorf("backup has %d runs, want at least the %d written before it", len(runs), before)
	}
	for _, r := range runs {
		orig, err := db.Run(ctx, r.ID)
		if err != nil || orig.Commit != r.Commit {
			t.Errorf("run %s in the backup (commit %s) is not the store's: %v %v", r.ID, r.Commit, orig, err)
		}
	}
}
