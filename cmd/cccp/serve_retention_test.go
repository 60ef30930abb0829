package main

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cccp-project/cccp/internal/retention"
)

// TestDataMetrics: the data folder's sizes follow the bot's metrics in one
// plain-text exposition, even when the scraper asks for gzip or
// OpenMetrics (which the bot's promhttp handler would otherwise send).
func TestDataMetrics(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cccp.db"), make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "cccp_webhooks_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	bot := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true})
	h := withDataMetrics(bot, retention.NewSizer(dir, dataParts, 0), slog.New(slog.DiscardHandler),
		func(w io.Writer) error { _, err := io.WriteString(w, "cccp_registry_gc_aborted_total 2\n"); return err })

	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, want := range []string{"cccp_webhooks_total 1\n", "cccp_registry_gc_aborted_total 2\n", `cccp_data_bytes{part="db"} 4096` + "\n", `cccp_data_bytes{part="registry"} 0` + "\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "# EOF") || rec.Header().Get("Content-Encoding") != "" {
		t.Errorf("not one plain exposition (encoding %q):\n%s", rec.Header().Get("Content-Encoding"), body)
	}
}
