package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
)

// BenchmarkDashboard renders the dashboard of 300 entries with 30 runs
// each in a real bbolt store; one entry in five last failed, so the
// dashboard looks back for its last delivered image.
func BenchmarkDashboard(b *testing.B) {
	dir := b.TempDir()
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var entries []*index.Entry
	for i := 0; i < 300; i++ {
		app := fmt.Sprintf("app%02d", i/10)
		e := &index.Entry{ID: fmt.Sprint(i%10 + 1), AppID: app, JobID: fmt.Sprintf("job%03d", i), GitURL: "https://github.com/" + app + "/x",
			GitBranch: "master", GitPath: "/", TargetFile: "Dockerfile", DesiredTag: "latest", BuildContext: "./",
			NotifyEmail: []string{"a@example.org"}, Pos: index.Pos{File: "index.d/" + app + ".yaml"}}
		if i%10 != 0 {
			e.DependsOn = []string{fmt.Sprintf("app%02d/job%03d:latest", i/10, i/10*10)}
		}
		entries = append(entries, e)
	}
	// Runs go in round-robin across projects, as they happen.
	digest := "sha256:" + fmt.Sprintf("%064x", 42)
	for k := 0; k < 30; k++ {
		for i, e := range entries {
			state := store.Passed
			if k == 29 && i%5 == 0 || k%7 == 3 {
				state = store.Failed
			}
			t := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(k*300+i) * time.Minute)
			r := &store.Run{Project: e.Key(), Kind: "branch", Cause: store.Cause{Kind: "push", Commit: "0123456789abcdef"},
				GitURL: e.GitURL, Branch: "master", State: state, Created: t, Started: t, Finished: t.Add(3 * time.Minute),
				Stages: []store.Stage{
					{Name: "build", State: store.Passed, Started: t, Finished: t.Add(time.Minute)},
					{Name: "test", State: state, Started: t.Add(time.Minute), Finished: t.Add(2 * time.Minute),
						Checks: []store.Check{{Name: "lint", State: store.Passed, Summary: "2 warnings", Findings: []string{"DL3008 pin versions"}}}},
					{Name: "deliver", State: store.Passed, Started: t.Add(2 * time.Minute), Finished: t.Add(3 * time.Minute)},
				}}
			if state == store.Failed {
				r.Stages[2].State = store.Skipped
			} else {
				r.Images = []store.Image{{Ref: "registry.example.org/" + e.Repository() + ":test", Digest: digest},
					{Ref: "registry.example.org/" + e.Repository() + ":rc", Digest: digest},
					{Ref: "registry.example.org/" + e.Repository() + ":latest", Digest: digest}}
			}
			if err := db.CreateRun(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	srv, err := New(Config{Runs: db, Logs: runlog.New(filepath.Join(dir, "logs"), 0),
		Projects: NewIndexProjects(index.NewIndex(dir, index.IndexD, entries)), Masker: redact.NewMasker("s3cr3t-token")})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/?failed=1", nil))
	if rec.Code != 200 || rec.Body.Len() < 300*200 {
		b.Fatalf("dashboard: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	// Every row found its runs (they are stored under the entry's key).
	if body := rec.Body.String(); strings.Contains(body, "never built") || strings.Count(body, `<tr data-search=`) != 300 ||
		strings.Count(body, `class="failed"`) != 60 {
		b.Fatalf("dashboard rows do not show their runs: %d rows, %d failed", strings.Count(body, `<tr data-search=`), strings.Count(body, `class="failed"`))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/?failed=1", nil))
	}
}
