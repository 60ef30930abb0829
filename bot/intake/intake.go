// Package intake is the webhook endpoints' hot path: cap the body, verify
// the sender, store the delivery (fsynced, deduplicated by the forge's retry
// key or delivery ID), answer, and hand the stored delivery on in memory.
// Parsing waits for the dispatcher (bot/dispatch).
//
// Each forge supplies its own header rules (event.Headers: delivery ID,
// retry key, event name, what is stored); the intake holds no table of
// forges.
package intake

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/store"
)

// Webhook is what the intake asks of a forge adapter: the check of a
// delivery and the forge's header rules.
type Webhook interface {
	// Verify checks the signature or token; an error wraps
	// event.ErrBadSignature.
	Verify(headers http.Header, body []byte) error
	Headers() event.Headers
}

// HeaderVerifier is a Webhook whose check needs only the headers (GitLab's
// token): it runs before the body is read, so an unauthenticated sender
// cannot make cccp read a body.
type HeaderVerifier interface {
	VerifyHeaders(headers http.Header) error
}

// Store keeps accepted deliveries.
type Store interface {
	// AcceptDelivery stores d durably; dup reports a delivery already
	// stored under the same forge and ID.
	AcceptDelivery(ctx context.Context, d store.Delivery) (dup bool, err error)
}

// HandOff passes a stored delivery on without waiting. It reports whether
// it was taken; release, when taken, must be called once the body is no
// longer used (it returns the body's buffer to the pool).
type HandOff func(d store.Delivery, release func()) bool

