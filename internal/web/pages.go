package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// page is what every template gets.
type page struct {
	Title      string
	User       identity
	CanOnboard bool
	Webhooks   bool // the deliveries page is there
	Path       string
	Data       any
	// SigningKeyID is the fingerprint of the key delivered images are
	// signed with; "" when this cccp signs none.
	SigningKeyID string
	Status       bool // the status page is there
}

var funcs = template.FuncMap{
	"short":   shortDigest,
	"stageid": func(stage string, n int) string { return stage + "-L" + strconv.Itoa(n) },
	"join":    strings.Join,
}

func parseTemplates() (map[string]*template.Template, error) {
	names := []string{"dashboard", "project", "run", "failures", "deliveries", "onboard", "signin", "error", "status"}
	out := make(map[string]*template.Template, len(names))
	for _, n := range names {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}

// render writes a page; it renders into a buffer first so a template error
// becomes a clean 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	s.renderTitled(w, r, status, name, "", data)
}

func (s *Server) renderTitled(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	id := identityOf(r.Context())
	if id.Role == "" {
		id = s.auth.identify(r)
	}
	var buf bytes.Buffer
	err := s.pages[name].Execute(&buf, page{
		Title: title, User: id, CanOnboard: s.cfg.Onboarder != nil, Webhooks: s.cfg.Deliveries != nil, Path: r.URL.Path, Data: data,
		SigningKeyID: s.signingKeyID, Status: s.cfg.DataSizes != nil,
	})
	if err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorView struct {
	Status  int
	Message string
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.renderTitled(w, r, status, "error", http.StatusText(status), errorView{Status: status, Message: msg})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	if isAPI(r) {
		s.apiError(w, http.StatusNotFound, msg)
		return
	}
	s.errorPage(w, r, http.StatusNotFound, msg)
}

func (s *Server) notFoundPage(w http.ResponseWriter, r *http.Request) {
	s.notFound(w, r, "There is no page at "+r.URL.Path+".")
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error(what, "err", s.mask.String(err.Error()))
	if isAPI(r) {
		s.apiError(w, http.StatusInternalServerError, what+" failed")
		return
	}
	s.errorPage(w, r, http.StatusInternalServerError, what+" failed; the server log has the details.")
}

// loadRun reads the run named in the path, or writes a 404.
func (s *Server) loadRun(w http.ResponseWriter, r *http.Request) (*store.Run, bool) {
	id := r.PathValue("id")
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		s.notFound(w, r, fmt.Sprintf("There is no run %q.", id))
		return nil, false
	}
	run, err := s.cfg.Runs.Run(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.notFound(w, r, fmt.Sprintf("There is no run %s.", id))
		return nil, false
	}
	if err != nil {
		s.serverError(w, r, "reading run "+id, err)
		return nil, false
	}
	return run, true
}

// --- dashboard ---

type dashRow struct {
	Name, GitURL, Branch string
	Run                  *runRow
	Failed               bool
	Image, Digest        string
	Images               []store.Image
	Search               string
}

type dashView struct {
	Rescan  *rescanView // the newest rescan; nil: none or not configured
	Q       string
	Failed  bool
	Rows    []dashRow
	Total   int
	Entries int
	Queue   queueView
}

