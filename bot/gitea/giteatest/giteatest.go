// Package giteatest is a recording double of the parts of the Gitea REST
// API (v1) that cccp calls, mounted under /api/v1/. It keeps just enough
// state (commit statuses, comments, collaborators, branches, files, pull
// requests) for the adapter's calls to be checked against it.
package giteatest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/cccp-project/cccp/bot/forgetest"
)

// Call is one request the double received; Auth is its Authorization header.
type Call = forgetest.Call

// Comment is an issue comment.
type Comment = forgetest.Comment

// Status is a commit status as posted.
type Status struct {
	SHA         string `json:"sha"`
	State       string `json:"state"`
	Context     string `json:"context"`
	TargetURL   string `json:"target_url"`
	Description string `json:"description"`
}

// Server is the double.
type Server struct {
	*forgetest.Recorder
	// IssueComments holds the comments; PageSize is 50 unless set.
	forgetest.IssueComments
	forgetest.Files

	// Permissions maps user to "owner", "admin", "write", "read"; others get 403.
	Permissions map[string]string

	mu       sync.Mutex
	statuses []Status
	branches map[string]bool
	pulls    []map[string]any
}

// New starts a double; it is closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{
		IssueComments: forgetest.IssueComments{PageSize: 50, SizeParam: "limit", Bot: "cccp-bot", IDBase: 700, NotFound: "comment not found"},
		Permissions:   map[string]string{}, branches: map[string]bool{"main": true},
	}
	mux := http.NewServeMux()
	const p = "/api/v1/repos/{owner}/{repo}"
	mux.HandleFunc("GET /api/v1/version", func(w http.ResponseWriter, r *http.Request) {
		forgetest.WriteJSON(w, http.StatusOK, map[string]string{"version": "1.22.0"})
	})
	mux.HandleFunc("GET /api/v1/user", func(w http.ResponseWriter, r *http.Request) {
		forgetest.WriteJSON(w, http.StatusOK, map[string]any{"id": 1, "login": s.Bot})
	})
	mux.HandleFunc("POST "+p+"/statuses/{sha}", s.createStatus)
	s.IssueComments.Mount(mux, p)
	mux.HandleFunc("GET "+p+"/collaborators/{user}/permission", s.permission)
	mux.HandleFunc("GET "+p+"/pulls", s.listPulls)
	mux.HandleFunc("POST "+p+"/pulls", s.createPull)
	mux.HandleFunc("GET "+p+"/pulls/{n}", s.getPull)
	mux.HandleFunc("GET "+p+"/branches/{branch...}", s.getBranch)
	mux.HandleFunc("POST "+p+"/contents/{path...}", s.createFile)
	s.Recorder = forgetest.NewRecorder(t, "Authorization", mux)
	return s
}

// Statuses returns the commit statuses posted, in order.
func (s *Server) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses)
}

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request) {
	var st Status
	_ = json.NewDecoder(r.Body).Decode(&st)
	st.SHA = r.PathValue("sha")
	s.mu.Lock()
	s.statuses = append(s.statuses, st)
	s.mu.Unlock()
	forgetest.WriteJSON(w, http.StatusCreated, st)
}

func (s *Server) permission(w http.ResponseWriter, r *http.Request) {
	p, ok := s.Permissions[r.PathValue("user")]
	if !ok {
		forgetest.WriteError(w, http.StatusForbidden, "user is not a collaborator")
		return
	}
	forgetest.WriteJSON(w, http.StatusOK, map[string]any{"permission": p, "role_name": p, "user": map[string]string{"login": r.PathValue("user")}})
}

func (s *Server) pullURL(r *http.Request, n int) string {
	return fmt.Sprintf("https://gitea.example/%s/%s/pulls/%d", r.PathValue("owner"), r.PathValue("repo"), n)
}

func (s *Server) listPulls(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, pr := range s.pulls {
		if pr["state"] == "open" {
			out = append(out, pr)
		}
	}
	forgetest.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) createPull(w http.ResponseWriter, r *http.Request) {
	var m struct{ Head, Base, Title, Body string }
	_ = json.NewDecoder(r.Body).Decode(&m)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.branches[m.Head] {
		forgetest.WriteError(w, http.StatusNotFound, "head branch does not exist")
		return
	}
	n := len(s.pulls) + 1
	pr := map[string]any{"number": n, "title": m.Title, "body": m.Body, "state": "open", "html_url": s.pullURL(r, n),
		"user": map[string]any{"login": "cccp-bot"},
		"head": map[string]any{"ref": m.Head, "sha": "feedface", "repo_id": 1},
		"base": map[string]any{"ref": m.Base, "sha": "0ld", "repo_id": 1}}
	s.pulls = append(s.pulls, pr)
	forgetest.WriteJSON(w, http.StatusCreated, pr)
}

func (s *Server) getPull(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 1 || n > len(s.pulls) {
		forgetest.WriteError(w, http.StatusNotFound, "pull request does not exist")
		return
	}
	forgetest.WriteJSON(w, http.StatusOK, s.pulls[n-1])
}

func (s *Server) getBranch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := s.branches[r.PathValue("branch")]
	s.mu.Unlock()
	if !ok {
		forgetest.WriteError(w, http.StatusNotFound, "branch does not exist")
		return
	}
	forgetest.WriteJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("branch")})
}

func (s *Server) createFile(w http.ResponseWriter, r *http.Request) {
	var m struct {
		Branch    string `json:"branch"`
		NewBranch string `json:"new_branch"`
		Content   string `json:"content"`
	}
	_ = json.NewDecoder(r.Body).Decode(&m)
	content, err := base64.StdEncoding.DecodeString(m.Content)
	if err != nil {
		forgetest.WriteError(w, http.StatusUnprocessableEntity, "content is not base64")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.branches[m.Branch] {
		forgetest.WriteError(w, http.StatusNotFound, "branch does not exist")
		return
	}
	target := m.Branch
	if m.NewBranch != "" {
		if s.branches[m.NewBranch] {
			forgetest.WriteError(w, http.StatusUnprocessableEntity, "branch already exists")
			return
		}
		s.branches[m.NewBranch] = true
		target = m.NewBranch
	}
	s.PutFile(target, r.PathValue("path"), string(content))
	forgetest.WriteJSON(w, http.StatusCreated, map[string]any{"content": map[string]any{"path": r.PathValue("path")}})
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
