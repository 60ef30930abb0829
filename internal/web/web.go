// Package web serves cccp's pages and JSON API: the dashboard of every index
// entry, a page per project and per run (with live stage logs over
// Server-Sent Events and the lines that explain a failure highlighted), the
// recent failures, and the onboarding form.
//
// Pages are server-rendered with html/template and readable without
// JavaScript; a little script filters the dashboard live and streams running
// logs. Reading is open unless read tokens are configured; every action that
// changes something (re-run, cancel, onboard) needs an admin token, given
// once on the sign-in form (a signed session cookie, with a per-session CSRF
// token on every form) or as `Authorization: Bearer` on the API.
//
// The URL of a run, /runs/<id>, is stable: the bot's check-run details_url
// and PR comments link to it.
package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/onboard"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// RunReader reads runs; *store.DB implements it.
type RunReader interface {
	Run(ctx context.Context, id string) (*store.Run, error)
	Runs(ctx context.Context, f store.RunFilter) ([]*store.Run, error)
	LatestRuns(ctx context.Context, kind string) (map[string]*store.Run, error)
}

// LogReader reads stage logs; *runlog.Logs implements it.
type LogReader interface {
	Open(runID, stage string) (*os.File, error)
	Follow(ctx context.Context, runID, stage string, from int64) (io.ReadCloser, error)
	Done(runID, stage string) bool
}

// Projects is the current index: its entries and their dependency graph.
// Projects are named by entry key, app-id/job-id:desired-tag (index.Entry's
// Key), as runs are stored: one name has an entry per desired-tag.
type Projects interface {
	Entries() []index.Entry
	Parents(key string) []string
	Children(key string) []string
}

// Actions change runs. actor is the signed-in user, for the run's cause.
type Actions interface {
	// Rerun queues a new run like run (same project key, kind, branch and
	// commit) and returns it.
	Rerun(ctx context.Context, run *store.Run, actor string) (*store.Run, error)
	// Cancel stops a queued or running run.
	Cancel(ctx context.Context, id, actor string) error
}

// Onboarder adds a project to the index: onboard.Local writes it into the
// local index and queues its first build, onboard.Forge opens a pull
// request on the index repository. An invalid entry is refused with an
// *onboard.InvalidError.
type Onboarder interface {
	Submit(ctx context.Context, e index.Entry, actor string) (onboard.Outcome, error)
}

