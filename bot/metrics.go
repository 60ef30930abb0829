package bot

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is the bot's registry: bot/intake, bot/dispatch and bot/report
// register their own counters on it, served at /metrics.
type metrics struct {
	reg *prometheus.Registry
}

func newMetrics() *metrics { return &metrics{reg: prometheus.NewRegistry()} }

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
