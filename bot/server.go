package bot

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/store"
)

// hook is one forge's webhook endpoint.
type hook struct {
	b     *Bot
	forge string
	wh    Webhook
	hdr   event.Headers
	m     forgeMetrics
}

// maxPooled is the largest body buffer kept for reuse.
const maxPooled = 1 << 20

func newBodyPool() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}
}

// putBody returns a body buffer to the pool.
func (b *Bot) putBody(bp *[]byte, body []byte) {
	if bp != nil && cap(body) <= maxPooled { // keep no huge buffers around
		*bp = body[:0]
		b.bodies.Put(bp)
	}
}

// ServeHTTP is the ingest hot path: cap, verify, store (fsynced), answer.
// Parsing waits for the dispatcher.
func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	max := h.b.cfg.MaxBody
	if r.ContentLength > max {
		h.m.tooLarge.Inc()
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if hv, ok := h.wh.(HeaderVerifier); ok {
		if err := hv.VerifyHeaders(r.Header); err != nil {
			h.m.refused.Inc()
			w.Header().Set("Connection", "close") // do not read the body to reuse the connection
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
	}
	// A sender is not yet authenticated while its body comes in: it gets a
	// deadline, and only so many read at once.
	select {
	case h.b.unauth <- struct{}{}:
	default:
		h.m.busy.Inc()
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
		http.Error(w, "too many webhook bodies being read", http.StatusServiceUnavailable)
		return
	}
	authenticated := false
	release := func() {
		if !authenticated {
			authenticated = true
			<-h.b.unauth
		}
	}
	defer release()
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.b.cfg.BodyTimeout))
	bp := h.b.bodies.Get().(*[]byte)
	body, err := readBody(r.Body, r.ContentLength, max, (*bp)[:0])
	handedOver := false
	defer func() {
		if !handedOver {
			h.b.putBody(bp, body)
		}
	}()
	switch {
	case errors.Is(err, errTooLarge):
		h.m.tooLarge.Inc()
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	err = h.wh.Verify(r.Header, body)
	release()
	if err != nil {
		h.m.refused.Inc()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	id := h.deliveryID(r.Header, body)
	if h.b.cfg.DiscardDeliveries {
		h.m.accepted.Inc()
		h.m.latency.Observe(time.Since(start).Seconds())
		w.WriteHeader(http.StatusAccepted)
		return
	}
	d := store.Delivery{Forge: h.forge, ID: id, Event: r.Header.Get(h.hdr.Event), Body: body,
		Headers: make(map[string]string, len(h.hdr.Keep))}
	for _, k := range h.hdr.Keep {
		if v := r.Header.Get(k); v != "" {
			d.Headers[k] = v
		}
	}
	// Not cancelled when the sender hangs up: the write is under way and
	// the count and log should say how it ended.
	dup, err := h.b.cfg.Store.AcceptDelivery(context.WithoutCancel(r.Context()), d)
	if err != nil {
		h.m.failed.Inc()
		h.b.log.Error("store delivery", "forge", h.forge, "delivery", id, "err", err)
		http.Error(w, "could not store delivery", http.StatusServiceUnavailable)
		return
	}
	h.m.latency.Observe(time.Since(start).Seconds())
	if dup {
		h.m.duplicate.Inc()
		w.Write([]byte("duplicate\n"))
		return
	}
	h.m.accepted.Inc()
	handedOver = h.b.queue(job{d: d, buf: bp}) // the dispatcher returns the buffer
	w.WriteHeader(http.StatusAccepted)
}

var errTooLarge = errors.New("body too large")

// readBody reads up to max bytes into buf (grown as needed).
func readBody(r io.Reader, n, max int64, buf []byte) ([]byte, error) {
	if n >= 0 {
		if int64(cap(buf)) < n {
			buf = make([]byte, 0, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return buf[:0], err
		}
		return buf, nil
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if int64(len(buf)) > max {
			return buf[:0], errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf[:0], err
		}
	}
}

// deliveryID is the forge's retry key, else its delivery ID header, else a
// hash of the body for senders without one (a redelivery of the same body
// is then a duplicate).
func (h *hook) deliveryID(hdr http.Header, body []byte) string {
	for _, k := range append(h.hdr.Retry, h.hdr.Delivery...) {
		if v := hdr.Get(k); v != "" && validID(v) {
			return v
		}
	}
	return event.BodyID(body)
}

func validID(s string) bool {
	if len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// ---- metrics

type metrics struct {
	reg        *prometheus.Registry
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	reports    *prometheus.CounterVec
	queue      prometheus.Gauge
	outbox     prometheus.Gauge
	routed     *prometheus.CounterVec
}

type forgeMetrics struct {
	accepted, duplicate, refused, tooLarge, failed, busy prometheus.Counter
	latency                                              prometheus.Observer
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cccp_webhook_deliveries_total",
			Help: "Webhook deliveries by forge and result (accepted, duplicate, refused, too_large, failed, busy).",
		}, []string{"forge", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cccp_webhook_ingest_seconds",
			Help:    "Time from request start to the stored (fsynced) delivery's answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"forge"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cccp_reports_total",
			Help: "Forge reports by kind (status, comment) and result (sent, failed, unchanged).",
		}, []string{"kind", "result"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cccp_delivery_queue_depth",
			Help: "Stored deliveries not yet processed, as last seen by the dispatcher.",
		}),
		outbox: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cccp_report_outbox_due",
			Help: "Reports due in the outbox, as last seen by the outbox worker.",
		}),
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cccp_deliveries_processed_total",
			Help: "Processed deliveries by forge and outcome (routed, ignored, failed).",
		}, []string{"forge", "outcome"}),
	}
	m.reg.MustRegister(m.deliveries, m.latency, m.reports, m.queue, m.outbox, m.routed)
	return m
}

func (m *metrics) forge(name string) forgeMetrics {
	return forgeMetrics{
		accepted:  m.deliveries.WithLabelValues(name, "accepted"),
		duplicate: m.deliveries.WithLabelValues(name, "duplicate"),
		refused:   m.deliveries.WithLabelValues(name, "refused"),
		tooLarge:  m.deliveries.WithLabelValues(name, "too_large"),
		failed:    m.deliveries.WithLabelValues(name, "failed"),
		busy:      m.deliveries.WithLabelValues(name, "busy"),
		latency:   m.latency.WithLabelValues(name),
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
