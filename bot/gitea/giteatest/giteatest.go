// Package giteatest is a recording double of the parts of the Gitea REST
// API (v1) that cccp calls, mounted under /api/v1/. It keeps just enough
// state (commit statuses, comments, collaborators, branches, files, pull
// requests) for the adapter's calls to be checked against it.
package giteatest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Call is one request the double received.
type Call struct {
	Method, Path, Query, Body, Auth string
}

func (c Call) String() string { return c.Method + " " + c.Path }

// Status is a commit status as posted.
type Status struct {
	SHA         string `json:"sha"`
	State       string `json:"state"`
	Context     string `json:"context"`
	TargetURL   string `json:"target_url"`
	Description string `json:"description"`
}

// Comment is an issue comment.
type Comment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
	User struct {
		Login string `json:"login"`
	} `json:"user"`
}

// Server is the double.
type Server struct {
	*httptest.Server

	// PageSize is how many comments one page lists (default 50).
	PageSize int
	// Permissions maps user to "owner", "admin", "write", "read"; others get 403.
	Permissions map[string]string

	mu       sync.Mutex
	calls    []Call
	nextID   int64
	statuses []Status
	comments map[int][]*Comment
	branches map[string]bool
	files    map[string]string
	pulls    []map[string]any
}

// New starts a double; it is closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{PageSize: 50, Permissions: map[string]string{}, nextID: 700, comments: map[int][]*Comment{},
		branches: map[string]bool{"main": true}, files: map[string]string{}}
	mux := http.NewServeMux()
	const p = "/api/v1/repos/{owner}/{repo}"
	mux.HandleFunc("GET /api/v1/version", func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusOK, map[string]string{"version": "1.22.0"})
	})
	mux.HandleFunc("POST "+p+"/statuses/{sha}", s.createStatus)
	mux.HandleFunc("GET "+p+"/issues/{n}/comments", s.listComments)
	mux.HandleFunc("POST "+p+"/issues/{n}/comments", s.createComment)
	mux.HandleFunc("PATCH "+p+"/issues/comments/{id}", s.editComment)
	mux.HandleFunc("GET "+p+"/collaborators/{user}/permission", s.permission)
	mux.HandleFunc("GET "+p+"/pulls", s.listPulls)
	mux.HandleFunc("POST "+p+"/pulls", s.createPull)
	mux.HandleFunc("GET "+p+"/pulls/{n}", s.getPull)
	mux.HandleFunc("GET "+p+"/branches/{branch...}", s.getBranch)
	mux.HandleFunc("POST "+p+"/contents/{path...}", s.createFile)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body), Auth: r.Header.Get("Authorization")})
		s.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		w.Header().Set("Content-Type", "application/json")
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// Calls returns the requests received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Statuses returns the commit statuses posted, in order.
func (s *Server) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses)
}

// Comments returns the comments of issue n.
func (s *Server) Comments(n int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.comments[n] {
		out = append(out, *c)
	}
	return out
}

// AddComment stores a comment written by someone else.
func (s *Server) AddComment(n int, user, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	c := &Comment{ID: s.nextID, Body: body}
	c.User.Login = user
	s.comments[n] = append(s.comments[n], c)
}

// File returns a file's content on a branch.
func (s *Server) File(branch, path string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.files[branch+":"+path]
	return c, ok
}

func write(w http.ResponseWriter, code int, v any) {
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request) {
	var st Status
	_ = json.NewDecoder(r.Body).Decode(&st)
	st.SHA = r.PathValue("sha")
	s.mu.Lock()
	s.statuses = append(s.statuses, st)
	s.mu.Unlock()
	write(w, http.StatusCreated, st)
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page < 1 {
		page = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.comments[n]
	lo := min((page-1)*s.PageSize, len(all))
	hi := min(lo+s.PageSize, len(all))
	if hi < len(all) {
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?page=%d&limit=%d>; rel="next"`, s.URL, r.URL.Path, page+1, s.PageSize))
	}
	out := all[lo:hi]
	if out == nil {
		out = []*Comment{}
	}
	write(w, http.StatusOK, out)
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	var m struct{ Body string }
	_ = json.NewDecoder(r.Body).Decode(&m)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	c := &Comment{ID: s.nextID, Body: m.Body}
	c.User.Login = "cccp-bot"
	s.comments[n] = append(s.comments[n], c)
	write(w, http.StatusCreated, c)
}

func (s *Server) editComment(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var m struct{ Body string }
	_ = json.NewDecoder(r.Body).Decode(&m)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cs := range s.comments {
		for _, c := range cs {
			if c.ID == id {
				c.Body = m.Body
				write(w, http.StatusOK, c)
				return
			}
		}
	}
	write(w, http.StatusNotFound, map[string]string{"message": "comment not found"})
}

func (s *Server) permission(w http.ResponseWriter, r *http.Request) {
	p, ok := s.Permissions[r.PathValue("user")]
	if !ok {
		write(w, http.StatusForbidden, map[string]string{"message": "user is not a collaborator"})
		return
	}
	write(w, http.StatusOK, map[string]any{"permission": p, "role_name": p, "user": map[string]string{"login": r.PathValue("user")}})
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
	write(w, http.StatusOK, out)
}

func (s *Server) createPull(w http.ResponseWriter, r *http.Request) {
	var m struct{ Head, Base, Title, Body string }
	_ = json.NewDecoder(r.Body).Decode(&m)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.branches[m.Head] {
		write(w, http.StatusNotFound, map[string]string{"message": "head branch does not exist"})
		return
	}
	n := len(s.pulls) + 1
	pr := map[string]any{"number": n, "title": m.Title, "body": m.Body, "state": "open", "html_url": s.pullURL(r, n),
		"user": map[string]any{"login": "cccp-bot"},
		"head": map[string]any{"ref": m.Head, "sha": "feedface", "repo_id": 1},
		"base": map[string]any{"ref": m.Base, "sha": "0ld", "repo_id": 1}}
	s.pulls = append(s.pulls, pr)
	write(w, http.StatusCreated, pr)
}

func (s *Server) getPull(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 1 || n > len(s.pulls) {
		write(w, http.StatusNotFound, map[string]string{"message": "pull request does not exist"})
		return
	}
	write(w, http.StatusOK, s.pulls[n-1])
}

func (s *Server) getBranch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := s.branches[r.PathValue("branch")]
	s.mu.Unlock()
	if !ok {
		write(w, http.StatusNotFound, map[string]string{"message": "branch does not exist"})
		return
	}
	write(w, http.StatusOK, map[string]any{"name": r.PathValue("branch")})
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
		write(w, http.StatusUnprocessableEntity, map[string]string{"message": "content is not base64"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.branches[m.Branch] {
		write(w, http.StatusNotFound, map[string]string{"message": "branch does not exist"})
		return
	}
	target := m.Branch
	if m.NewBranch != "" {
		if s.branches[m.NewBranch] {
			write(w, http.StatusUnprocessableEntity, map[string]string{"message": "branch already exists"})
			return
		}
		s.branches[m.NewBranch] = true
		target = m.NewBranch
	}
	s.files[target+":"+r.PathValue("path")] = string(content)
	write(w, http.StatusCreated, map[string]any{"content": map[string]any{"path": r.PathValue("path")}})
}
