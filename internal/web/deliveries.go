package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// Deliveries lists the webhook deliveries whose routing failed and
// replays the ones cccp gave up.
type Deliveries interface {
	TroubledDeliveries(ctx context.Context, limit int) ([]store.DeliveryTrouble, error)
	// ReplayDelivery makes a given-up delivery pending again
	// (store.ErrNotFound, store.ErrNotReplayable otherwise).
	ReplayDelivery(ctx context.Context, forge, id string) error
	// GivenUpReports are the reports the forge refused for good.
	GivenUpReports(ctx context.Context, limit int) ([]store.Report, error)
}

const deliveriesPage = 200

type deliveryRow struct {
	Forge       string    `json:"forge"`
	ID          string    `json:"id"`
	Event       string    `json:"event"`
	Received    time.Time `json:"received"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	Error       string    `json:"error"`
	GivenUp     bool      `json:"given_up"`
	GivenUpAt   time.Time `json:"given_up_at,omitzero"`
}

type reportRow struct {
	Target   string    `json:"target"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"`
	Updated  time.Time `json:"updated"`
}

type deliveriesView struct {
	Rows    []deliveryRow
	Reports []reportRow
	CanAct  bool
	CSRF    string
}

func (s *Server) troubled(ctx context.Context) ([]deliveryRow, error) {
	ds, err := s.cfg.Deliveries.TroubledDeliveries(ctx, deliveriesPage)
	if err != nil && ds == nil {
		return nil, err
	}
	rows := make([]deliveryRow, 0, len(ds))
	for _, d := range ds {
		rows = append(rows, deliveryRow{Forge: d.Forge, ID: d.ID, Event: d.Event, Received: d.Received,
			Attempts: d.Attempts, NextAttempt: d.NextAttempt, Error: s.cfg.Masker.String(d.LastError),
			GivenUp: d.Failed, GivenUpAt: d.FailedAt})
	}
	return rows, nil
}

func (s *Server) deliveries(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Deliveries == nil {
		s.errorPage(w, r, http.StatusNotFound, "This server receives no webhooks.")
		return
	}
	rows, err := s.troubled(r.Context())
	if err != nil {
		s.serverError(w, r, "reading deliveries", err)
		return
	}
	id := identityOf(r.Context())
	if id.Role == "" {
		id = s.auth.identify(r)
	}
	v := deliveriesView{Rows: rows, CanAct: id.Admin(), CSRF: id.CSRF}
	reps, err := s.cfg.Deliveries.GivenUpReports(r.Context(), deliveriesPage)
	if err != nil {
		s.log.Warn("given-up reports", "err", err)
	}
	for _, rep := range reps {
		v.Reports = append(v.Reports, reportRow{Target: rep.Key, Attempts: rep.Attempts, Error: s.cfg.Masker.String(rep.LastError), Updated: rep.Updated})
	}
	s.renderTitled(w, r, http.StatusOK, "deliveries", "Webhook deliveries in trouble", v)
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Deliveries == nil {
		s.errorPage(w, r, http.StatusNotFound, "This server receives no webhooks.")
		return
	}
	err := s.cfg.Deliveries.ReplayDelivery(r.Context(), r.PathValue("forge"), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.errorPage(w, r, http.StatusNotFound, "No such delivery.")
	case errors.Is(err, store.ErrNotReplayable):
		s.errorPage(w, r, http.StatusConflict, "This delivery was not given up; only given-up deliveries can be replayed.")
	case err != nil:
		s.serverError(w, r, "replaying a delivery", err)
	default:
		http.Redirect(w, r, "/deliveries", http.StatusSeeOther)
	}
}

func (s *Server) apiDeliveries(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Deliveries == nil {
		s.apiError(w, http.StatusNotFound, "this server receives no webhooks")
		return
	}
	rows, err := s.troubled(r.Context())
	if err != nil {
		s.serverError(w, r, "reading deliveries", err)
		return
	}
	s.apiJSON(w, http.StatusOK, rows)
}

func (s *Server) apiReplay(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Deliveries == nil {
		s.apiError(w, http.StatusNotFound, "this server receives no webhooks")
		return
	}
	err := s.cfg.Deliveries.ReplayDelivery(r.Context(), r.PathValue("forge"), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.apiError(w, http.StatusNotFound, "no such delivery")
	case errors.Is(err, store.ErrNotReplayable):
		s.apiError(w, http.StatusConflict, "the delivery was not given up")
	case err != nil:
		s.serverError(w, r, "replaying a delivery", err)
	default:
		s.apiJSON(w, http.StatusAccepted, map[string]string{"replayed": r.PathValue("forge") + "/" + r.PathValue("id")})
	}
}
