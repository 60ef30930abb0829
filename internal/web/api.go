package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/onboard"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// The JSON API's types; API.md documents them.

type apiCause struct {
	Kind   types.CauseKind `json:"kind"`
	Text   string          `json:"text"`
	Commit string          `json:"commit,omitempty"`
	Ref    string          `json:"ref,omitempty"`
	PR     int             `json:"pr,omitempty"`
	Parent string          `json:"parent,omitempty"`
	Actor  string          `json:"actor,omitempty"`
	Forge  string          `json:"forge,omitempty"`
	Repo   string          `json:"repo,omitempty"`
}

type apiCheck struct {
	Name     types.CheckName `json:"name"`
	State    string          `json:"state"`
	Blocking bool            `json:"blocking"`
	Summary  string          `json:"summary,omitempty"`
	Findings []string        `json:"findings,omitempty"`
	Explain  []string        `json:"explain,omitempty"`
}

type apiStage struct {
	Name     types.StageName `json:"name"`
	State    string          `json:"state"`
	Started  *time.Time      `json:"started,omitempty"`
	Finished *time.Time      `json:"finished,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Error    string          `json:"error,omitempty"`
	Waiting  string          `json:"waiting,omitempty"`
	Digest   string          `json:"digest,omitempty"`
	Checks   []apiCheck      `json:"checks,omitempty"`
	LogURL   string          `json:"log_url"`
}

type apiImage struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

type apiRun struct {
	ID       string        `json:"id"`
	URL      string        `json:"url"`
	Project  string        `json:"project"`
	Kind     types.RunKind `json:"kind"`
	State    string        `json:"state"`
	Cause    apiCause      `json:"cause"`
	GitURL   string        `json:"git_url"`
	Branch   string        `json:"branch,omitempty"`
	Commit   string        `json:"commit,omitempty"`
	Created  *time.Time    `json:"created,omitempty"`
	Started  *time.Time    `json:"started,omitempty"`
	Finished *time.Time    `json:"finished,omitempty"`
	Error    string        `json:"error,omitempty"`
	Stages   []apiStage    `json:"stages"`
	Images   []apiImage    `json:"images"`
	Folded   []apiFold     `json:"folded,omitempty"`
	// UpToDate: the run's build key equalled the last delivered run's and
	// it built nothing; BuildKey is that digest.
	UpToDate bool `json:"up_to_date,omitempty"`
	// WaitsOn: the parents of its cascade a queued run waits on.
	WaitsOn  []string `json:"waits_on,omitempty"`
	BuildKey string   `json:"build_key,omitempty"`
}

// apiFold is a request folded into a queued run (store.Fold).
type apiFold struct {
	Cause  apiCause   `json:"cause"`
	Commit string     `json:"commit,omitempty"`
	By     string     `json:"by,omitempty"`
	At     *time.Time `json:"at,omitempty"`
}

type apiProject struct {
	Name     string       `json:"name"`
	URL      string       `json:"url"`
	Entry    *index.Entry `json:"entry,omitempty"`
	LastRun  *apiRun      `json:"last_run,omitempty"`
	Images   []apiImage   `json:"images"`
	Parents  []string     `json:"parents,omitempty"`
	Children []string     `json:"children,omitempty"`
	Checks   []apiCheck   `json:"latest_checks,omitempty"`
	RunsURL  string       `json:"runs_url"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (s *Server) apiChecks(cs []store.Check) []apiCheck {
	var out []apiCheck
	for _, c := range s.checkViews(cs) {
		out = append(out, apiCheck{Name: c.Name, State: c.State, Blocking: c.Blocking, Summary: c.Summary, Findings: c.Findings, Explain: c.Explain})
	}
	return out
}

func apiImages(ims []store.Image) []apiImage {
	out := []apiImage{}
	for _, im := range ims {
		out = append(out, apiImage{Ref: im.Ref, Digest: im.Digest})
	}
	return out
}

func (s *Server) apiCauseOf(c store.Cause) apiCause {
	return apiCause{Kind: c.Kind, Text: s.mask.String(causeText(c)), Commit: c.Commit, Ref: c.Ref, PR: c.PR,
		Parent: c.Parent, Actor: c.Actor, Forge: c.Forge, Repo: c.Repo}
}

func (s *Server) apiRunOf(r *store.Run) apiRun {
	c := r.Cause
	a := apiRun{
		ID: r.ID, URL: s.url("/runs/" + r.ID), Project: r.Project, Kind: r.Kind, State: string(r.State),
		Cause: apiCause{Kind: c.Kind, Text: s.mask.String(causeText(c)), Commit: c.Commit, Ref: c.Ref, PR: c.PR,
			Parent: c.Parent, Actor: c.Actor, Forge: c.Forge, Repo: c.Repo},
		GitURL: s.mask.String(r.GitURL), Branch: r.Branch, Commit: r.Commit,
		Created: timePtr(r.Created), Started: timePtr(r.Started), Finished: timePtr(r.Finished),
		Error: s.mask.String(r.Error), Stages: []apiStage{}, Images: apiImages(r.Images),
		UpToDate: r.UpToDate, BuildKey: r.BuildKey, WaitsOn: r.WaitsOn,
	}
	for _, f := range r.Folded {
		a.Folded = append(a.Folded, apiFold{Cause: s.apiCauseOf(f.Cause), Commit: f.Commit, By: f.By, At: timePtr(f.At)})
	}
	for _, st := range r.Stages {
		a.Stages = append(a.Stages, apiStage{
			Name: st.Name, State: string(st.State), Started: timePtr(st.Started), Finished: timePtr(st.Finished),
			Reason: st.Reason, Error: s.mask.String(st.Error), Digest: st.Digest, Checks: s.apiChecks(st.Checks),
			Waiting: st.Waiting,
			LogURL:  s.url("/api/v1/runs/" + r.ID + "/stages/" + string(st.Name) + "/log"),
		})
	}
	return a
}

func (s *Server) apiJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		s.log.Debug("write json", "err", err)
	}
}

