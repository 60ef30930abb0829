package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cccp-project/cccp/internal/types"
)

func TestScansPerProjectNewestFirst(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "cccp.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, err := db.Scans(ctx, "org/app:latest", 0); err != nil || len(got) != 0 {
		t.Fatalf("scans before any: %v, %v", got, err)
	}
	// org/app-infra sorts after "org/app" + NUL: a prefix scan without the
	// separator would mix it in.
	for i, p := range []string{"org/app:latest", "org/app-infra:latest", "org/app:latest", "org/a:latest", "org/app:latest"} {
		if err := db.PutScan(ctx, &Scan{Project: p, RunID: string(rune('1' + i)), Findings: []Finding{{Check: types.CheckPackageUpdates, Text: "x"}}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Scans(ctx, "org/app:latest", 0)
	if err != nil {
		t.Fatal(err)
	}
	var runs string
	for _, s := range got {
		runs += s.RunID
	}
	if runs != "531" {
		t.Errorf("runs of org/app's scans = %q, want 531 (newest first, no other project)", runs)
	}
	if got, _ := db.Scans(ctx, "org/app:latest", 1); len(got) != 1 || got[0].RunID != "5" {
		t.Errorf("last scan = %+v, want run 5", got)
	}
	if got, _ := db.Scans(ctx, "org/b:latest", 0); len(got) != 0 {
		t.Errorf("scans of a project after every other: %+v", got)
	}
}

func TestRescanProgress(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "cccp.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Rescan(ctx, "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rescan before any: %v, want ErrNotFound", err)
	}
	r := &Rescan{Trigger: "schedule", Entries: []RescanEntry{{Project: "a", State: Queued}, {Project: "b", State: Skipped}}}
	if err := db.CreateRescan(ctx, r); err != nil || r.ID != "1" || r.Started.IsZero() {
		t.Fatalf("create: %v, %+v", err, r)
	}
	if _, err := db.UpdateRescan(ctx, "1", func(r *Rescan) error { r.Entries[0].State = Passed; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := db.Rescans(ctx, 0)
	if err != nil || len(got) != 1 || got[0].Done() != 2 {
		t.Errorf("rescans = %+v, %v; want one with 2 of 2 done", got, err)
	}
}

// SaveRescan writes the progress and a batch of scans at once, and refuses
// a batch with a bad scan as a whole.
func TestSaveRescanWritesProgressAndScansTogether(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "cccp.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := &Rescan{Trigger: "schedule", Entries: []RescanEntry{{Project: "a", State: Queued}}}
	if err := db.CreateRescan(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Entries[0].State = Passed
	if err := db.SaveRescan(ctx, r, []*Scan{{Project: "a", RunID: "1"}, {Project: "a\x00b", RunID: "2"}}); err == nil {
		t.Fatal("a scan with a NUL in its project was saved")
	}
	if got, _ := db.Rescan(ctx, r.ID); got.Entries[0].State != Queued {
		t.Errorf("a refused batch changed the progress: %+v", got.Entries)
	}
	if err := db.SaveRescan(ctx, r, []*Scan{{Project: "a", RunID: "1"}, {Project: "a", RunID: "2"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := db.Rescan(ctx, r.ID)
	scans, _ := db.Scans(ctx, "a", 0)
	if got.Entries[0].State != Passed || got.Trigger != "schedule" || len(scans) != 2 || scans[0].RunID != "2" {
		t.Errorf("after save: rescan %+v, scans %+v", got, scans)
	}
}