// dashboardRows is the dashboard's data: every entry with its newest
// branch run (or its newest run of any kind when it has no branch run) and
// the images its last passed branch run delivered.
func (s *Server) dashboardRows(ctx context.Context) ([]dashRow, error) {
	entries := s.cfg.Projects.Entries()
	now := s.now()
	branch, err := s.cfg.Runs.LatestRuns(ctx, string(types.KindBranch))
	if err != nil && branch == nil {
		return nil, fmt.Errorf("latest runs: %w", err)
	} else if err != nil {
		s.log.Warn("latest runs: some records unreadable", "err", err)
	}
	// Entries without a branch run show their newest run of any kind.
	var anyKind map[string]*store.Run
	for i := range entries {
		if branch[entries[i].Key()] == nil {
			anyKind, err = s.cfg.Runs.LatestRuns(ctx, "")
			if err != nil && anyKind == nil {
				return nil, fmt.Errorf("latest runs: %w", err)
			}
			break
		}
	}
	rows := make([]dashRow, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		name := e.Key()
		row := dashRow{Name: name, GitURL: s.mask.String(e.GitURL), Branch: e.GitBranch,
			Search: strings.ToLower(name + " " + s.mask.String(e.GitURL))} // the hidden parts match nothing
		run := branch[name]
		if run == nil {
			run = anyKind[name]
		}
		if run != nil {
			rr := s.runRow(now, run)
			row.Run = &rr
			row.Failed = run.State == store.Failed
		}
		if b := branch[name]; b != nil {
			delivered := b
			if b.State != store.Passed {
				delivered = s.lastDelivered(ctx, name)
			}
			if delivered != nil {
				row.Images = deliveredImages(e, delivered)
				if len(row.Images) > 0 {
					row.Image, row.Digest = row.Images[0].Ref, row.Images[0].Digest
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// lastDelivered is the newest passed branch run of a project.
func (s *Server) lastDelivered(ctx context.Context, project string) *store.Run {
	// Most passed runs are branch runs: look at one first, then further.
	for _, limit := range []int{1, 20} {
		runs, _ := s.cfg.Runs.Runs(ctx, store.RunFilter{Project: project, States: []store.State{store.Passed}, Limit: limit})
		for _, r := range runs {
			if r.Kind == types.KindBranch {
				return r
			}
		}
		if len(runs) < limit {
			break
		}
	}
	return nil
}

// deliveredImages are a run's images under the entry's final tags.
func deliveredImages(e *index.Entry, r *store.Run) []store.Image {
	tags := e.Tags()
	var out []store.Image
	for _, im := range r.Images {
		if slices.Contains(tags, imageTag(im.Ref)) {
			out = append(out, im)
		}
	}
	return out
}

func filterRows(rows []dashRow, q string, failedFirst bool) []dashRow {
	q = strings.ToLower(strings.TrimSpace(q))
	out := rows[:0:0]
	for _, r := range rows {
		if q == "" || strings.Contains(r.Search, q) {
			out = append(out, r)
		}
	}
	if failedFirst {
		slices.SortStableFunc(out, func(a, b dashRow) int {
			switch {
			case a.Failed == b.Failed:
				return 0
			case a.Failed:
				return -1
			}
			return 1
		})
	}
	return out
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	rows, err := s.dashboardRows(r.Context())
	if err != nil {
		s.serverError(w, r, "reading the dashboard", err)
		return
	}
	q := r.URL.Query()
	v := dashView{Q: q.Get("q"), Failed: q.Get("failed") == "1", Entries: len(rows), Rescan: s.latestRescan(r.Context())}
	v.Rows = filterRows(rows, v.Q, v.Failed)
	v.Total = len(v.Rows)
	v.Queue = s.queue(r.Context())
	s.renderTitled(w, r, http.StatusOK, "dashboard", "Projects", v)
}

// --- project ---

type checkView struct {
	Name           types.CheckName
	State, Summary string
	Blocking       bool
	Findings       []string
	Explain        []string // a failed check's own last lines
}

func (s *Server) checkViews(cs []store.Check) []checkView {
	out := make([]checkView, 0, len(cs))
	for _, c := range cs {
		cv := checkView{Name: c.Name, State: string(c.State), Summary: s.mask.String(c.Summary), Blocking: c.Blocking}
		for _, f := range c.Findings {
			cv.Findings = append(cv.Findings, s.mask.String(f))
		}
		for _, l := range c.Explain {
			cv.Explain = append(cv.Explain, s.mask.String(l))
		}
		out = append(out, cv)
	}
	return out
}

type imageView struct {
	Ref, Tag, Digest, RunID string
}

type projectView struct {
	Name, App, Job string
	Entry          *index.Entry
	GitURL         string
	Parents        []string
	Children       []string
	Runs           []runRow
	More           string // ID to page on from (?before=)
	FindingsRun    string
	Checks         []checkView
	Images         []imageView
	SBOM           *sbomView     // nil: no delivered image or no SBOMs
	Scans          []scanView    // rescans' findings, newest first
	Chart          template.HTML // chart.go; "" when there is too little to draw
	RemovedOn      string        // when it left the index, if known
}

const projectRuns = 30

// projectData gathers a project's page; ok is false when the project is
// neither in the index nor has runs.
func (s *Server) projectData(ctx context.Context, app, job, before string) (*projectView, bool, error) {
	name := s.projectKey(app, job)
	v := &projectView{Name: name, App: app, Job: job}
	if e, ok := s.entry(name); ok {
		v.Entry = &e
		v.GitURL = s.mask.String(e.GitURL)
		v.Parents = s.cfg.Projects.Parents(name)
		v.Children = s.cfg.Projects.Children(name)
		v.SBOM = s.sbomView(ctx, name)
	}
	runs, err := s.cfg.Runs.Runs(ctx, store.RunFilter{Project: name, Limit: projectRuns + 1, Before: before})
	if err != nil && runs == nil {
		return nil, false, err
	}
	if v.Entry == nil && len(runs) == 0 && before == "" {
		return nil, false, nil
	}
	if len(runs) > projectRuns {
		runs = runs[:projectRuns]
		v.More = runs[len(runs)-1].ID
	}
	now := s.now()
	v.Chart = runChart(runs)
	seen := map[string]bool{}
	for _, run := range runs {
		v.Runs = append(v.Runs, s.runRow(now, run))
		if v.Checks == nil && run.Kind != types.KindRescan { // a rescan's scans are in Scans
			if st, ok := stageOf(run, "test"); ok && len(st.Checks) > 0 {
				v.Checks, v.FindingsRun = s.checkViews(st.Checks), run.ID
			}
		}
		for _, im := range run.Images {
			if !seen[im.Ref] {
				seen[im.Ref] = true
				v.Images = append(v.Images, imageView{Ref: im.Ref, Tag: imageTag(im.Ref), Digest: im.Digest, RunID: run.ID})
			}
		}
	}
	v.Scans = s.scanViews(ctx, name)
	if v.Entry == nil && s.cfg.RemovedOn != nil {
		if t, ok := s.cfg.RemovedOn(ctx, name); ok {
			v.RemovedOn = t.UTC().Format("2006-01-02")
		}
	}
	return v, true, nil
}

func (s *Server) project(w http.ResponseWriter, r *http.Request) {
	app, job := r.PathValue("app"), r.PathValue("job")
	v, ok, err := s.projectData(r.Context(), app, job, r.URL.Query().Get("before"))
	if err != nil {
		s.serverError(w, r, "reading project "+app+"/"+job, err)
		return
	}
	if !ok {
		s.notFound(w, r, fmt.Sprintf("There is no project %s/%s in the index.", app, job))
		return
	}
	s.renderTitled(w, r, http.StatusOK, "project", v.Name, v)
}

// --- run ---

type stageView struct {
	Name, State, Duration, Error string
	Reason                       string
	Waiting                      string // for a slot of its backend
	Checks                       []checkView
	Log                          *stageLog
	NoLog                        bool
	Open                         bool
	Live                         bool // running: the page streams its log
}

type runView struct {
	Run       runRow
	GitURL    string
	Created   string
	Done      bool
	Stages    []stageView
	Images    []imageView
	Failed    *stageView // the failed stage, shown first
	FirstLine string     // anchor of the first highlighted line
	CanAct    bool
	CSRF      string
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	run, ok := s.loadRun(w, r)
	if !ok {
		return
	}
	now := s.now()
	id := identityOf(r.Context())
	v := runView{
		Run: s.runRow(now, run), GitURL: s.mask.String(run.GitURL), Done: run.State.Done(),
		Created: run.Created.UTC().Format("2006-01-02 15:04:05 UTC"),
		CanAct:  s.cfg.Actions != nil && id.Admin(), CSRF: id.CSRF,
	}
	for _, st := range run.Stages {
		sv := stageView{Name: string(st.Name), State: string(st.State), Duration: stageDuration(now, st), Reason: st.Reason,
			Waiting: st.Waiting,
			Error:   s.mask.String(st.Error), Checks: s.checkViews(st.Checks),
			Open: st.State == store.Failed || st.State == store.Running, Live: st.State == store.Running}
		if st.State != store.Queued && st.State != store.Skipped {
			sv.Log = s.pageLog(run.ID, st)
			sv.NoLog = sv.Log == nil && st.State.Done()
			if sv.Log != nil && sv.Log.Done {
				sv.Live = false
			}
		}
		v.Stages = append(v.Stages, sv)
	}
	for i := range v.Stages {
		if v.Stages[i].State == string(store.Failed) {
			v.Failed = &v.Stages[i]
			if l := v.Failed.Log; l != nil && l.First > 0 {
				v.FirstLine = v.Failed.Name + "-L" + strconv.Itoa(l.First)
			}
			break
		}
	}
	for _, im := range run.Images {
		v.Images = append(v.Images, imageView{Ref: im.Ref, Tag: imageTag(im.Ref), Digest: im.Digest, RunID: run.ID})
	}
	s.renderTitled(w, r, http.StatusOK, "run", "Run "+run.ID+" · "+run.Project, v)
}

// pageLog reads what the run page shows of a stage's log; nil when there
// is none.
func (s *Server) pageLog(runID string, st store.Stage) *stageLog {
	f, err := s.cfg.Logs.Open(runID, string(st.Name))
	if err != nil {
		return nil
	}
	defer f.Close()
	done := s.cfg.Logs.Done(runID, string(st.Name))
	l, err := s.readStageLog(f, st.State == store.Failed)
	if err != nil {
		s.log.Warn("read stage log", "run", runID, "stage", st.Name, "err", err)
		return nil
	}
	l.Done = done
	return l
}

// --- failures ---

type failuresView struct {
	Runs []runRow
	More string
}

const failuresPage = 50

func (s *Server) failures(w http.ResponseWriter, r *http.Request) {
	runs, err := s.cfg.Runs.Runs(r.Context(), store.RunFilter{States: []store.State{store.Failed}, Limit: failuresPage + 1, Before: r.URL.Query().Get("before")})
	if err != nil && runs == nil {
		s.serverError(w, r, "reading failed runs", err)
		return
	}
	v := failuresView{}
	if len(runs) > failuresPage {
		runs = runs[:failuresPage]
		v.More = runs[len(runs)-1].ID
	}
	now := s.now()
	for _, run := range runs {
		v.Runs = append(v.Runs, s.runRow(now, run))
	}
	s.renderTitled(w, r, http.StatusOK, "failures", "Recent failures", v)
}

// --- actions ---

func (s *Server) rerun(w http.ResponseWriter, r *http.Request) {
	run, ok := s.loadRun(w, r)
	if !ok {
		return
	}
	if s.cfg.Actions == nil {
		s.errorPage(w, r, http.StatusNotImplemented, "Re-running is not enabled on this server.")
		return
	}
	nr, err := s.cfg.Actions.Rerun(r.Context(), run, identityOf(r.Context()).Actor())
	if errors.Is(err, ErrNotInIndex) {
		s.errorPage(w, r, http.StatusConflict, "Project "+run.Project+" is "+ErrNotInIndex.Error()+".")
		return
	}
	if err != nil {
		s.serverError(w, r, "re-running run "+run.ID, err)
		return
	}
	http.Redirect(w, r, "/runs/"+nr.ID, http.StatusSeeOther)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	run, ok := s.loadRun(w, r)
	if !ok {
		return
	}
	if s.cfg.Actions == nil {
		s.errorPage(w, r, http.StatusNotImplemented, "Cancelling is not enabled on this server.")
		return
	}
	if err := s.cfg.Actions.Cancel(r.Context(), run.ID, identityOf(r.Context()).Actor()); err != nil {
		s.serverError(w, r, "cancelling run "+run.ID, err)
		return
	}
	http.Redirect(w, r, "/runs/"+run.ID, http.StatusSeeOther)
}