// Config configures an Intake. Store is required.
type Config struct {
	Store Store
	// HandOff receives every newly stored delivery (default: none; the
	// dispatcher finds it in the store).
	HandOff HandOff
	// MaxBody caps a webhook body (default 25 MiB); larger ones get 413.
	MaxBody int64
	// BodyTimeout is how long a webhook body may take to arrive (default
	// 30 s); a slower sender is cut off.
	BodyTimeout time.Duration
	// MaxUnauthenticated caps the webhook requests whose body is being read
	// before they are authenticated (default 256); more get 503.
	MaxUnauthenticated int
	// Discard verifies and answers without storing anything: for the
	// ingest benchmark only.
	Discard bool
	// Registerer gets the intake's metrics (default: none).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Intake holds what the endpoints of all forges share: the cap on bodies
// read before authentication, the body buffers and the metrics.
type Intake struct {
	cfg        Config
	log        *slog.Logger
	unauth     chan struct{}
	bodies     sync.Pool
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

// New returns an Intake.
func New(cfg Config) *Intake {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 25 << 20
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 30 * time.Second
	}
	if cfg.MaxUnauthenticated <= 0 {
		cfg.MaxUnauthenticated = 256
	}
	if cfg.HandOff == nil {
		cfg.HandOff = func(store.Delivery, func()) bool { return false }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	in := &Intake{
		cfg:    cfg,
		log:    cfg.Logger,
		unauth: make(chan struct{}, cfg.MaxUnauthenticated),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cccp_webhook_deliveries_total",
			Help: "Webhook deliveries by forge and result (accepted, duplicate, refused, too_large, failed, busy).",
		}, []string{"forge", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cccp_webhook_ingest_seconds",
			Help:    "Time from request start to the stored (fsynced) delivery's answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"forge"}),
	}
	in.bodies.New = func() any { b := make([]byte, 0, 32<<10); return &b }
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(in.deliveries, in.latency)
	}
	return in
}

// Handler returns forge's webhook endpoint.
func (in *Intake) Handler(forge string, wh Webhook) http.Handler {
	h := &hook{in: in, forge: forge, wh: wh, hdr: wh.Headers(),
		accepted:  in.deliveries.WithLabelValues(forge, "accepted"),
		duplicate: in.deliveries.WithLabelValues(forge, "duplicate"),
		refused:   in.deliveries.WithLabelValues(forge, "refused"),
		tooLarge:  in.deliveries.WithLabelValues(forge, "too_large"),
		failed:    in.deliveries.WithLabelValues(forge, "failed"),
		busy:      in.deliveries.WithLabelValues(forge, "busy"),
		latency:   in.latency.WithLabelValues(forge),
	}
	if hv, ok := wh.(HeaderVerifier); ok {
		h.hv = hv
	}
	return h
}

// maxPooled is the largest body buffer kept for reuse.
const maxPooled = 1 << 20

// putBody returns a body buffer to the pool.
func (in *Intake) putBody(bp *[]byte, body []byte) {
	if bp != nil && cap(body) <= maxPooled { // keep no huge buffers around
		*bp = body[:0]
		in.bodies.Put(bp)
	}
}

// hook is one forge's webhook endpoint.
type hook struct {
	in    *Intake
	forge string
	wh    Webhook
	hv    HeaderVerifier
	hdr   event.Headers

	accepted, duplicate, refused, tooLarge, failed, busy prometheus.Counter
	latency                                              prometheus.Observer
}

// ServeHTTP is the ingest hot path: cap, verify, store (fsynced), answer.
func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	in := h.in
	max := in.cfg.MaxBody
	if r.ContentLength > max {
		h.tooLarge.Inc()
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if h.hv != nil {
		if err := h.hv.VerifyHeaders(r.Header); err != nil {
			h.refused.Inc()
			w.Header().Set("Connection", "close") // do not read the body to reuse the connection
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
	}
	// A sender is not yet authenticated while its body comes in: it gets a
	// deadline, and only so many read at once.
	select {
	case in.unauth <- struct{}{}:
	default:
		h.busy.Inc()
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
		http.Error(w, "too many webhook bodies being read", http.StatusServiceUnavailable)
		return
	}
	authenticated := false
	release := func() {
		if !authenticated {
			authenticated = true
			<-in.unauth
		}
	}
	defer release()
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(in.cfg.BodyTimeout))
	bp := in.bodies.Get().(*[]byte)
	body, err := readBody(r.Body, r.ContentLength, max, (*bp)[:0])
	handedOver := false
	defer func() {
		if !handedOver {
			in.putBody(bp, body)
		}
	}()
	switch {
	case errors.Is(err, errTooLarge):
		h.tooLarge.Inc()
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	err = h.wh.Verify(r.Header, body)
	release()
	if err != nil {
		h.refused.Inc()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	id := DeliveryID(h.hdr, r.Header, body)
	if in.cfg.Discard {
		h.accepted.Inc()
		h.latency.Observe(time.Since(start).Seconds())
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
	dup, err := in.cfg.Store.AcceptDelivery(context.WithoutCancel(r.Context()), d)
	if err != nil {
		h.failed.Inc()
		in.log.Error("store delivery", "forge", h.forge, "delivery", id, "err", err)
		http.Error(w, "could not store delivery", http.StatusServiceUnavailable)
		return
	}
	h.latency.Observe(time.Since(start).Seconds())
	if dup {
		h.duplicate.Inc()
		w.Write([]byte("duplicate\n"))
		return
	}
	h.accepted.Inc()
	// The receiver returns the buffer.
	handedOver = in.cfg.HandOff(d, func() { in.putBody(bp, body) })
	w.WriteHeader(http.StatusAccepted)
}

var errTooLarge = errors.New("body too large")

// readBody reads up to max bytes into buf (grown as needed). n is the
// declared length (-1: unknown). A declared length is allocated at once only
// up to maxPooled: a larger one costs memory as its bytes arrive, so a
// stranger who declares 25 MB and sends nothing holds no 25 MB buffer.
func readBody(r io.Reader, n, max int64, buf []byte) ([]byte, error) {
	if n >= 0 && n <= int64(maxPooled) {
		if int64(cap(buf)) < n {
			buf = make([]byte, 0, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return buf[:0], err
		}
		return buf, nil
	}
	if n >= 0 {
		max = min(max, n)
	}
	buf = buf[:0]
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
			if n >= 0 && int64(len(buf)) != n {
				return buf[:0], io.ErrUnexpectedEOF
			}
			return buf, nil
		}
		if err != nil {
			return buf[:0], err
		}
	}
}

// DeliveryID is the forge's retry key, else its delivery ID header, else a
// hash of the body for senders without one (a redelivery of the same body
// is then a duplicate). A header value too long or with control characters
// is passed over.
func DeliveryID(rules event.Headers, hdr http.Header, body []byte) string {
	for _, list := range [][]string{rules.Retry, rules.Delivery} {
		for _, k := range list {
			if v := hdr.Get(k); v != "" && validID(v) {
				return v
			}
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