// Backuper writes a consistent copy of the run database; *store.DB
// implements it (one read transaction, so writes go on meanwhile).
type Backuper interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// Config is what a Server needs. Runs, Logs and Projects are required.
type Config struct {
	// BaseURL is where the server is reached from outside
	// (e.g. https://cccp.example.org); links in the API use it. Default:
	// relative links.
	BaseURL  string
	Runs     RunReader
	Logs     LogReader
	Projects Projects
	// Actions enables re-run and cancel; nil hides them.
	Actions Actions
	// Onboarder enables the onboarding form; nil hides it.
	Onboarder Onboarder
	// Deliveries enables the page of webhook deliveries in trouble and
	// their replay; nil hides it.
	Deliveries Deliveries
	// SBOMs shows the SBOM of a project's latest delivered image on its
	// page and serves the document at /projects/{app}/{job}/sbom; nil
	// hides them.
	SBOMs SBOMs
	// Outbox enables GET /api/v1/mail, the mail waiting or refused; nil: 404.
	Outbox Outbox
	// Cascades shows the open rebuild cascades on the dashboard (what
	// waits on what); nil hides them.
	Cascades CascadeReader
	// Rescans shows rescans' progress (dashboard, /api/v1/rescans) and each
	// project's scan history; nil hides them. RescanProgress, when set,
	// gives the rescan under way as it is now (ahead of the store).
	Rescans        Rescans
	RescanProgress func() *store.Rescan
	// StartRescan, when set, lets an admin start a rescan now
	// (POST /api/v1/rescans); ErrRescanBusy while one is under way.
	StartRescan func(actor string) (*store.Rescan, error)
	// RemovedOn, when set, says when a project that is no longer in the
	// index was removed from it (its page says so).
	RemovedOn func(ctx context.Context, project string) (time.Time, bool)
	// Backup enables GET /api/v1/backup (admins only); nil: 404.
	Backup Backuper
	// DataSizes enables the status page (/status): the data folder's size
	// by part; nil: 404.
	DataSizes DataSizesFunc
	// SigningKey is the public key (PKIX PEM) delivered images are signed
	// with, served to anyone at /api/v1/signing-key (a public key is
	// public: `cccp verify --server` and cosign users fetch it without a
	// token). Empty: the endpoint answers 404.
	SigningKey []byte
	// Masker masks secrets in everything shown (logs, errors, findings).
	// Default: a Masker without secrets (it still masks URL passwords).
	Masker *redact.Masker
	// AdminTokens may sign in and act. Without any, nothing can be changed.
	AdminTokens []string
	// ReadTokens, when set, protect reading: a reader must sign in with one
	// of them (or an admin token). Empty: reading is open.
	ReadTokens []string
	// SessionKey signs session cookies (at least 32 bytes). Default: random
	// per process, so sessions end with a restart.
	SessionKey []byte
	// SessionTTL is how long a sign-in lasts. Default 12h.
	SessionTTL time.Duration
	// InsecureCookie drops the Secure attribute of the session cookie, for
	// plain-http deployments that are not on loopback. Default false.
	InsecureCookie bool
	// Sessions keeps the generation of sessions, raised by "sign out
	// everywhere" (StoreSessions keeps it in cccp.db). Default: in memory.
	Sessions SessionEpochs
	Logger   *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Server serves the pages and the API.
type Server struct {
	cfg    Config
	log    *slog.Logger
	mask   *redact.Masker
	pages  map[string]*template.Template
	static fs.FS
	auth   *auth
	now    func() time.Time
	// signingKeyID is the SHA-256 fingerprint of SigningKey's DER.
	signingKeyID string
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	var missing []string
	if cfg.Runs == nil {
		missing = append(missing, "Runs")
	}
	if cfg.Logs == nil {
		missing = append(missing, "Logs")
	}
	if cfg.Projects == nil {
		missing = append(missing, "Projects")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("web: missing configuration: %s", strings.Join(missing, ", "))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Masker == nil {
		cfg.Masker = redact.NewMasker()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if len(cfg.SessionKey) == 0 {
		cfg.SessionKey = make([]byte, 32)
		if _, err := rand.Read(cfg.SessionKey); err != nil {
			return nil, fmt.Errorf("web: session key: %w", err)
		}
	} else if len(cfg.SessionKey) < 32 {
		return nil, errors.New("web: session key shorter than 32 bytes")
	}
	if cfg.Sessions == nil {
		cfg.Sessions = &memEpochs{}
	}
	epoch, err := cfg.Sessions.SessionEpoch(context.Background())
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		mask:   cfg.Masker,
		pages:  pages,
		static: static,
		now:    cfg.Now,
	}
	s.auth = newAuth(cfg)
	s.auth.epoch.Store(epoch)
	if len(cfg.SigningKey) > 0 {
		block, _ := pem.Decode(cfg.SigningKey)
		if block == nil {
			return nil, errors.New("web: the signing key is not PEM")
		}
		sum := sha256.Sum256(block.Bytes)
		s.signingKeyID = hex.EncodeToString(sum[:])
	}
	return s, nil
}

// Handler returns the server's routes, wrapped in cross-origin protection
// for every unsafe method.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	read := s.requireRead
	admin := s.requireAdmin

	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(s.static)))
	mux.HandleFunc("GET /signin", s.signInForm)
	mux.HandleFunc("POST /signin", s.signIn)
	mux.HandleFunc("POST /signout", s.signOut)
	mux.Handle("POST /signout-everywhere", admin(s.revokeSessions))

	mux.Handle("GET /{$}", read(s.dashboard))
	mux.Handle("GET /projects/{app}/{job}", read(s.project))
	mux.Handle("GET /projects/{app}/{job}/sbom", read(s.sbomDocument))
	mux.Handle("GET /runs/{id}", read(s.runPage))
	mux.Handle("GET /runs/{id}/stages/{stage}/events", read(s.logEvents))
	mux.Handle("GET /runs/{id}/stages/{stage}/log.txt", read(s.logText))
	mux.Handle("GET /failures", read(s.failures))
	mux.Handle("GET /status", read(s.status))
	mux.Handle("GET /deliveries", read(s.deliveries))
	mux.Handle("POST /deliveries/{forge}/{id}/replay", admin(s.replay))
	mux.Handle("GET /onboard", read(s.onboardForm))
	mux.Handle("POST /runs/{id}/rerun", admin(s.rerun))
	mux.Handle("POST /runs/{id}/cancel", admin(s.cancel))
	mux.Handle("POST /onboard", admin(s.onboardSubmit))

	mux.HandleFunc("GET /api/v1/signing-key", s.signingKey)
	mux.Handle("GET /api/v1/projects", read(s.apiProjects))
	mux.Handle("GET /api/v1/projects/{app}/{job}", read(s.apiProject))
	mux.Handle("GET /api/v1/projects/{app}/{job}/runs", read(s.apiProjectRuns))
	mux.Handle("GET /api/v1/runs/{id}", read(s.apiRun))
	mux.Handle("GET /api/v1/rescans", read(s.apiRescans))
	mux.Handle("GET /api/v1/rescans/{id}", read(s.apiRescan))
	mux.Handle("POST /api/v1/rescans", admin(s.apiStartRescan))
	mux.Handle("GET /api/v1/projects/{app}/{job}/scans", read(s.apiScans))
	mux.Handle("GET /api/v1/runs/{id}/stages/{stage}/log", read(s.logText))
	mux.Handle("POST /api/v1/runs/{id}/rerun", admin(s.apiRerun))
	mux.Handle("POST /api/v1/runs/{id}/cancel", admin(s.apiCancel))
	mux.Handle("POST /api/v1/projects", admin(s.apiOnboard))
	mux.Handle("POST /api/v1/sessions/revoke", admin(s.apiRevokeSessions))
	mux.Handle("GET /api/v1/deliveries", read(s.apiDeliveries))
	mux.Handle("GET /api/v1/mail", admin(s.apiMail)) // recipients are maintainers' addresses
	mux.Handle("POST /api/v1/deliveries/{forge}/{id}/replay", admin(s.apiReplay))
	mux.Handle("GET /api/v1/backup", admin(s.apiBackup))
	mux.Handle("/", read(s.notFoundPage))

	cop := http.NewCrossOriginProtection()
	return securityHeaders(cop.Handler(mux))
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.ServeHTTP(w, r)
	})
}

