package web

import (
	"context"
	"net/http"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// Outbox lists the email outbox (internal/notify): mails waiting for a
// retry and mails the server refused for good, with its answer.
type Outbox interface {
	Mails(ctx context.Context, limit int) ([]store.Mail, error)
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
}

// maxMailRows bounds the outbox listing.
const maxMailRows = 500

func (s *Server) apiMail(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Outbox == nil {
		s.apiError(w, http.StatusNotFound, "this server sends no mail")
		return
	}
	mails, err := s.cfg.Outbox.Mails(r.Context(), maxMailRows)
	if err != nil && len(mails) == 0 {
		s.serverError(w, r, "reading the mail outbox", err)
		return
	}
	out := make([]apiMail, 0, len(mails))
	for _, m := range mails {
		out = append(out, apiMail{ID: m.ID, Run: m.RunID, To: m.To, Subject: m.Subject, Created: m.Created,
			Attempts: m.Attempts, NextAttempt: m.NextAttempt, LastError: s.cfg.Masker.String(m.LastError), Failed: m.Failed})
	}
	s.apiJSON(w, http.StatusOK, out)
}
