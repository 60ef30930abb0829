// Package githubtest is a recording double of the parts of the GitHub REST
// API that cccp calls, mounted under /api/v3/ as on GitHub Enterprise, so a
// client that builds absolute URLs fails. It keeps just enough state (check
// runs, comments, permissions, branches, files, pull requests) for the
// adapter's calls to be checked against it.
package githubtest

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
	"time"
)

// Call is one request the double received.
type Call struct {
	Method, Path, Query, Body, Auth string
}

func (c Call) String() string { return c.Method + " " + c.Path }

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

// Comment is an issue comment.
type Comment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
	User struct {
		Login string `json:"login"`
	} `json:"user"`
}

// Server is the double. Set fields before use; read them under no lock only
// after the client calls returned.
type Server struct {
	*httptest.Server

	// PageSize is how many comments one page lists (default 30).
	PageSize int
	// Permissions maps user to "admin", "write", "read"...; unknown users get 404.
	Permissions map[string]string
	// Installation is the installation ID reported for every repository.
	Installation int64

	mu        sync.Mutex
	calls     []Call
	nextID    int64
	checkRuns []*CheckRun
	comments  map[int][]*Comment // by issue number
	statuses  []map[string]any
	refs      map[string]string // branch -> sha
	files     map[string]string // branch:path -> content
	pulls     []map[string]any
}

// New starts a double; it is closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{
		PageSize: 30, Permissions: map[string]string{}, Installation: 42,
		nextID: 1000, comments: map[int][]*Comment{},
		refs: map[string]string{"main": "0000000000000000000000000000000000000001"}, files: map[string]string{},
	}
	mux := http.NewServeMux()
	const p = "/api/v3/repos/{owner}/{repo}"
	mux.HandleFunc("POST /api/v3/app/installations/{id}/access_tokens", s.accessToken)
	mux.HandleFunc("GET "+p+"/installation", s.installation)
	mux.HandleFunc("POST "+p+"/check-runs", s.createCheckRun)
	mux.HandleFunc("PATCH "+p+"/check-runs/{id}", s.updateCheckRun)
	mux.HandleFunc("GET "+p+"/commits/{sha}/check-runs", s.listCheckRuns)
	mux.HandleFunc("POST "+p+"/statuses/{sha}", s.createStatus)
	mux.HandleFunc("GET "+p+"/issues/{n}/comments", s.listComments)
	mux.HandleFunc("POST "+p+"/issues/{n}/comments", s.createComment)
	mux.HandleFunc("PATCH "+p+"/issues/comments/{id}", s.updateComment)
	mux.HandleFunc("GET "+p+"/collaborators/{user}/permission", s.permission)
	mux.HandleFunc("GET "+p+"/git/ref/heads/{branch...}", s.getRef)
	mux.HandleFunc("POST "+p+"/git/refs", s.createRef)
	mux.HandleFunc("GET "+p+"/contents/{path...}", s.getContents)
	mux.HandleFunc("PUT "+p+"/contents/{path...}", s.putContents)
	mux.HandleFunc("POST "+p+"/pulls", s.createPull)
	mux.HandleFunc("GET "+p+"/pulls/{n}", s.getPull)
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

// APIURL is the base URL to give the client: <server>/api/v3/.
func (s *Server) APIURL() string { return s.URL + "/api/v3/" }

// Calls returns the requests received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

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

// Comments returns the comments on issue n.
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

func (s *Server) id() int64 { s.nextID++; return s.nextID }

