package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
)

// TestBackupDuringWrites: `cccp backup` of a store that is being written
// to gives a file that opens and has every run committed before it began.
// The server is the store's Backup behind a real HTTP server (the route
// and its admin check are tested in internal/web).
func TestBackupDuringWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	newRun := func(i int) *store.Run {
		return &store.Run{Project: "org/app:latest", Kind: "branch", GitURL: "https://example.com/r.git", Branch: "main", Commit: "c" + strconv.Itoa(i)}
	}
	const before = 40
	for i := range before {
		if err := db.CreateRun(ctx, newRun(i)); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/backup" || r.Header.Get("Authorization") != "Bearer admin-token" {
			http.Error(w, "sign in with an admin token to do this", http.StatusUnauthorized)
			return
		}
		if _, err := db.Backup(r.Context(), w); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
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
		}
	})
	dst := filepath.Join(dir, "backup.db")
	n, err := backup(ctx, srv.Client(), srv.URL+"/", "admin-token", dst)
	close(stop)
	wg.Wait()
	if err != nil || n == 0 {
		t.Fatalf("backup: %d bytes, %v", n, err)
	}
	b, err := store.Open(dst, store.Options{})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer b.Close()
	runs, err := b.Runs(ctx, store.RunFilter{})
	if err != nil || len(runs) < before {
		t.Errorf("backup has %d runs (%v), want at least %d", len(runs), err, before)
	}

	if _, err := backup(ctx, srv.Client(), srv.URL, "wrong", filepath.Join(dir, "no.db")); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v, want the 401 named", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.db.*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
