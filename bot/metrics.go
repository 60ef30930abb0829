package bot

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ---- metrics

type metrics struct {
	reg     *prometheus.Registry
	reports *prometheus.CounterVec
	outbox  prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cccp_reports_total",
			Help: "Forge reports by kind (status, comment) and result (sent, failed, unchanged).",
		}, []string{"kind", "result"}),
		outbox: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cccp_report_outbox_due",
			Help: "Reports due in the outbox, as last seen by the outbox worker.",
		}),
	}
	m.reg.MustRegister(m.reports, m.outbox)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
