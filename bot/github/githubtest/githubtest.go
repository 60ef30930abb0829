// Package githubtest is a recording double of the parts of the GitHub REST
// API that cccp calls, mounted under /api/v3/ as on GitHub Enterprise, so a
// client that builds absolute URLs fails. It keeps just enough state (check
// runs, comments, permissions, branches, files, pull requests) for the
// adapter's calls to be checked against it.
package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/forgetest"
)

// Call is one request the double received; Auth is its Authorization header.
type Call = forgetest.Call

// Comment is an issue comment.
type Comment = forgetest.Comment

// CheckRun is a check run as the double stores it.
type CheckRun struct {
	ID         int64          `json:"id"`
	Name       string         `json:"name"`
	HeadSHA    string         `json:"head_sha"`
	Status     string         `json:"status"`
	Conclusion string         `json:"conclusion,omitempty"`
	DetailsURL string         `json:"details_url,omitempty"`
	Output     map[string]any `json:"output,omitempty"`
}

// Server is the double. Set fields before use; read them under no lock only
// after the client calls returned.
type Server struct {
	*forgetest.Recorder
	// IssueComments holds the comments; PageSize is 30 unless set.
	forgetest.IssueComments
	forgetest.Files

	// Permissions maps user to "admin", "write", "read"...; unknown users get 404.
	Permissions map[string]string
	// Installation is the installation ID reported for every repository.
	Installation int64

	mu        sync.Mutex
	nextID    int64
	checkRuns []*CheckRun
	statuses  []map[string]any
	refs      map[string]string // branch -> sha
	pulls     []map[string]any
}

// New starts a double; it is closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{
		IssueComments: forgetest.IssueComments{PageSize: 30, SizeParam: "per_page", Bot: "cccp[bot]", IDBase: 5000, NotFound: "Not Found"},
		Permissions:   map[string]string{}, Installation: 42,
		nextID: 1000, refs: map[string]string{"main": "0000000000000000000000000000000000000001"},
	}
	mux := http.NewServeMux()
	const p = "/api/v3/repos/{owner}/{repo}"
	mux.HandleFunc("POST /api/v3/app/installations/{id}/access_tokens", s.accessToken)
	mux.HandleFunc("GET "+p+"/installation", s.installation)
	// The App (its bot login is slug + "[bot]") and a token's user.
	mux.HandleFunc("GET /api/v3/app", func(w http.ResponseWriter, r *http.Request) {
		forgetest.WriteJSON(w, http.StatusOK, map[string]any{"id": 1, "slug": strings.TrimSuffix(s.Bot, "[bot]")})
	})
	mux.HandleFunc("GET /api/v3/user", func(w http.ResponseWriter, r *http.Request) {
		forgetest.WriteJSON(w, http.StatusOK, map[string]any{"id": 2, "login": s.Bot})
	})
	mux.HandleFunc("POST "+p+"/check-runs", s.createCheckRun)
	mux.HandleFunc("PATCH "+p+"/check-runs/{id}", s.updateCheckRun)
	mux.HandleFunc("GET "+p+"/commits/{sha}/check-runs", s.listCheckRuns)
	mux.HandleFunc("POST "+p+"/statuses/{sha}", s.createStatus)
	s.IssueComments.Mount(mux, p)
	mux.HandleFunc("GET "+p+"/collaborators/{user}/permission", s.permission)
	mux.HandleFunc("GET "+p+"/git/ref/heads/{branch...}", s.getRef)
	mux.HandleFunc("POST "+p+"/git/refs", s.createRef)
	mux.HandleFunc("GET "+p+"/contents/{path...}", s.getContents)
	mux.HandleFunc("PUT "+p+"/contents/{path...}", s.putContents)
	mux.HandleFunc("POST "+p+"/pulls", s.createPull)
	mux.HandleFunc("GET "+p+"/pulls/{n}", s.getPull)
	s.Recorder = forgetest.NewRecorder(t, "Authorization", mux)
	return s
}

// AppKey returns a new PEM-encoded RSA key for a GitHub App client talking
// to the double, which accepts any App JWT.
func AppKey(t testing.TB) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// APIURL is the base URL to give the client: <server>/api/v3/.
func (s *Server) APIURL() string { return s.URL + "/api/v3/" }

// CheckRuns returns copies of the stored check runs.
func (s *Server) CheckRuns() []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CheckRun
	for _, c := range s.checkRuns {
		out = append(out, *c)
	}
	return out
}

// Statuses returns the commit statuses posted, in order.
func (s *Server) Statuses() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses)
}

func (s *Server) id() int64 { s.nextID++; return s.nextID }

func notFound(w http.ResponseWriter) { forgetest.WriteError(w, http.StatusNotFound, "Not Found") }