type apiErr struct {
	Error    string          `json:"error"`
	Findings []index.Finding `json:"findings,omitempty"`
}

func (s *Server) apiError(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cccp"`)
	}
	s.apiJSON(w, status, apiErr{Error: msg})
}

func (s *Server) apiProjects(w http.ResponseWriter, r *http.Request) {
	rows, err := s.dashboardRows(r.Context())
	if err != nil {
		s.serverError(w, r, "reading projects", err)
		return
	}
	rows = filterRows(rows, r.URL.Query().Get("q"), r.URL.Query().Get("failed") == "1")
	out := struct {
		Projects []apiProject `json:"projects"`
	}{Projects: []apiProject{}}
	for _, row := range rows {
		p := apiProject{Name: row.Name, URL: s.url("/projects/" + row.Name), Images: apiImages(row.Images),
			RunsURL: s.url("/api/v1/projects/" + row.Name + "/runs")}
		if row.Run != nil {
			if run, err := s.cfg.Runs.Run(r.Context(), row.Run.ID); err == nil {
				a := s.apiRunOf(run)
				p.LastRun = &a
			}
		}
		out.Projects = append(out.Projects, p)
	}
	s.apiJSON(w, http.StatusOK, out)
}

func (s *Server) apiProject(w http.ResponseWriter, r *http.Request) {
	app, job := r.PathValue("app"), r.PathValue("job")
	v, ok, err := s.projectData(r.Context(), app, job, "")
	if err != nil {
		s.serverError(w, r, "reading project", err)
		return
	}
	if !ok {
		s.notFound(w, r, fmt.Sprintf("no project %s/%s", app, job))
		return
	}
	p := apiProject{Name: v.Name, URL: s.url("/projects/" + v.Name), Entry: v.Entry, Images: []apiImage{},
		Parents: v.Parents, Children: v.Children, RunsURL: s.url("/api/v1/projects/" + v.Name + "/runs")}
	if p.Entry != nil {
		e := *p.Entry
		e.GitURL = s.mask.String(e.GitURL)
		p.Entry = &e
	}
	for _, im := range v.Images {
		p.Images = append(p.Images, apiImage{Ref: im.Ref, Digest: im.Digest})
	}
	for _, c := range v.Checks {
		p.Checks = append(p.Checks, apiCheck{Name: c.Name, State: c.State, Blocking: c.Blocking, Summary: c.Summary, Findings: c.Findings, Explain: c.Explain})
	}
	if len(v.Runs) > 0 {
		if run, err := s.cfg.Runs.Run(r.Context(), v.Runs[0].ID); err == nil {
			a := s.apiRunOf(run)
			p.LastRun = &a
		}
	}
	s.apiJSON(w, http.StatusOK, p)
}