func write(w http.ResponseWriter, code int, v any) {
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter) {
	write(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
}

func decode(r *http.Request) map[string]any {
	var m map[string]any
	_ = json.NewDecoder(r.Body).Decode(&m)
	return m
}

func str(m map[string]any, k string) string { v, _ := m[k].(string); return v }

func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	write(w, http.StatusCreated, map[string]any{
		"token": "ghs_installation" + r.PathValue("id"), "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	})
}

func (s *Server) installation(w http.ResponseWriter, r *http.Request) {
	write(w, http.StatusOK, map[string]any{"id": s.Installation})
}

func (s *Server) createCheckRun(w http.ResponseWriter, r *http.Request) {
	m := decode(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	cr := &CheckRun{ID: s.id(), Name: str(m, "name"), HeadSHA: str(m, "head_sha"), Status: str(m, "status"),
		Conclusion: str(m, "conclusion"), DetailsURL: str(m, "details_url")}
	cr.Output, _ = m["output"].(map[string]any)
	s.checkRuns = append(s.checkRuns, cr)
	write(w, http.StatusCreated, cr)
}

func (s *Server) updateCheckRun(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	m := decode(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cr := range s.checkRuns {
		if cr.ID == id {
			if v := str(m, "status"); v != "" {
				cr.Status = v
			}
			if v := str(m, "conclusion"); v != "" {
				cr.Conclusion = v
			}
			if v := str(m, "details_url"); v != "" {
				cr.DetailsURL = v
			}
			if o, ok := m["output"].(map[string]any); ok {
				cr.Output = o
			}
			write(w, http.StatusOK, cr)
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
	write(w, http.StatusOK, map[string]any{"total_count": len(runs), "check_runs": runs})
}

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request) {
	m := decode(r)
	m["sha"] = r.PathValue("sha")
	s.mu.Lock()
	s.statuses = append(s.statuses, m)
	s.mu.Unlock()
	write(w, http.StatusCreated, m)
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
		next := fmt.Sprintf("%s%s?page=%d&per_page=%d", s.URL, r.URL.Path, page+1, s.PageSize)
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next))
	}
	out := all[lo:hi]
	if out == nil {
		out = []*Comment{}
	}
	write(w, http.StatusOK, out)
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	m := decode(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &Comment{ID: s.id(), Body: str(m, "body")}
	c.User.Login = "cccp[bot]"
	s.comments[n] = append(s.comments[n], c)
	write(w, http.StatusCreated, c)
}

func (s *Server) updateComment(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	m := decode(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cs := range s.comments {
		for _, c := range cs {
			if c.ID == id {
				c.Body = str(m, "body")
				write(w, http.StatusOK, c)
				return
			}
		}
	}
	notFound(w)
}

func (s *Server) permission(w http.ResponseWriter, r *http.Request) {
	p, ok := s.Permissions[r.PathValue("user")]
	if !ok {
		notFound(w)
		return
	}
	write(w, http.StatusOK, map[string]any{"permission": p, "role_name": p, "user": map[string]any{"login": r.PathValue("user")}})
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
	write(w, http.StatusOK, map[string]any{"ref": "refs/heads/" + b, "object": map[string]any{"sha": sha, "type": "commit"}})
}

func (s *Server) createRef(w http.ResponseWriter, r *http.Request) {
	m := decode(r)
	b := strings.TrimPrefix(str(m, "ref"), "refs/heads/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refs[b]; ok {
		write(w, http.StatusUnprocessableEntity, map[string]string{"message": "Reference already exists"})
		return
	}
	s.refs[b] = str(m, "sha")
	write(w, http.StatusCreated, map[string]any{"ref": str(m, "ref"), "object": map[string]any{"sha": str(m, "sha")}})
}

func (s *Server) getContents(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c, ok := s.files[r.URL.Query().Get("ref")+":"+r.PathValue("path")]
	s.mu.Unlock()
	if !ok {
		notFound(w)
		return
	}
	write(w, http.StatusOK, map[string]any{"type": "file", "path": r.PathValue("path"), "sha": fmt.Sprintf("blob%d", len(c)),
		"encoding": "base64", "content": base64.StdEncoding.EncodeToString([]byte(c))})
}

func (s *Server) putContents(w http.ResponseWriter, r *http.Request) {
	m := decode(r)
	content, err := base64.StdEncoding.DecodeString(str(m, "content"))
	if err != nil {
		write(w, http.StatusUnprocessableEntity, map[string]string{"message": "content is not base64"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := str(m, "branch") + ":" + r.PathValue("path")
	if _, exists := s.files[key]; exists && str(m, "sha") == "" {
		write(w, http.StatusUnprocessableEntity, map[string]string{"message": "sha wasn't supplied"})
		return
	}
	s.files[key] = string(content)
	write(w, http.StatusCreated, map[string]any{"content": map[string]any{"path": r.PathValue("path")}, "commit": map[string]any{"sha": "c0ffee"}})
}

func (s *Server) createPull(w http.ResponseWriter, r *http.Request) {
	m := decode(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.pulls) + 1
	pr := map[string]any{"number": n, "title": str(m, "title"), "body": str(m, "body"),
		"html_url": fmt.Sprintf("https://github.example/%s/%s/pull/%d", r.PathValue("owner"), r.PathValue("repo"), n),
		"head":     map[string]any{"ref": str(m, "head"), "sha": s.refs[str(m, "head")]}, "base": map[string]any{"ref": str(m, "base")}}
	s.pulls = append(s.pulls, pr)
	write(w, http.StatusCreated, pr)
}

func (s *Server) getPull(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 1 || n > len(s.pulls) {
		notFound(w)
		return
	}
	write(w, http.StatusOK, s.pulls[n-1])
}