func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	forgetest.WriteJSON(w, http.StatusCreated, map[string]any{
		"token": "ghs_installation" + r.PathValue("id"), "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	})
}

func (s *Server) installation(w http.ResponseWriter, r *http.Request) {
	forgetest.WriteJSON(w, http.StatusOK, map[string]any{"id": s.Installation})
}

func (s *Server) createCheckRun(w http.ResponseWriter, r *http.Request) {
	m := forgetest.Decode(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	cr := &CheckRun{ID: s.id(), Name: forgetest.Str(m, "name"), HeadSHA: forgetest.Str(m, "head_sha"), Status: forgetest.Str(m, "status"),
		Conclusion: forgetest.Str(m, "conclusion"), DetailsURL: forgetest.Str(m, "details_url")}
	cr.Output, _ = m["output"].(map[string]any)
	s.checkRuns = append(s.checkRuns, cr)
	forgetest.WriteJSON(w, http.StatusCreated, cr)
}

func (s *Server) updateCheckRun(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	m := forgetest.Decode(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cr := range s.checkRuns {
		if cr.ID == id {
			if v := forgetest.Str(m, "status"); v != "" {
				cr.Status = v
			}
			if v := forgetest.Str(m, "conclusion"); v != "" {
				cr.Conclusion = v
			}
			if v := forgetest.Str(m, "details_url"); v != "" {
				cr.DetailsURL = v
			}
			if o, ok := m["output"].(map[string]any); ok {
				cr.Output = o
			}
			forgetest.WriteJSON(w, http.StatusOK, cr)
			return
		}
	}
	notFound(w)
}

func (s *Server) listCheckRuns(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("check_name")
	s.mu.Lock()
	defer s.mu.Unlock()
	runs := []*CheckRun{}
	for _, cr := range s.checkRuns {
		if cr.HeadSHA == r.PathValue("sha") && (name == "" || cr.Name == name) {
			runs = append(runs, cr)
		}
	}
	forgetest.WriteJSON(w, http.StatusOK, map[string]any{"total_count": len(runs), "check_runs": runs})
}

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request) {
	m := forgetest.Decode(r)
	m["sha"] = r.PathValue("sha")
	s.mu.Lock()
	s.statuses = append(s.statuses, m)
	s.mu.Unlock()
	forgetest.WriteJSON(w, http.StatusCreated, m)
}

func (s *Server) permission(w http.ResponseWriter, r *http.Request) {
	p, ok := s.Permissions[r.PathValue("user")]
	if !ok {
		notFound(w)
		return
	}
	forgetest.WriteJSON(w, http.StatusOK, map[string]any{"permission": p, "role_name": p, "user": map[string]any{"login": r.PathValue("user")}})
}

func (s *Server) getRef(w http.ResponseWriter, r *http.Request) {
	b := r.PathValue("branch")
	s.mu.Lock()
	sha, ok := s.refs[b]
	s.mu.Unlock()
	if !ok {
		notFound(w)
		return
	}
	forgetest.WriteJSON(w, http.StatusOK, map[string]any{"ref": "refs/heads/" + b, "object": map[string]any{"sha": sha, "type": "commit"}})
}

func (s *Server) createRef(w http.ResponseWriter, r *http.Request) {
	m := forgetest.Decode(r)
	b := strings.TrimPrefix(forgetest.Str(m, "ref"), "refs/heads/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refs[b]; ok {
		forgetest.WriteError(w, http.StatusUnprocessableEntity, "Reference already exists")
		return
	}
	s.refs[b] = forgetest.Str(m, "sha")
	forgetest.WriteJSON(w, http.StatusCreated, map[string]any{"ref": forgetest.Str(m, "ref"), "object": map[string]any{"sha": forgetest.Str(m, "sha")}})
}

func (s *Server) getContents(w http.ResponseWriter, r *http.Request) {
	c, ok := s.File(r.URL.Query().Get("ref"), r.PathValue("path"))
	if !ok {
		notFound(w)
		return
	}
	forgetest.WriteJSON(w, http.StatusOK, map[string]any{"type": "file", "path": r.PathValue("path"), "sha": fmt.Sprintf("blob%d", len(c)),
		"encoding": "base64", "content": base64.StdEncoding.EncodeToString([]byte(c))})
}

func (s *Server) putContents(w http.ResponseWriter, r *http.Request) {
	m := forgetest.Decode(r)
	content, err := base64.StdEncoding.DecodeString(forgetest.Str(m, "content"))
	if err != nil {
		forgetest.WriteError(w, http.StatusUnprocessableEntity, "content is not base64")
		return
	}
	branch, path := forgetest.Str(m, "branch"), r.PathValue("path")
	s.mu.Lock() // one writer at a time between the check and the put
	defer s.mu.Unlock()
	if _, exists := s.File(branch, path); exists && forgetest.Str(m, "sha") == "" {
		forgetest.WriteError(w, http.StatusUnprocessableEntity, "sha wasn't supplied")
		return
	}
	s.PutFile(branch, path, string(content))
	forgetest.WriteJSON(w, http.StatusCreated, map[string]any{"content": map[string]any{"path": r.PathValue("path")}, "commit": map[string]any{"sha": "c0ffee"}})
}

func (s *Server) createPull(w http.ResponseWriter, r *http.Request) {
	m := forgetest.Decode(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.pulls) + 1
	pr := map[string]any{"number": n, "title": forgetest.Str(m, "title"), "body": forgetest.Str(m, "body"),
		"html_url": fmt.Sprintf("https://github.example/%s/%s/pull/%d", r.PathValue("owner"), r.PathValue("repo"), n),
		"head":     map[string]any{"ref": forgetest.Str(m, "head"), "sha": s.refs[forgetest.Str(m, "head")]}, "base": map[string]any{"ref": forgetest.Str(m, "base")}}
	s.pulls = append(s.pulls, pr)
	forgetest.WriteJSON(w, http.StatusCreated, pr)
}

func (s *Server) getPull(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 1 || n > len(s.pulls) {
		notFound(w)
		return
	}
	forgetest.WriteJSON(w, http.StatusOK, s.pulls[n-1])
}

// AddPull stores a pull request as the API returns it (a recorded
// payload's pull_request object); its number is its position, from 1.
func (s *Server) AddPull(pr map[string]any) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.pulls) + 1
	pr["number"] = n
	s.pulls = append(s.pulls, pr)
	return n
}