func staticHandler(fsys fs.FS) http.Handler {
	fsrv := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		fsrv.ServeHTTP(w, r)
	})
}

// entry finds an index entry by its key, app-id/job-id:desired-tag.
func (s *Server) entry(key string) (index.Entry, bool) {
	for _, e := range s.cfg.Projects.Entries() {
		if e.Key() == key {
			return e, true
		}
	}
	return index.Entry{}, false
}

// projectKey turns the {app}/{job} of a project URL into an entry key. A
// job without a tag names the first entry of that name (a name has one
// entry per desired-tag), or :latest when the index has none.
func (s *Server) projectKey(app, job string) string {
	name := app + "/" + job
	if strings.Contains(job, ":") {
		return name
	}
	for _, e := range s.cfg.Projects.Entries() {
		if e.Name() == name {
			return e.Key()
		}
	}
	return name + ":" + index.DefaultDesiredTag
}

// url makes an absolute URL when BaseURL is set.
func (s *Server) url(path string) string { return s.cfg.BaseURL + path }

// signingKey serves the public half of cccp's signing key as PEM.
func (s *Server) signingKey(w http.ResponseWriter, r *http.Request) {
	if len(s.cfg.SigningKey) == 0 {
		http.Error(w, "this cccp signs no images", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `inline; filename="cosign.pub"`)
	w.Write(s.cfg.SigningKey)
}