func (s *Server) apiProjectRuns(w http.ResponseWriter, r *http.Request) {
	name := s.projectKey(r.PathValue("app"), r.PathValue("job"))
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	f := store.RunFilter{Project: name, Limit: limit + 1, Before: q.Get("before")}
	if st := q.Get("state"); st != "" {
		f.States = []store.State{store.State(st)}
	}
	runs, err := s.cfg.Runs.Runs(r.Context(), f)
	if err != nil && runs == nil {
		s.apiError(w, http.StatusBadRequest, "bad run filter")
		return
	}
	if _, known := s.entry(name); !known && len(runs) == 0 && f.Before == "" {
		s.notFound(w, r, "no project "+name)
		return
	}
	out := struct {
		Runs []apiRun `json:"runs"`
		Next string   `json:"next,omitempty"`
	}{Runs: []apiRun{}}
	if len(runs) > limit {
		runs = runs[:limit]
		out.Next = s.url("/api/v1/projects/" + name + "/runs?limit=" + strconv.Itoa(limit) + "&before=" + runs[len(runs)-1].ID)
	}
	for _, run := range runs {
		out.Runs = append(out.Runs, s.apiRunOf(run))
	}
	s.apiJSON(w, http.StatusOK, out)
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) {
	run, ok := s.loadRun(w, r)
	if !ok {
		return
	}
	s.apiJSON(w, http.StatusOK, s.apiRunOf(run))
}

func (s *Server) apiRerun(w http.ResponseWriter, r *http.Request) {
	run, ok := s.loadRun(w, r)
	if !ok {
		return
	}
	if s.cfg.Actions == nil {
		s.apiError(w, http.StatusNotImplemented, "actions are not enabled")
		return
	}
	nr, err := s.cfg.Actions.Rerun(r.Context(), run, identityOf(r.Context()).Actor())
	if errors.Is(err, ErrNotInIndex) {
		s.apiError(w, http.StatusConflict, "project "+run.Project+" is "+ErrNotInIndex.Error())
		return
	}
	if err != nil {
		s.serverError(w, r, "re-running run "+run.ID, err)
		return
	}
	w.Header().Set("Location", s.url("/api/v1/runs/"+nr.ID))
	s.apiJSON(w, http.StatusCreated, s.apiRunOf(nr))
}

func (s *Server) apiCancel(w http.ResponseWriter, r *http.Request) {
	run, ok := s.loadRun(w, r)
	if !ok {
		return
	}
	if s.cfg.Actions == nil {
		s.apiError(w, http.StatusNotImplemented, "actions are not enabled")
		return
	}
	if err := s.cfg.Actions.Cancel(r.Context(), run.ID, identityOf(r.Context()).Actor()); err != nil {
		s.serverError(w, r, "cancelling run "+run.ID, err)
		return
	}
	if now, err := s.cfg.Runs.Run(r.Context(), run.ID); err == nil {
		run = now
	}
	s.apiJSON(w, http.StatusOK, s.apiRunOf(run))
}

// maxEntryBody bounds an onboarding request.
const maxEntryBody = 64 << 10

func (s *Server) apiOnboard(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Onboarder == nil {
		s.apiError(w, http.StatusNotImplemented, "onboarding is not enabled")
		return
	}
	var e index.Entry
	dec := json.NewDecoder(io.LimitReader(r.Body, maxEntryBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		s.apiError(w, http.StatusBadRequest, "body must be a JSON index entry: "+err.Error())
		return
	}
	e.Pos, e.FieldPos = index.Pos{}, nil
	out, err := s.cfg.Onboarder.Submit(r.Context(), e, identityOf(r.Context()).Actor())
	var ie *onboard.InvalidError
	switch {
	case errors.As(err, &ie):
		s.apiJSON(w, http.StatusUnprocessableEntity, apiErr{Error: "the entry does not pass the index lint", Findings: ie.Findings})
		return
	case err != nil:
		s.serverError(w, r, "onboarding "+entryKey(e), err)
		return
	}
	res := struct {
		Project     string `json:"project"`
		File        string `json:"file,omitempty"`
		RunID       string `json:"run_id,omitempty"`
		RunURL      string `json:"run_url,omitempty"`
		PullRequest string `json:"pull_request,omitempty"`
	}{Project: outcomeKey(out, e), File: out.File, RunID: out.RunID, PullRequest: out.PullRequest}
	if out.RunID != "" {
		res.RunURL = s.url("/runs/" + out.RunID)
	}
	s.apiJSON(w, http.StatusCreated, res)
}
