package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// Outbox lists the email outbox (internal/notify): mails waiting for a
// retry and mails the server refused for good, with its answer.
type Outbox interface {
	// Mails lists newest first, below ID before ("": from the newest).
	Mails(ctx context.Context, before string, limit int) ([]store.Mail, error)
}

// apiMail is one outbox mail as the API shows it: no body (it quotes
// logs, readable on the run page), the recipients and why it is waiting.
type apiMail struct {
	ID          string    `json:"id"`
	Run         string    `json:"run,omitempty"`
	To          []string  `json:"to"`
	Subject     string    `json:"subject"`
	Created     time.Time `json:"created"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Failed      bool      `json:"failed"`
	GivenUpAt   time.Time `json:"given_up_at,omitzero"`
}

// The outbox listing's page size: ?limit=N, 1 to maxMailRows, default
// defaultMailRows.
const (
	defaultMailRows = 100
	maxMailRows     = 500
)

func (s *Server) apiMail(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Outbox == nil {
		s.apiError(w, http.StatusNotFound, "this server sends no mail")
		return
	}
	q := r.URL.Query()
	limit := defaultMailRows
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxMailRows {
			s.apiError(w, http.StatusBadRequest, "limit: a number from 1 to "+strconv.Itoa(maxMailRows))
			return
		}
		limit = n
	}
	before := q.Get("before")
	if before != "" {
		if n, err := strconv.ParseUint(before, 10, 64); err != nil || n == 0 {
			s.apiError(w, http.StatusBadRequest, "before: a mail ID")
			return
		}
	}
	mails, err := s.cfg.Outbox.Mails(r.Context(), before, limit+1)
	if err != nil && len(mails) == 0 {
		s.serverError(w, r, "reading the mail outbox", err)
		return
	}
	out := struct {
		Mails []apiMail `json:"mails"`
		Next  string    `json:"next,omitempty"`
	}{Mails: make([]apiMail, 0, min(len(mails), limit))}
	if len(mails) > limit {
		mails = mails[:limit]
		out.Next = s.url("/api/v1/mail?limit=" + strconv.Itoa(limit) + "&before=" + mails[len(mails)-1].ID)
	}
	for _, m := range mails {
		out.Mails = append(out.Mails, apiMail{ID: m.ID, Run: m.RunID, To: m.To, Subject: m.Subject, Created: m.Created,
			Attempts: m.Attempts, NextAttempt: m.NextAttempt, LastError: s.cfg.Masker.String(m.LastError), Failed: m.Failed,
			GivenUpAt: m.GaveUp})
	}
	s.apiJSON(w, http.StatusOK, out)
}
