package web

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

func TestAPIBackup(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Backup = nil })
	get := func(f *fixture, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/api/v1/backup", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return f.do(req)
	}
	if rec := get(f, adminToken); rec.Code != 404 {
		t.Errorf("without a Backuper: %d, want 404", rec.Code)
	}

	f = newFixture(t)
	f.cfg.Backup = f.db
	srv, err := New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.h = srv.Handler()
	run := f.addRun("acme/web:latest", types.KindBranch, store.Cause{Kind: "push"}, nil, "")
	if rec := get(f, ""); rec.Code != 401 {
		t.Errorf("anonymous: %d, want 401", rec.Code)
	}
	rec := get(f, adminToken)
	if rec.Code != 200 {
		t.Fatalf("admin: %d %s", rec.Code, rec.Body)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, rec.Body.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer b.Close()
	if got, err := b.Run(context.Background(), run.ID); err != nil || got.Project != run.Project {
		t.Errorf("run %s in the backup: %+v %v", run.ID, got, err)
	}
}
