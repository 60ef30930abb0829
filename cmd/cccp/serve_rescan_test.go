package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/rescan"
	"github.com/cccp-project/cccp/internal/retention"
	"github.com/cccp-project/cccp/internal/store"
)

// unusedRunner is a pipeline nothing is queued on.
type unusedRunner struct{}

func (unusedRunner) Enqueue(context.Context, pipeline.Request) (*store.Run, error) {
	return nil, errors.New("not used")
}
func (unusedRunner) Wait(context.Context, string) (*store.Run, error) {
	return nil, errors.New("not used")
}

// /metrics carries the rescans' skip counter after the data folder's
// sizes, when rescans are on, and nothing of rescans when they are off.
func TestRescanMetrics(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cccp.db"), make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := rescan.New(rescan.Config{Runner: unusedRunner{}, Store: db, Entries: func() []*index.Entry { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name    string
		r       *rescans
		want    []string
		notWant string
	}{
		{name: "on", r: &rescans{scanner: s, log: log}, want: []string{`cccp_data_bytes{part="db"} 4096` + "\n", "\ncccp_rescan_skipped_total 0\n"}},
		{name: "off", r: &rescans{}, want: []string{`cccp_data_bytes{part="db"} 4096` + "\n"}, notWant: "cccp_rescan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := withDataMetrics(nil, retention.NewSizer(dir, dataParts, 0), log, tc.r.metrics()...)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			body := rec.Body.String()
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("metrics lack %q:\n%s", w, body)
				}
			}
			if tc.notWant != "" && strings.Contains(body, tc.notWant) {
				t.Errorf("metrics have %q:\n%s", tc.notWant, body)
			}
		})
	}
}
