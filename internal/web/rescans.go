package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// ErrNotInIndex is returned by Actions for a project that is no longer in
// the index: it is not run again, and the answer says so (409), not as a
// server error.
var ErrNotInIndex = errors.New("no longer in the index; it is not run again")

// ErrRescanBusy is returned by StartRescan while a rescan is under way.
var ErrRescanBusy = errors.New("a rescan is already under way")

// Rescans reads rescans and the findings of each entry's scans; *store.DB
// implements it.
type Rescans interface {
	Rescan(ctx context.Context, id string) (*store.Rescan, error)
	Rescans(ctx context.Context, limit int) ([]*store.Rescan, error)
	Scans(ctx context.Context, project string, limit int) ([]*store.Scan, error)
}

// scanHistory is how many scans a project page shows.
const scanHistory = 10

// rescanView is one rescan's progress.
type rescanView struct {
	ID      string `json:"id"`
	Trigger string `json:"trigger"`
	Started string `json:"started"`
	// Finished is empty while it runs.
	Finished string `json:"finished,omitempty"`
	Done     int    `json:"done"`
	Total    int    `json:"total"`
	Changed  int    `json:"changed"`
	Skipped  int    `json:"skipped"`
	Failed   int    `json:"failed"`
	// Entries is each entry's part (the API's single rescan only).
	Entries []store.RescanEntry `json:"entries,omitempty"`
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func (s *Server) rescanViewOf(r *store.Rescan, entries bool) rescanView {
	v := rescanView{ID: r.ID, Trigger: r.Trigger, Started: when(r.Started), Finished: when(r.Finished), Done: r.Done(), Total: len(r.Entries)}
	for _, e := range r.Entries {
		switch {
		case e.Changed:
			v.Changed++
		case e.State == store.Skipped:
			v.Skipped++
		case e.State == store.Failed || e.State == store.Cancelled:
			v.Failed++
		}
	}
	if entries {
		v.Entries = make([]store.RescanEntry, len(r.Entries))
		for i, e := range r.Entries {
			e.Note = s.mask.String(e.Note)
			v.Entries[i] = e
		}
	}
	return v
}

// latestRescan is the newest rescan: the one under way (as it is now, when
// the server was given its live progress), else the last that ended.
func (s *Server) latestRescan(ctx context.Context) *rescanView {
	if s.cfg.Rescans == nil {
		return nil
	}
	if s.cfg.RescanProgress != nil {
		if r := s.cfg.RescanProgress(); r != nil {
			v := s.rescanViewOf(r, false)
			return &v
		}
	}
	list, err := s.cfg.Rescans.Rescans(ctx, 1)
	if err != nil {
		s.log.Warn("latest rescan", "err", err)
		return nil
	}
	if len(list) == 0 {
		return nil
	}
	v := s.rescanViewOf(list[0], false)
	return &v
}

// scanView is one scan on a project page.
type scanView struct {
	RunID, When, Digest, State string
	Findings                   int
	New, Resolved              []string
}

// scanViews are a project's latest scans, newest first.
func (s *Server) scanViews(ctx context.Context, project string) []scanView {
	if s.cfg.Rescans == nil {
		return nil
	}
	scans, err := s.cfg.Rescans.Scans(ctx, project, scanHistory)
	if err != nil {
		s.log.Warn("scans", "project", project, "err", err)
	}
	var out []scanView
	for _, sc := range scans {
		v := scanView{RunID: sc.RunID, When: when(sc.Time), Digest: sc.Digest, State: string(sc.State), Findings: len(sc.Findings)}
		for _, f := range sc.New {
			v.New = append(v.New, s.mask.String(fmt.Sprintf("%s: %s", f.Check, f.Text)))
		}
		for _, f := range sc.Resolved {
			v.Resolved = append(v.Resolved, s.mask.String(fmt.Sprintf("%s: %s", f.Check, f.Text)))
		}
		out = append(out, v)
	}
	return out
}

// apiRescans lists the newest rescans (GET /api/v1/rescans).
func (s *Server) apiRescans(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Rescans == nil {
		s.apiError(w, http.StatusNotFound, "rescans are not configured")
		return
	}
	list, err := s.cfg.Rescans.Rescans(r.Context(), 20)
	if err != nil && list == nil {
		s.serverError(w, r, "reading rescans", err)
		return
	}
	out := []rescanView{}
	for _, rs := range list {
		if live := s.live(rs.ID); live != nil {
			rs = live
		}
		out = append(out, s.rescanViewOf(rs, false))
	}
	s.apiJSON(w, http.StatusOK, out)
}

// apiRescan is one rescan with each entry's part (GET /api/v1/rescans/{id}).
func (s *Server) apiRescan(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Rescans == nil {
		s.apiError(w, http.StatusNotFound, "rescans are not configured")
		return
	}
	id := r.PathValue("id")
	rs := s.live(id)
	if rs == nil {
		var err error
		rs, err = s.cfg.Rescans.Rescan(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			s.apiError(w, http.StatusNotFound, "no rescan "+id)
			return
		} else if err != nil {
			s.serverError(w, r, "reading rescan "+id, err)
			return
		}
	}
	s.apiJSON(w, http.StatusOK, s.rescanViewOf(rs, true))
}

// live is rescan id's live progress when it is the one under way.
func (s *Server) live(id string) *store.Rescan {
	if s.cfg.RescanProgress == nil {
		return nil
	}
	if r := s.cfg.RescanProgress(); r != nil && r.ID == id {
		return r
	}
	return nil
}

// apiScans is a project's scan history (GET /api/v1/projects/{app}/{job}/scans).
func (s *Server) apiScans(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Rescans == nil {
		s.apiError(w, http.StatusNotFound, "rescans are not configured")
		return
	}
	name := s.projectKey(r.PathValue("app"), r.PathValue("job"))
	scans, err := s.cfg.Rescans.Scans(r.Context(), name, 100)
	if err != nil && scans == nil {
		s.serverError(w, r, "reading scans of "+name, err)
		return
	}
	out := []*store.Scan{}
	for _, sc := range scans {
		c := *sc
		for _, list := range []*[]store.Finding{&c.Findings, &c.New, &c.Resolved} {
			masked := make([]store.Finding, len(*list))
			for i, f := range *list {
				masked[i] = store.Finding{Check: f.Check, Text: s.mask.String(f.Text)}
			}
			*list = masked
		}
		out = append(out, &c)
	}
	s.apiJSON(w, http.StatusOK, out)
}

// apiStartRescan starts a rescan now (POST /api/v1/rescans, admins only).
func (s *Server) apiStartRescan(w http.ResponseWriter, r *http.Request) {
	if s.cfg.StartRescan == nil {
		s.apiError(w, http.StatusNotFound, "rescans are not configured")
		return
	}
	rs, err := s.cfg.StartRescan(identityOf(r.Context()).Actor())
	if errors.Is(err, ErrRescanBusy) {
		s.apiError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		s.serverError(w, r, "starting a rescan", err)
		return
	}
	w.Header().Set("Location", s.url("/api/v1/rescans/"+rs.ID))
	s.apiJSON(w, http.StatusAccepted, s.rescanViewOf(rs, false))
}
